"""Non-blind: the box 0 <= x <= 1 folded into one constraint vs ncvx's native simple bounds.

For every saved non-blind task (``results/cpu/nonblind-*.npz`` and ``.json``, written by
``cpu.py``) this reruns ncvx on the same data as the benchmark does (tau = 1 for 600 iterations,
then the saved tau = 1 - df/N continued from that answer for another 600) with the chosen box
handling, and prints PSNR, TV/N, solver status and the gap to the oracle-lambda TV.

    OMP_NUM_THREADS=1 python -m benchmarks.deblurring.nonblind_box --box bounds
    OMP_NUM_THREADS=1 python -m benchmarks.deblurring.nonblind_box --box fold --task 128-motion-0.01
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from ncvx_imaging.deblurring.nonblind import deconv_tv_discrepancy
from ncvx_imaging.deblurring.regularizers import total_variation
from ncvx_imaging.metrics import psnr

HERE = Path(__file__).resolve().parent


def run(npz: Path, box: str, maxit: int) -> dict:
    rec = json.loads(npz.with_suffix(".json").read_text())
    m = rec["methods"]
    d = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in np.load(npz).items()}
    y, k, truth, sigma = d["y"], d["kernel"], d["truth"], rec["sigma"]
    tau = float(m["ncvx_tv_discrepancy_df"]["tau"])
    N = y.numel()
    c0 = time.process_time()
    o1 = deconv_tv_discrepancy(y, k, sigma, tau=1.0, maxit=maxit, box=box)
    o2 = deconv_tv_discrepancy(y, k, sigma, tau=tau, x0=o1.x, maxit=maxit, box=box)
    p2 = float(psnr(o2.x.clamp(0, 1), truth))
    return {
        "task": npz.stem, "box": box, "tau": tau,
        "psnr_tau1": float(psnr(o1.x.clamp(0, 1), truth)), "psnr_df": p2,
        "tv_per_px_tau1": float(total_variation(o1.x) / N),
        "tv_per_px_df": float(total_variation(o2.x) / N),
        "status_iters_restarts_tau1": [int(o1.result.status), o1.iterations, o1.restarts],
        "status_iters_restarts_df": [int(o2.result.status), o2.iterations, o2.restarts],
        "gap_to_oracle_tv": m["tv_oracle_lambda"]["psnr"] - p2,
        "gain_over_wiener": p2 - m["wiener_oracle_nsr"]["psnr"],
        "cpu_s": time.process_time() - c0,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--box", choices=["fold", "bounds"], default="bounds")
    ap.add_argument("--maxit", type=int, default=600)
    ap.add_argument("--task", action="append", default=[], help="e.g. 128-motion-0.01")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    files = sorted((HERE / "results" / "cpu").glob("nonblind-*.npz"))
    if args.task:
        files = [f for f in files if any(f.stem.endswith(t) for t in args.task)]
    rows = [run(f, args.box, args.maxit) for f in files]
    for r in rows:
        print(json.dumps(r), flush=True)
    print(f"within 0.3 dB of oracle TV: {sum(r['gap_to_oracle_tv'] <= 0.3 for r in rows)}"
          f" / {len(rows)}; >= Wiener + 1.5 dB: {sum(r['gain_over_wiener'] >= 1.5 for r in rows)}")


if __name__ == "__main__":
    main()
