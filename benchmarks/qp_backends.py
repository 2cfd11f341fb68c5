"""Measure every available QP backend on realistic ncvx subproblems.

Run ``python benchmarks/qp_backends.py`` (``--quick`` for a smoke run, ``--repeats N``) from
the repository root. It prints markdown tables and writes ``benchmarks/results/qp_backends.json``.

Problems (seeded, so reruns build the same matrices):

* ``steer``: the steering QP ``min ½ yᵀ(CᵀHC)y + (μ·CᵀHg - c)ᵀy`` over ``[-1, 1]`` (equality
  constraints, first quarter) × ``[0, 1]`` (inequalities), with ``C`` an (n, k) Jacobian and
  ``H`` a BFGS-like inverse Hessian;
* ``term``: the termination QP ``min ½ yᵀ(GᵀHG)y + qᵀy`` with one row ``Σ_{objective} y = μ``,
  objective weights in ``[0, μ]`` and constraint weights in ``[0, 1]``; ``q`` carries ``-f``
  on the objective weights (a large common offset) and ``-c`` on the others.

Variants per size ``k``: ``full`` (n = 2k, P nonsingular), ``rankdef`` (n = max(2, k/10)
< k, P singular) and ``badscale`` (rank deficient, Jacobian columns spanning 1e-3..1e3 and
``cond(H) = 1e6``).

Each backend is run through ``QPSolver(backend, fallbacks=())`` — scaling, ridge for backends
that need a positive definite P, polishing, the same-backend regularized retry, clipping and the
KKT check included — i.e. exactly what ``"auto"`` would run before any fallback.

BLAS is pinned to one thread (``OPENBLAS_NUM_THREADS`` etc. default to 1; set them to override)
and the tables report process CPU time, which stays meaningful on a shared, loaded machine;
wall time is in the JSON too.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before numpy is imported

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from importlib import metadata  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ncvx.errors import QPBackendError  # noqa: E402
from ncvx.qp import QPProblem, QPSolver, available_backends, kkt_residuals  # noqa: E402
from ncvx.qp.check import GAP_FLOOR, linearize  # noqa: E402

SIZES = (5, 50, 300, 1000)
RESULTS = ROOT / "benchmarks" / "results" / "qp_backends.json"


@dataclass(frozen=True)
class Case:
    """One benchmark problem."""

    name: str
    kind: str
    variant: str
    k: int
    n: int
    problem: QPProblem


def _inverse_hessian(rng: np.random.Generator, n: int, cond: float) -> np.ndarray:
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (Q * np.logspace(0.0, -np.log10(cond), n)) @ Q.T


def _factors(rng: np.random.Generator, k: int, variant: str) -> tuple[np.ndarray, np.ndarray]:
    """(n, k) Jacobian-like matrix and (n, n) inverse Hessian for a variant."""
    if variant == "full":
        n, cond, spread = 2 * k, 1e2, 0.0
    elif variant == "rankdef":
        n, cond, spread = max(2, k // 10), 1e2, 0.0
    else:
        n, cond, spread = max(2, k // 10), 1e6, 3.0
    C = rng.standard_normal((n, k)) * np.logspace(-spread, spread, k)[rng.permutation(k)]
    return C, _inverse_hessian(rng, n, cond)


def build_cases(sizes: tuple[int, ...] = SIZES, seed: int = 0) -> list[Case]:
    """All benchmark problems, deterministic in ``seed``."""
    cases: list[Case] = []
    for k in sizes:
        for variant in ("full", "rankdef", "badscale"):
            rng = np.random.default_rng([seed, k, len(variant)])
            C, H = _factors(rng, k, variant)
            P = C.T @ H @ C
            P = 0.5 * (P + P.T)
            n = C.shape[0]
            # steering QP
            m_e = k // 4
            lb = np.where(np.arange(k) < m_e, -1.0, 0.0)
            g = rng.standard_normal(n)
            c = rng.standard_normal(k) * np.where(rng.random(k) < 0.5, 1.0, 1e-3)
            q = 0.1 * (C.T @ (H @ g)) - c
            cases.append(
                Case(
                    f"steer-{variant}-{k}", "steer", variant, k, n, QPProblem(P, q, lb, np.ones(k))
                )
            )
            # termination QP: first max(1, k/4) weights belong to objective-gradient samples
            mu = 0.1
            n_obj = max(1, k // 4)
            on = np.arange(k) < n_obj
            q_term = np.where(on, -1e3, -np.abs(rng.standard_normal(k)) * 1e-2)
            cases.append(
                Case(
                    f"term-{variant}-{k}",
                    "term",
                    variant,
                    k,
                    n,
                    QPProblem(
                        P,
                        q_term,
                        np.zeros(k),
                        np.where(on, mu, 1.0),
                        on.astype(float)[None, :],
                        np.array([mu]),
                    ),
                )
            )
    return cases


def _objective_scale(problem: QPProblem, x: np.ndarray) -> float:
    """Objective scale of :mod:`ncvx.qp.check`: ``|½xᵀPx| + |q̃ᵀx|`` plus its floor."""
    lin = linearize(problem, x)
    value = abs(0.5 * float(x @ lin.Px)) + abs(float(lin.q @ x))
    magnitude = float(lin.w @ lin.s)
    return max(value + GAP_FLOOR * magnitude, 1e-300)


def _time_one(backend: str, case: Case, repeats: int, budget: float) -> dict[str, object]:
    """Median wall time of ``QPSolver(backend, fallbacks=()).solve`` and the answer's accuracy.

    Runs at least once and repeats (up to ``repeats`` times) while the total stays under
    ``budget`` seconds, so slow backends on large cases are timed once.
    """
    times: list[float] = []
    cpu: list[float] = []
    row: dict[str, object] = {"backend": backend, "case": case.name}
    solution = None
    failures = 0
    while len(times) < repeats and (not times or sum(times) + times[-1] <= budget):
        solver = QPSolver(backend, fallbacks=())
        start, start_cpu = time.perf_counter(), time.process_time()
        try:
            solution = solver.solve(case.problem)
        except QPBackendError as exc:
            row.update(error=str(exc)[:300])
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        failures += solver.failures
        if "error" in row:
            break
    row["wall_seconds"] = statistics.median(times)
    row["seconds"] = statistics.median(cpu)
    row["runs"] = len(times)
    row["first_attempt_failed"] = failures > 0
    if solution is not None and "error" not in row:
        res = kkt_residuals(case.problem, solution.x)
        row.update(
            kkt=res["kkt"],
            primal=res["primal"],
            dual=res["dual"],
            complementarity=res["complementarity"],
            objective=case.problem.objective(solution.x),
            used=solution.backend,
            attempts=solution.attempts,
            status=solution.status,
            x=solution.x,
        )
    return row


def run(sizes: tuple[int, ...], repeats: int, budget: float) -> dict[str, object]:
    """Solve every case with every available backend; returns the JSON-ready record."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    backends = available_backends()
    cases = build_cases(sizes)
    warm = build_cases((5,))[0].problem
    for backend in backends:  # imports and first-call costs out of the timings
        QPSolver(backend, fallbacks=()).solve(warm)
    rows: list[dict[str, object]] = []
    for case in cases:
        case_rows = []
        for backend in backends:
            row = _time_one(backend, case, repeats, budget)
            row.update(kind=case.kind, variant=case.variant, k=case.k, n=case.n)
            case_rows.append(row)
            print(
                f"  {case.name:<22} {backend:<9} {row['seconds'] * 1e3:9.2f} ms cpu  "
                f"kkt={row.get('kkt', float('inf')):.1e}",
                file=sys.stderr,
            )
        solved = [r for r in case_rows if "objective" in r]
        if solved:
            best = min(solved, key=lambda r: r["objective"])
            scale = _objective_scale(case.problem, np.asarray(best["x"]))
            for r in solved:
                r["objective_gap"] = max(0.0, (r["objective"] - best["objective"]) / scale)
        for r in case_rows:
            r.pop("x", None)
        rows.extend(case_rows)
    versions = {}
    for dist in (
        "numpy",
        "scipy",
        "qpsolvers",
        "osqp",
        "daqp",
        "quadprog",
        "proxsuite",
        "piqp",
        "clarabel",
        "gurobipy",
    ):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return {
        "command": "python benchmarks/qp_backends.py" + ("" if sizes == SIZES else " --quick"),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "load_average_at_start": load,
            "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
            "python": platform.python_version(),
        },
        "versions": versions,
        "backends": backends,
        "repeats": repeats,
        "budget_seconds": budget,
        "rows": rows,
    }


