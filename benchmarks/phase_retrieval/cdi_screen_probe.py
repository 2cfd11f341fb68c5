"""Does the loose stages' TV rank the candidates early? (issue 5, session 6; scratch-sized probe)

For one CDI instance (as in ``cdi_tv_path.py``), ``--cands`` random loose candidates run the
loose levels of :func:`~ncvx_imaging.phase_retrieval.tv_path` one by one; per candidate the TV
objective is recorded after 25/50/100/150/200 iterations of the first level and at the end of
every level, then every candidate goes through the tight stages (with the early abort of
:func:`~ncvx_imaging.phase_retrieval.tv_path_restarts`). The truth is used only to label the
candidates (loose error, final error); the ranking that ``tv_path_restarts(screen=...)`` relies
on can be read off the printed lines / the JSON.

    OMP_NUM_THREADS=1 python -m benchmarks.phase_retrieval.cdi_screen_probe --seed 2   # ~5 min
    OMP_NUM_THREADS=1 python -m benchmarks.phase_retrieval.cdi_screen_probe --kind complex --seed 2
"""

from __future__ import annotations

import argparse
import math
import time

import torch

import ncvx
from benchmarks.phase_retrieval._common import environment, quiet_threads, write_json
from benchmarks.phase_retrieval.cdi import evaluate, load_object
from ncvx_imaging.phase_retrieval import CDIProblem, FarField, random_start
from ncvx_imaging.phase_retrieval.tv_path import _lift, _options, _tight

CHECKPOINTS = (25, 50, 100, 150, 200)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--kind", default="real", choices=["real", "complex"])
    ap.add_argument("--image", default="camera")
    ap.add_argument("--phase-image", default="moon")
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--cands", type=int, default=16)
    ap.add_argument("--maxit", type=int, default=300)
    ap.add_argument("--deltas", type=float, nargs="+", default=[3e-2, 1e-2, 3e-3])
    ap.add_argument("--name", default=None)
    a = ap.parse_args()
    name = a.name or f"cdi_screen_probe_{a.kind}_{a.image}_seed{a.seed}"
    quiet_threads()
    N, n, B = 128, 64, 80
    ff = FarField((n, n), (N, N))
    r0 = (N - B) // 2
    real = a.kind == "real"
    obj = load_object(a.kind, n, math.pi / 2, a.image, a.phase_image)
    truth, Y, window = ff.pad(obj), ff(obj), (*ff.offset, n, n)
    mask = torch.zeros(N, N, dtype=torch.bool)
    mask[r0 : r0 + B, r0 : r0 + B] = True
    gen = torch.Generator().manual_seed(7000 + a.seed)
    subs = random_start(mask, Y.sqrt(), num=a.cands, real=real, generator=gen)
    opts = _options({})
    box = (r0, r0, B, B)
    loose = CDIProblem(Y, box, real=False, nonnegative=False)
    rows = []
    for k, s in enumerate(subs):
        t0 = time.perf_counter()
        v = loose.variables(_lift(s[r0 : r0 + B, r0 : r0 + B], 0.3, gen))
        levels, early = [], {}
        for j, d in enumerate(a.deltas):
            fn = loose.discrepancy_fn(d)

            def cb(rec, j=j, early=early):
                if j == 0 and rec.iteration in CHECKPOINTS:
                    early[rec.iteration] = rec.point.f

            res = ncvx.solve(fn, v, maxit=a.maxit, callback=cb, **opts)
            v = res.final.x
            levels.append(float(fn(v)[0]))
        lf = loose.field(v)
        t_loose = time.perf_counter() - t0
        tight = _tight(
            Y, box, lf, real, None, (1e-3, 3e-4, 1e-4, 3e-5, 1e-5), a.maxit, 600, opts, [], 1.1, 2
        )
        row = {
            "candidate": k,
            "tv_levels": levels,
            "tv_first_level_early": early,
            "loose_error": evaluate(lf[None], truth, window)[0][0],
            "error": evaluate(tight.field[None], truth, window)[0][0],
            "misfit": tight.misfit,
            "seconds_loose": t_loose,
            "seconds_tight": time.perf_counter() - t0 - t_loose,
        }
        rows.append(row)
        print(
            k,
            "TV per level",
            [round(x, 4) for x in levels],
            "first level early",
            {i: round(x, 4) for i, x in early.items()},
            f"loose err {row['loose_error']:.3f} final err {row['error']:.4f}",
            f"misfit {row['misfit']:.1e}",
            flush=True,
        )
    write_json(name, {"config": vars(a), "env": environment(), "candidates": rows})


if __name__ == "__main__":
    main()
