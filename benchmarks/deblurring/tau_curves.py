"""Curves behind the choice of the misfit allowance ``tau`` (non-blind TV, periodic blur).

For each case, a path of penalised TV solutions ``x_lam`` (primal-dual, warm-started from the
previous weight) on a log grid of ``lam``: misfit ratio ``||k*x - y||^2 / (sigma^2 N)`` (= the
``tau`` whose constrained solution is ``x_lam``), degrees of freedom per pixel ``df/N``
(Monte-Carlo divergence, the same probes at every weight) and PSNR against the truth (only for
scoring, never used by a rule). Any rule ``tau(ratio, df)`` can then be scored offline.

    OMP_NUM_THREADS=1 python -m benchmarks.deblurring.tau_curves --set bench   # or heldout
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from ncvx_imaging.deblurring import conv_circular, gaussian_kernel, motion_kernel
from ncvx_imaging.deblurring.baselines import tv_deconv
from ncvx_imaging.deblurring.synthetic import make_blur_problem
from ncvx_imaging.metrics import psnr

OUT = Path(__file__).resolve().parent / "results" / "tau_curves"

KERNELS = {"gauss:13/2": lambda: gaussian_kernel(13, 2.0), "motion:11/30": lambda: motion_kernel(11., 30.),
           "gauss:9/1.5": lambda: gaussian_kernel(9, 1.5), "motion:15/120": lambda: motion_kernel(15., 120.),
           "gauss:15/3": lambda: gaussian_kernel(15, 3.0), "motion:9/75": lambda: motion_kernel(9., 75.)}

#: (image, n, kernel, sigma, noise seed)
SETS = {
    "bench": [("camera", n, kn, s, 0) for n in (64, 128) for kn in ("gauss:13/2", "motion:11/30")
              for s in (0.01, 0.05)],
    "heldout": [("camera", 64, "gauss:13/2", 0.01, 1), ("camera", 64, "motion:11/30", 0.01, 1),
                ("moon", 64, "gauss:9/1.5", 0.02, 1), ("astronaut", 64, "motion:15/120", 0.03, 1),
                ("moon", 64, "motion:15/120", 0.01, 1), ("astronaut", 128, "gauss:15/3", 0.02, 2),
                ("moon", 128, "motion:9/75", 0.05, 2), ("camera", 128, "gauss:9/1.5", 0.03, 2)],
}


def curve(image: str, n: int, kname: str, sigma: float, seed: int, probes: int = 3,
          iters: int = 800, lo: float = 0.03, hi: float = 1.2, per_octave: int = 4) -> dict:
    P = make_blur_problem(image, n, KERNELS[kname](), sigma, seed=seed)
    y, k, N = P.y, P.k, P.y.numel()
    gen = torch.Generator().manual_seed(1234)
    bs = [torch.randn(y.shape, generator=gen, dtype=y.dtype) for _ in range(probes)]
    eps = 0.1 * sigma
    steps = round(math.log2(hi / lo) * per_octave)
    lams = [sigma * hi * 2 ** (-i / per_octave) for i in range(steps + 1)]
    rows, x, state = [], None, {}
    for lam in lams:
        x = tv_deconv(y, k, lam, iters=iters, x0=x, state=state)
        p0 = dict(state)
        dfs = []
        for b in bs:
            x1 = tv_deconv(y + eps * b, k, lam, iters=iters, x0=x, state=dict(p0))
            dfs.append(float((b * conv_circular(x1 - x, k)).sum()) / eps / N)
        rows.append({"lam": lam, "ratio": float(((conv_circular(x, k) - y) ** 2).sum()) / (sigma**2 * N),
                     "df": dfs, "psnr": float(psnr(x.clamp(0, 1), P.x))})
    return {"image": image, "n": n, "kernel": kname, "sigma": sigma, "seed": seed, "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", choices=list(SETS), required=True)
    ap.add_argument("--only", type=int, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    cases = SETS[args.set] if args.only is None else [SETS[args.set][args.only]]
    for c in cases:
        t = time.perf_counter()
        rec = curve(*c)
        name = f"{c[0]}-{c[1]}-{c[2].replace(':', '').replace('/', '_')}-{c[3]}-s{c[4]}"
        (OUT / f"{name}.json").write_text(json.dumps(rec, indent=0))
        print(name, f"{time.perf_counter() - t:.0f} s", flush=True)


if __name__ == "__main__":
    main()
