"""Folded vs unfolded box/slack constraints: the same attacks, both ways, on a few inputs.

    OMP_NUM_THREADS=1 python -m benchmarks.attacks.folding --n 5

Writes ``results/folding.json`` and prints one line per (distance, folding): median distance,
success, feasibility and seconds per example. Also times the projection of a point onto the
box [0, 1]^50 (``min ||x − z||²``) with the box folded (l2, l1, max) and unfolded.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

import ncvx
from ncvx import fold
from ncvx_imaging.attacks import MinDistanceConfig, min_distance_attack

from .run import RESULTS, setup


def projection(n: int = 50) -> list[dict]:
    gen = torch.Generator().manual_seed(1)
    z = torch.rand(n, generator=gen, dtype=torch.float64) * 2.0 - 0.5
    rows = []
    for kind in ("unfolded", "l2", "l1", "max"):
        def fn(x: torch.Tensor, kind: str = kind):
            box = torch.cat([-x, x - 1]) if kind == "unfolded" else fold.box(x, 0.0, 1.0, kind)
            return ((x - z) ** 2).sum(), box, None

        t = time.perf_counter()
        res = ncvx.solve(fn, torch.full((n,), 0.5, dtype=torch.float64), print_level=0, maxit=500)
        rows.append({
            "box": kind, "status": res.status.name, "iters": res.iters,
            "seconds": time.perf_counter() - t,
            "error_vs_clamp": float((res.x - z.clamp(0, 1)).abs().max()),
        })
        print("projection", rows[-1], flush=True)
    return rows


def main() -> None:
    torch.set_num_threads(1)
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5)
    ap.add_argument("--maxit", type=int, default=100)
    args = ap.parse_args()
    model, x, y, _ = setup(args.n)
    out: dict = {"n": len(y), "attacks": [], "projection": projection()}
    for dist in ("l2", "linf", "l1"):
        for folded in (False, True):
            cfg = MinDistanceConfig(distance=dist, fold=folded, maxit=args.maxit, max_seconds=15.0)
            t = time.perf_counter()
            res = min_distance_attack(model, x, y, cfg)
            secs = (time.perf_counter() - t) / len(y)
            row = {
                "distance": dist, "folded": folded,
                "median_distance": statistics.median(res.distances.tolist()),
                "success_rate": res.success_rate, "all_feasible": res.all_feasible,
                "seconds_per_example": secs,
                "status": [e.status_name for e in res.examples],
            }
            out["attacks"].append(row)
            print(row, flush=True)
    path = Path(RESULTS) / "folding.json"
    path.write_text(json.dumps(out, indent=1))
    print("wrote", path)


if __name__ == "__main__":
    main()
