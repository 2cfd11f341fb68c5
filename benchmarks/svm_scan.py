"""ncvx on the benchmark's soft-margin SVM at several sizes, judged against Clarabel's optimum.

``python -m benchmarks.svm_scan 1500 2000 --opts "{'regularize_threshold': 1e6}"`` solves each
size in its own process (1 torch thread, ``--timeout`` seconds) and prints the termination code,
iterations, final f, its gap to the optimum (:mod:`benchmarks.svm_reference`) and CPU seconds.
This is how the "SVMs beyond the suite" table in docs/performance.md was made.
"""

from __future__ import annotations

import argparse
import ast
import os
import subprocess
import sys

_CHILD = """
import sys, time, torch
torch.set_num_threads(1)
from benchmarks import problems
from ncvx import pygranso, pygransoStruct
n, extra = int(sys.argv[1]), eval(sys.argv[2])
v, f, o, _ = problems.build("svm", pygransoStruct, n=n)
o.update(extra)
u = pygransoStruct(**o)
u.print_level = 0
t = time.process_time()
s = pygranso(var_spec=v, combined_fn=f, user_opts=u)
print(s.termination_code, s.iters, repr(float(s.final.f)), time.process_time() - t)
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="+", type=int)
    parser.add_argument("--opts", default="{}", help="extra pygransoStruct options (a dict)")
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args(argv)
    extra = ast.literal_eval(args.opts)
    from benchmarks.svm_reference import svm_optimum

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    print(f"options {extra}")
    print("     n  code  iters  f               f - optimum   CPU s")
    for n in args.sizes:
        optimum = svm_optimum(n)
        try:
            done = subprocess.run(
                [sys.executable, "-c", _CHILD, str(n), repr(extra)],
                capture_output=True,
                text=True,
                timeout=args.timeout,
                env=env,
                check=True,
            )
        except subprocess.TimeoutExpired:
            print(f"{n:6d}  did not finish within {args.timeout:.0f} s")
            continue
        except subprocess.CalledProcessError as exc:
            print(f"{n:6d}  failed: {exc.stderr.strip().splitlines()[-1:]}")
            continue
        code, iters, f, cpu = done.stdout.split()[-4:]
        gap = float(f) - optimum
        print(f"{n:6d}  {code:>4}  {iters:>5}  {float(f):.10f}  {gap:+.1e}     {float(cpu):.1f}")


if __name__ == "__main__":
    main()
