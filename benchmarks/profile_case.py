"""Profile one benchmark case with cProfile (for a lent GPU: where does the time go there?).

    python -m benchmarks.profile_case --case cnn-unfolded --device cuda --maxit 15 --top 35

Prints the wall time of a ``--maxit`` run (after a 2-iteration warm-up for the CUDA and import
set-up), the functions by own time, and ncvx's functions by cumulative time. Not part of the
test suite.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time

import torch

from benchmarks import problems
from benchmarks.suites import SUITES


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", required=True, help="a case name of benchmarks/suites.py")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--maxit", type=int, default=15)
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument(
        "--qp-log", action="store_true",
        help="also print every QP's size, seconds and answering rung, and per-iteration seconds",
    )
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from ncvx import pygranso, pygransoStruct

    case = next(c for cases in SUITES.values() for c in cases if c.name == args.case)
    problems.prepare(case.builder, **case.params)
    var_spec, fn, opts, _meta = problems.build(
        case.builder, pygransoStruct, device=args.device, **case.params
    )
    o = pygransoStruct()
    for k, v in opts.items():
        setattr(o, k, v)
    o.print_level = 0
    o.maxit = args.maxit
    o.torch_device = torch.device(args.device)
    warm = pygransoStruct()
    for k, v in vars(o).items():
        setattr(warm, k, v)
    warm.maxit = 2
    pygranso(var_spec=var_spec, combined_fn=fn, user_opts=warm)  # CUDA / import set-up
    qp_log = _log_qps() if args.qp_log else None
    iter_times: list[float] = []
    if args.qp_log:
        last = [0.0]

        def _tick(*_args: object) -> bool:
            now = time.perf_counter()
            iter_times.append(now - last[0])
            last[0] = now
            return False

        o.halt_log_fn = _tick
        last[0] = time.perf_counter()
    prof = cProfile.Profile()
    start = time.perf_counter()
    prof.enable()
    soln = pygranso(var_spec=var_spec, combined_fn=fn, user_opts=o)
    prof.disable()
    wall = time.perf_counter() - start
    print(f"{args.case} on {args.device}: {soln.iters} iterations in {wall:.2f} s "
          f"(f {float(soln.final.f):.10g})")
    if qp_log is not None:
        _print_qp_log(qp_log, iter_times)
    for order, pattern in (("tottime", ""), ("cumulative", "ncvx")):
        out = io.StringIO()
        stats = pstats.Stats(prof, stream=out).sort_stats(order)
        stats.print_stats(pattern, args.top) if pattern else stats.print_stats(args.top)
        print(out.getvalue())


def _log_qps() -> list[tuple[int, float, str]]:
    """Wrap :meth:`ncvx.qp.solver.QPSolver.solve` to record (size, seconds, rung) per QP."""
    from ncvx.qp import solver as qp_solver

    log: list[tuple[int, float, str]] = []
    inner = qp_solver.QPSolver.solve

    def solve(self, problem, *args, **kwargs):
        start = time.perf_counter()
        out = inner(self, problem, *args, **kwargs)
        log.append((int(problem.P.shape[0]), time.perf_counter() - start,
                    f"{out.backend} {out.status} a{out.attempts}"))
        return out

    qp_solver.QPSolver.solve = solve
    return log


def _print_qp_log(log: list[tuple[int, float, str]], iter_times: list[float]) -> None:
    total = sum(t for _, t, _ in log)
    print(f"QPs: {len(log)} in {total:.2f} s")
    for size, seconds, rung in log:
        print(f"  qp size {size:6d}  {seconds * 1e3:9.1f} ms  {rung}")
    print("iteration seconds: " + " ".join(f"{t:.3f}" for t in iter_times))


if __name__ == "__main__":
    main()
