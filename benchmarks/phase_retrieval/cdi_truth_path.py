"""Is the TV-discrepancy path faithful to an object? The path started at the truth (session 7).

A diagnostic, not a method (it uses the ground truth as the start): for each scikit-image
object (64x64, real >= 0, in a 128x128 field, loose 80x80 box, noiseless),

- the loose stages of :func:`~ncvx_imaging.phase_retrieval.tv_path` (delta = 3e-2, 1e-2, 3e-3,
  lifted) started at the truth (imaginary nudge 1e-2), and the tight stages + fit from each
  level's estimate (the exits of ``tv_path_restarts``);
- the tight stages + fit started at the truth itself on its own window.

If even these do not return the object (relative error < 1e-2 after alignment), no number of
random restarts of the path can: the formulation's solutions along the path are not connected to
the object. Objects on which they do (camera, horse) are a search problem for the restarts.

    OMP_NUM_THREADS=1 python -m benchmarks.phase_retrieval.cdi_truth_path   # ~5 min, 6 objects
"""

from __future__ import annotations

import argparse
import time

import torch

from benchmarks.phase_retrieval._common import (
    environment,
    md_table,
    quiet_threads,
    write_json,
    write_markdown,
)
from benchmarks.phase_retrieval.cdi import TOL, evaluate, load_object
from ncvx_imaging.phase_retrieval import CDIProblem, FarField, real_projection
from ncvx_imaging.phase_retrieval.tv_path import _loose, _options, _tight

TIGHT = (1e-3, 3e-4, 1e-4, 3e-5, 1e-5)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--images", nargs="+", default=["camera", "horse", "moon", "coins", "astronaut", "text"]
    )
    ap.add_argument("--loose-deltas", type=float, nargs="+", default=[3e-2, 1e-2, 3e-3])
    ap.add_argument("--name", default="cdi_truth_path")
    args = ap.parse_args()
    quiet_threads()
    N, n, B = 128, 64, 80
    ff = FarField((n, n), (N, N))
    r0 = (N - B) // 2
    box = (r0, r0, B, B)
    window = (*ff.offset, n, n)
    opts = _options({})
    records, rows = [], []
    for name in args.images:
        t0 = time.perf_counter()
        truth = ff.pad(load_object("real", n, 1.0, name))
        y = ff(truth[window[0] : window[0] + n, window[1] : window[1] + n])
        loose = CDIProblem(y, box, real=False, nonnegative=False)
        tv_truth = float(
            loose.discrepancy_fn(1.0)(loose.variables(truth[r0 : r0 + B, r0 : r0 + B]))[0]
        )
        gen = torch.Generator().manual_seed(0)
        f, levels = truth, []
        for d in args.loose_deltas:
            f, reg = _loose(y, box, f, (d,), 300, 1e-2, gen, opts, [])
            res = _tight(y, box, f, True, None, TIGHT, 300, 600, opts, [], 1.1, 2)
            levels.append(
                {
                    "delta": d,
                    "tv": reg,
                    "loose_error": evaluate(real_projection(f)[None], truth, window)[0][0],
                    "tight_misfit": res.misfit,
                    "tight_error": evaluate(res.field[None], truth, window)[0][0],
                }
            )
        res = _tight(y, box, truth.to(torch.complex128), True, None, TIGHT, 300, 600, opts, [])
        direct = {"misfit": res.misfit, "error": evaluate(res.field[None], truth, window)[0][0]}
        rec = {"image": name, "tv_truth": tv_truth, "levels": levels, "tight_from_truth": direct}
        rec["seconds"] = time.perf_counter() - t0
        records.append(rec)
        lv = " / ".join(f"{v['loose_error']:.2f}" for v in levels)
        tl = " / ".join(f"{v['tight_error']:.3f} ({v['tight_misfit']:.0e})" for v in levels)
        rows.append(
            [name, f"{tv_truth:.3f}", lv, tl, f"{direct['error']:.3f} ({direct['misfit']:.0e})"]
        )
        print(*rows[-1], f"{rec['seconds']:.0f}s", sep=" | ", flush=True)
    write_json(
        args.name, {"config": vars(args), "tol": TOL, "env": environment(), "records": records}
    )
    write_markdown(
        args.name,
        "# CDI: the TV-discrepancy path started at the truth (diagnostic, noiseless)\n\n"
        f"Loose levels {tuple(args.loose_deltas)} from the truth (lifted, nudge 1e-2), then the "
        f"tight levels {TIGHT} and the fit from each level's estimate; and the tight path from "
        f"the truth on its own window. Errors after alignment (success < {TOL:g}); misfits in "
        "brackets.\n\n"
        + md_table(
            [
                "image",
                "TV(truth)",
                "loose error per level",
                "tight path from each level: error (misfit)",
                "tight path from the truth",
            ],
            rows,
        ),
    )


if __name__ == "__main__":
    main()
