"""Nonnegative least squares three ways: native bounds, the box folded, the box unfolded.

    python -m benchmarks.bounds_nnls                 # native bounds and folded (seconds)
    python -m benchmarks.bounds_nnls --unfolded      # also 2000 constraint rows (minutes)

``min ½‖Ax − b‖²`` s.t. ``x ≥ 0`` with A 4000×2000 Gaussian (torch seed 0), L-BFGS(10), one
thread; the reference optimum comes from ``scipy.optimize.nnls`` (an active-set method, exact).
Prints one row per form: status, iterations, seconds, final f, its gap to the reference,
violation, and how many bounds are active at the reference and at ncvx's answer.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.optimize
import torch

import ncvx
from ncvx.fold import fold_ineq


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--m", type=int, default=4000)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--maxit", type=int, default=300)
    ap.add_argument("--unfolded", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    A = torch.randn(args.m, args.n, generator=g, dtype=torch.float64)
    b = torch.randn(args.m, generator=g, dtype=torch.float64)
    t = time.perf_counter()
    x_ref, rnorm = scipy.optimize.nnls(A.numpy(), b.numpy(), maxiter=50 * args.n)
    f_ref = 0.5 * rnorm**2
    print(f"reference (scipy nnls, {time.perf_counter() - t:.1f} s): f* = {f_ref:.11f}, "
          f"{int((x_ref == 0).sum())} of {args.n} bounds active")

    def objective(x: torch.Tensor) -> torch.Tensor:
        r = A @ x - b
        return 0.5 * (r * r).sum()

    forms = {
        "native bounds": (lambda x: (objective(x), None, None), {"bounds": (0.0, None)}),
        "folded (l2)": (lambda x: (objective(x), fold_ineq(-x, "l2"), None), {}),
    }
    if args.unfolded:
        forms["unfolded"] = (lambda x: (objective(x), -x, None), {})
    for name, (fn, extra) in forms.items():
        t = time.perf_counter()
        res = ncvx.solve(fn, torch.zeros(args.n, dtype=torch.float64), maxit=args.maxit,
                         limited_mem_size=10, print_level=0, **extra)
        secs = time.perf_counter() - t
        x = res.final.x
        print(f"{name:14s} {res.status.name:28s} its {res.iters:4d}  {secs:7.2f} s  "
              f"f {res.final.f:.11f}  gap {(res.final.f - f_ref) / f_ref:+.1e}  "
              f"viol {max(0.0, float((-x).max())):.1e}  active {int((x == 0).sum())}")


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
