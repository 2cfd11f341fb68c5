"""Reference problems with known optima, used to score the solver (see ``tests/integration``)."""

from __future__ import annotations

from .base import RefProblem

__all__ = ["RefProblem", "all_problems"]


def all_problems() -> list[RefProblem]:
    """Every reference problem: Hock-Schittkowski, small convex (LP/QP/l1/l-inf) and the SVM."""
    from .convex import convex_problems
    from .hock_schittkowski import hs_problems
    from .svm import svm_problems

    return [*hs_problems(), *convex_problems(), *svm_problems()]