def _cell(row: dict[str, object]) -> str:
    if "error" in row:
        return f"{row['seconds'] * 1e3:.1f} ms / FAIL"
    flag = "" if not row["first_attempt_failed"] else "*"
    return f"{row['seconds'] * 1e3:.1f} ms / {row['kkt']:.0e}{flag}"


def markdown(record: dict[str, object]) -> str:
    """Per-case table and per-backend summary as markdown."""
    rows: list[dict[str, object]] = record["rows"]  # type: ignore[assignment]
    backends: list[str] = record["backends"]  # type: ignore[assignment]
    cases = list(dict.fromkeys(r["case"] for r in rows))
    lines = [
        "Median CPU time / scaled KKT residual of the answer (`*`: first attempt not accepted, "
        "the same-backend regularized retry was needed; FAIL: QPBackendError).",
        "",
        "| problem | n | " + " | ".join(backends) + " |",
        "|---|---|" + "---|" * len(backends),
    ]
    for name in cases:
        by = {r["backend"]: r for r in rows if r["case"] == name}
        n = next(iter(by.values()))["n"]
        lines.append(f"| {name} | {n} | " + " | ".join(_cell(by[b]) for b in backends) + " |")
    k_max = max(int(r["k"]) for r in rows)
    lines += [
        "",
        f"| backend | total CPU (s) | CPU at k={k_max} (s) | worst kkt | worst objective gap "
        "| first-attempt failures | hard failures |",
        "|---|---|---|---|---|---|---|",
    ]
    for b in backends:
        mine = [r for r in rows if r["backend"] == b]
        total = sum(float(r["seconds"]) for r in mine)
        big = sum(float(r["seconds"]) for r in mine if r["k"] == k_max)
        ok = [r for r in mine if "kkt" in r]
        worst = max((float(r["kkt"]) for r in ok), default=float("inf"))
        gap = max((float(r["objective_gap"]) for r in ok), default=float("inf"))
        first = sum(bool(r["first_attempt_failed"]) for r in mine)
        hard = sum("error" in r for r in mine)
        lines.append(
            f"| {b} | {total:.2f} | {big:.2f} | {worst:.0e} | {gap:.0e} | "
            f"{first}/{len(mine)} | {hard}/{len(mine)} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="sizes 5 and 50 only")
    parser.add_argument("--repeats", type=int, default=5, help="max timing repeats (median)")
    parser.add_argument(
        "--budget",
        type=float,
        default=2.0,
        help="seconds per (problem, backend) beyond which no repeat is made",
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON output path")
    args = parser.parse_args()
    sizes = (5, 50) if args.quick else SIZES
    record = run(sizes, args.repeats, args.budget)
    record["markdown"] = markdown(record)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(record, indent=1, default=float) + "\n")
    machine: dict[str, object] = record["machine"]  # type: ignore[assignment]
    print(f"# QP backends ({machine['cpu_count']} CPUs, {machine['processor']})\n")
    print(record["markdown"])
    print(f"\nwritten {args.output}")


if __name__ == "__main__":
    main()
