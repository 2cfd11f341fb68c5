"""Non-blind gap analysis: is the ncvx shortfall the solver or the discrepancy principle's tau?

For every saved non-blind task (``results/cpu/nonblind-*.npz``, written by ``cpu.py``) this solves
the SAME constrained problem (min TV s.t. ||k*x - y||^2 <= tau sigma^2 N, 0 <= x <= 1) with the
primal-dual reference (:func:`~ncvx_imaging.deblurring.baselines.tv_deconv_discrepancy_reference`:
the penalised Chambolle-Pock solution whose misfit matches the bound) at each tau the ncvx runs
used (1 and the degrees-of-freedom choice), and compares objective (TV/N), misfit ratio and PSNR:

- ncvx TV/N clearly above the reference TV/N at the same ratio -> (a) the solver;
- reference PSNR at the bound clearly below the oracle-lambda TV -> (b) the choice of tau.

    OMP_NUM_THREADS=1 python -m benchmarks.deblurring.diagnose_nonblind   # -> results/nonblind_diagnosis.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from ncvx_imaging.deblurring.baselines import tv_deconv_discrepancy_reference
from ncvx_imaging.deblurring.operators import conv_circular
from ncvx_imaging.deblurring.regularizers import total_variation
from ncvx_imaging.metrics import psnr

HERE = Path(__file__).resolve().parent


def _stats(x: torch.Tensor, y: torch.Tensor, k: torch.Tensor, truth: torch.Tensor,
           sigma: float) -> dict[str, float]:
    N = y.numel()
    return {"tv_per_px": float(total_variation(x) / N),
            "ratio": float(((conv_circular(x, k) - y) ** 2).sum() / (sigma**2 * N)),
            "psnr": float(psnr(x.clamp(0, 1), truth))}


def diagnose(npz: Path, iters: int) -> dict:
    rec = json.loads(npz.with_suffix(".json").read_text())
    d = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in np.load(npz).items()}
    y, k, truth, sigma = d["y"], d["kernel"], d["truth"], rec["sigma"]
    N = y.numel()
    out: dict = {"task": rec["task"], "oracle_tv": _stats(d["tv_oracle_lambda"], y, k, truth, sigma),
                 "truth": _stats(truth, y, k, truth, sigma), "runs": []}
    for key in ("ncvx_tv_discrepancy", "ncvx_tv_discrepancy_df"):
        if key not in d:
            continue
        tau = float(rec["methods"][key].get("tau", 1.0))
        x, lam = tv_deconv_discrepancy_reference(y, k, (tau * sigma**2 * N) ** 0.5, iters=iters)
        out["runs"].append({"method": key, "tau": tau, "ncvx": _stats(d[key], y, k, truth, sigma),
                            "reference": {**_stats(x, y, k, truth, sigma), "lambda": lam}})
    return out


def table(rows: list[dict]) -> list[str]:
    lines = [
        "| task | τ | ncvx TV/N | reference TV/N | TV excess | ncvx PSNR | reference PSNR "
        "| oracle TV PSNR (misfit ratio) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for o in rows:
        for r in o["runs"]:
            a, b = r["ncvx"], r["reference"]
            lines.append(
                f"| {o['task']} | {r['tau']:.3f} | {a['tv_per_px']:.5f} | {b['tv_per_px']:.5f} "
                f"| {100 * (a['tv_per_px'] / b['tv_per_px'] - 1):+.1f} % | {a['psnr']:.2f} "
                f"| {b['psnr']:.2f} | {o['oracle_tv']['psnr']:.2f} ({o['oracle_tv']['ratio']:.3f}) |"
            )
    return lines


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=1500)
    ap.add_argument("--task", action="append", default=[])
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    files = sorted((HERE / "results" / "cpu").glob("nonblind-*.npz"))
    if args.task:
        files = [f for f in files if f.stem in args.task]
    rows = []
    for f in files:
        rows.append(diagnose(f, args.iters))
        print(json.dumps(rows[-1]), flush=True)
    if not args.task:
        (HERE / "results" / "nonblind_diagnosis.md").write_text("\n".join(table(rows)) + "\n")


if __name__ == "__main__":
    main()
