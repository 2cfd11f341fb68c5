"""Time for ncvx to reach a peer's final objective at a feasible point.

Where a peer stops early at a worse objective (PyGRANSO on A3-n100 ends at its iteration limit
with f = 0.610 while the optimum is 0.4925), its run time and a run to a stationarity certificate
do not measure the same thing. This script solves the same problem object with ncvx (in this
process, one thread) and records, at every iteration, the CPU seconds spent so far (the time
inside this script's callback excluded) and whether the iterate is feasible to the problem's
tolerances; it reports the first time the iterate is feasible with ``f <= target``, the time of
the whole solve, and where the target comes from.

    python -m benchmarks.time_to_target --problem A3-n100 \\
        --records benchmarks/results/constraints.json --peer pygranso
    python -m benchmarks.time_to_target --problem A3-n100 --target 0.6097495114
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks import problems
from benchmarks.suites import SUITES


def _case(name: str) -> Any:
    for cases in SUITES.values():
        for case in cases:
            if case.name == name:
                return case
    known = sorted({c.name for cases in SUITES.values() for c in cases})
    raise SystemExit(f"unknown problem {name!r}; known: {known}")


def peer_final_f(path: Path, problem: str, peer: str) -> float:
    """Median final objective of ``peer``'s records of ``problem`` in a results file."""
    data = json.loads(path.read_text())
    records = data["records"] if isinstance(data, dict) else data
    fs = [r["f"] for r in records if r["problem"] == problem and r["solver"] == peer]
    if not fs:
        raise SystemExit(f"no {peer} record of {problem} in {path}")
    return float(statistics.median(fs))


def _git_head() -> str | None:
    import subprocess

    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parent,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None


def run_once(problem: str, target: float) -> dict[str, Any]:
    """One ncvx solve; CPU seconds to the first feasible iterate with ``f <= target``."""
    import ncvx

    case = _case(problem)
    var_spec, combined_fn, opts, _ = problems.build(
        case.builder, ncvx.pygransoStruct, **case.params
    )
    user = ncvx.pygransoStruct()
    for key, value in opts.items():
        setattr(user, key, value)
    user.print_level = 0
    ineq_tol = float(opts.get("viol_ineq_tol", 1e-6))
    eq_tol = float(opts.get("viol_eq_tol", 1e-6))
    outside = 0.0  # CPU seconds spent in the callback itself
    reached: dict[str, float] = {}
    start = time.process_time()

    def log(iteration: int, x: Any, parts: Any, *rest: Any) -> bool:
        nonlocal outside
        entered = time.process_time()
        feasible = parts.tvi <= ineq_tol and parts.tve <= eq_tol
        if feasible and parts.f <= target and not reached:
            reached.update(cpu_s=entered - start - outside, iteration=iteration, f=float(parts.f))
        outside += time.process_time() - entered
        return False

    user.halt_log_fn = log
    soln = ncvx.pygranso(var_spec=var_spec, combined_fn=combined_fn, user_opts=user)
    total = time.process_time() - start - outside
    return {
        "reached": bool(reached),
        "cpu_s_to_target": reached.get("cpu_s"),
        "iteration_at_target": reached.get("iteration"),
        "f_at_target": reached.get("f"),
        "cpu_s_total": total,
        "iters": int(soln.iters),
        "final_f": float(soln.final.f),
        "termination_code": int(soln.termination_code),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problem", required=True, help="a case name of benchmarks/suites.py")
    parser.add_argument("--target", type=float, help="objective to reach (feasibly)")
    parser.add_argument("--records", type=Path, help="results file holding the peer's runs")
    parser.add_argument("--peer", default="pygranso")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, help="write the runs as JSON here")
    args = parser.parse_args(argv)
    if (args.target is None) == (args.records is None):
        parser.error("give exactly one of --target and --records")
    target = args.target
    source = "--target"
    if args.records is not None:
        target = peer_final_f(args.records, args.problem, args.peer)
        source = f"median final f of {args.peer} in {args.records}"
    torch.set_num_threads(1)
    runs = [run_once(args.problem, target) for _ in range(args.repeats)]
    to_target = [r["cpu_s_to_target"] for r in runs if r["reached"]]
    print(f"{args.problem}: target f <= {target:.10g} ({source})")
    for i, r in enumerate(runs):
        at = (
            f"{r['cpu_s_to_target']:.3f} CPU s (iteration {r['iteration_at_target']}, "
            f"f {r['f_at_target']:.10g})"
            if r["reached"]
            else "not reached"
        )
        print(
            f"  run {i}: target {at}; whole solve {r['cpu_s_total']:.3f} CPU s, {r['iters']} its,"
            f" code {r['termination_code']}, f {r['final_f']:.10g}"
        )
    if to_target:
        print(f"  median CPU s to target: {statistics.median(to_target):.3f}")
    if args.out is not None:
        payload = {
            "problem": args.problem,
            "target": target,
            "source": source,
            "ncvx_commit": _git_head(),
            "runs": runs,
        }
        args.out.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
