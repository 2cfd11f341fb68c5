"""Score ``tau`` rules without ncvx: the primal-dual solution at the chosen ``tau`` (so solver
effects are excluded) against the truth, on the benchmark's 8 non-blind cases and on held-out
cases (``tau_curves.SETS``).

    OMP_NUM_THREADS=1 python -m benchmarks.deblurring.tau_rules --set heldout --rule fixed_point

Rules: ``one_step`` (``select_tau_df``, one update from tau = 1, the session-3 rule) and
``fixed_point`` (``select_tau_fixed_point``). Writes ``results/tau_rules/<set>-<rule>.json``;
the oracle-tuned TV (the benchmark's ``oracle_tune`` grid and refinement, PSNR against the
truth) is added, and the best PSNR along the weight path of ``tau_curves`` where that exists.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from ncvx_imaging.deblurring.baselines import oracle_tune, tv_deconv
from ncvx_imaging.deblurring.discrepancy import select_tau_df, select_tau_fixed_point
from ncvx_imaging.deblurring.synthetic import make_blur_problem
from ncvx_imaging.metrics import psnr

from .tau_curves import KERNELS, SETS
from .tau_curves import OUT as CURVES

OUT = Path(__file__).resolve().parent / "results" / "tau_rules"


def _name(c: tuple) -> str:
    return f"{c[0]}-{c[1]}-{c[2].replace(':', '').replace('/', '_')}-{c[3]}-s{c[4]}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", choices=list(SETS), required=True)
    ap.add_argument("--rule", choices=["one_step", "fixed_point"], required=True)
    ap.add_argument("--only", type=int, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    cases = SETS[args.set] if args.only is None else [SETS[args.set][args.only]]
    path = OUT / f"{args.set}-{args.rule}.json"
    recs = json.loads(path.read_text()) if path.exists() else {}
    for c in cases:
        image, n, kname, sigma, seed = c
        P = make_blur_problem(image, n, KERNELS[kname](), sigma, seed=seed)
        t = time.process_time()
        rule = select_tau_df if args.rule == "one_step" else select_tau_fixed_point
        ch = rule(P.y, P.k, sigma)
        rec = {"tau": ch.tau, "lam": ch.lam, "psnr": float(psnr(ch.x.clamp(0, 1), P.x)),
               "cpu_s": time.process_time() - t, "history": ch.history}
        lam_o, _, p_o = oracle_tune(lambda v, P=P: tv_deconv(P.y, P.k, v, iters=800), P.x,
                                    [10 ** (e / 2) for e in range(-9, -1)], refine=3)
        rec["oracle_tv"] = {"psnr": p_o, "lam": lam_o}
        cf = CURVES / f"{_name(c)}.json"
        if cf.exists():
            rows = json.loads(cf.read_text())["rows"]
            best = max(rows, key=lambda r: r["psnr"])
            rec["oracle_path"] = {"psnr": best["psnr"], "ratio": best["ratio"],
                                  "lam": best["lam"]}
            rec["tau1_path_psnr"] = min(rows, key=lambda r: abs(r["ratio"] - 1))["psnr"]
        recs[_name(c)] = rec
        path.write_text(json.dumps(recs, indent=1))
        print(_name(c), {k: v for k, v in rec.items() if k != "history"}, flush=True)


if __name__ == "__main__":
    main()
