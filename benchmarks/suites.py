"""Named benchmark suites: which problems, at which sizes, for which solvers.

A :class:`Case` names a builder of ``benchmarks/problems.py`` and its parameters; only these
names and numbers cross the process boundary, never problem objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Case:
    """One benchmark problem instance.

    Attributes:
        name: the id used in records and tables (unique within a suite).
        builder: key of ``benchmarks.problems.BUILDERS``.
        params: keyword arguments of the builder.
        smooth: a smooth NLP solver (SLSQP, IPOPT) is a fair peer.
        max_repeats: cap on repeats for expensive cases (``--force-repeats`` lifts it).
        note: shown in the report.
        ncvx_only: the formulation uses an ncvx feature the peers lack (``bounds=``); it is
            compared with the peers' formulation of the same problem in another case.
    """

    name: str
    builder: str
    params: dict[str, Any] = field(default_factory=dict)
    smooth: bool = False
    max_repeats: int | None = None
    note: str = ""
    ncvx_only: bool = False


EXAMPLES = [
    Case("A1", "A1", note="nonsmooth Rosenbrock, x0 = (1, 1), defaults"),
    Case(
        "A2",
        "A2",
        {"maxit": 200},
        max_repeats=1,
        note="spectral abscissa, maxit 200 (one repeat: ~6 min for PyGRANSO on 2 cores)",
    ),
    Case("A3", "A3", {"n": 30}, note="dictionary learning n = 30 (m = 9000), maxit 500"),
    Case("B1", "B1", smooth=True, note="nonlinear feasibility"),
    Case("B2", "B2", {"n": 300}, smooth=True, note="Rayleigh quotient on the sphere, n = 300"),
    Case("B3", "B3", {"d": 1}, smooth=True, note="trace maximization d = 1, maxit 3000"),
    Case("B3-d2", "B3", {"d": 2}, smooth=True, note="trace maximization d = 2, opt_tol 5e-6"),
    Case("C1", "C1", note="robust PCA 3×4"),
    Case("C2", "C2", {"n": 80}, note="1-D TV denoising n = 80 (unconstrained)"),
    Case("C3", "C3", note="l1 logistic regression path, 16 values of C, maxit 50 each"),
]

CONSTRAINTS = [
    Case("svm-200", "svm", {"n": 200}, smooth=True, note="soft-margin SVM, 400 inequalities"),
    Case("svm-1000", "svm", {"n": 1000}, smooth=True, note="soft-margin SVM, 2000 inequalities"),
    Case("svm-5000", "svm", {"n": 5000}, smooth=True, note="soft-margin SVM, 10000 inequalities"),
    Case(
        "cnn-unfolded",
        "cnn_attack",
        {"fold_box": False},
        note="L∞ attack, box as 1568 scalar constraints (3137 in all)",
    ),
    Case(
        "cnn-folded",
        "cnn_attack",
        {"fold_box": True},
        note="L∞ attack, box folded into one constraint (1570 in all)",
    ),
    Case(
        "cnn-bounds",
        "cnn_attack",
        {"box": "bounds"},
        note="L∞ attack, box as ncvx's simple bounds (1569 constraints in all)",
        ncvx_only=True,
    ),
    Case("A3-n100", "A3", {"n": 100}, note="dictionary learning n = 100 (m = 100 000)"),
]

SCALE = [
    Case(f"tv-{label}", "tv_denoise", {"n": n, "maxit": 20}, note=f"TV denoising n ≈ {label}")
    for label, n in (("1e4", 10_000), ("1e5", 100_000), ("1e6", 1_000_000))
]

SUITES: dict[str, list[Case]] = {
    "examples": EXAMPLES,
    "constraints": CONSTRAINTS,
    "scale": SCALE,
}


def get_suite(name: str) -> list[Case]:
    try:
        return SUITES[name]
    except KeyError:
        raise ValueError(f"unknown suite {name!r}; known: {sorted(SUITES)}") from None
