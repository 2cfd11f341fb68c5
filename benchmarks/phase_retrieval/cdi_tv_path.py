"""CDI from random starts with ncvx alone: the lifted TV-discrepancy path (issue 5, target 6b).

Same problem as ``cdi.py``: 64x64 object in a 128x128 field, loose 80x80 support box, the same
8 random starts (``random_start`` with ``--seed``), noiseless; real = camera (>= 0), complex =
camera * exp(i pi/2 moon). Method (:func:`ncvx_imaging.phase_retrieval.tv_path`): ncvx solves
``min TV(x) s.t. misfit(x) <= delta`` in complex variables on the loose box for delta = 3e-2,
1e-2, 3e-3, then on a tight box (the object's size from the autocorrelation, placed at the
loose estimate's energy maximum) for delta = 1e-3 ... 1e-5, then the plain fit; real objects
are real-projected. No HIO/ER step. Success: relative error < 1e-2 after shift/twin/phase.

With ``--tries K`` (default 16) each start runs
:func:`~ncvx_imaging.phase_retrieval.tv_path_restarts`: the loose stages from the start and from
K - 1 further random fields drawn from the start's own generator, screened by their TV after each
loose level (``--screen 8 4``: the 8 lowest go on after the first level, the 4 lowest after the
second; ``--screen`` with no number: no screen, as in session 5 with ``--tries 6``), then the
tight stages for the survivors in order of increasing loose TV until one reaches a misfit <= 1e-6
(stagnated tight paths are abandoned after their first levels). When none does, the survivors'
estimates at the earlier loose levels go through the tight stages too, last first (``--exits 2 1
0``, the default since session 7; ``--exits 2`` is the session-6 method). Every one of the 8 starts
is still independent; the cost per start is in the ``seconds`` field. ``--workers K`` runs K
starts at a time in separate one-thread processes (same results; for machines with free cores).

    OMP_NUM_THREADS=1 python -m benchmarks.phase_retrieval.cdi_tv_path --objects real  # ~15 min
    OMP_NUM_THREADS=1 python -m benchmarks.phase_retrieval.cdi_tv_path --tries 6 --screen  # s. 5
    OMP_NUM_THREADS=1 python -m benchmarks.phase_retrieval.cdi_tv_path --tries 1   # session 4
    OMP_NUM_THREADS=1 python -m benchmarks.phase_retrieval.cdi_tv_path --objects real --image moon \
        --name cdi_tv_exits_moon --workers 8                            # other images, 8 cores
    python -m benchmarks.phase_retrieval.cdi --recount --name cdi_tv_screen   # recount
"""

from __future__ import annotations

import argparse
import math
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np
import torch

from benchmarks.phase_retrieval._common import (
    RESULTS,
    environment,
    md_table,
    quiet_threads,
    write_json,
    write_markdown,
)
from benchmarks.phase_retrieval.cdi import TOL, compact, evaluate, load_object
from ncvx_imaging.phase_retrieval import FarField, random_start, tv_path, tv_path_restarts


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--objects", nargs="+", default=["real", "complex"], choices=["real", "complex"]
    )
    ap.add_argument("--image", default="camera")
    ap.add_argument("--phase-image", default="moon")
    ap.add_argument("--starts", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--maxit", type=int, default=300, help="ncvx iterations per stage")
    ap.add_argument("--fit-maxit", type=int, default=600)
    ap.add_argument(
        "--loose-deltas",
        type=float,
        nargs="+",
        default=[3e-2, 1e-2, 3e-3],
        help="discrepancy levels of the loose-box stages",
    )
    ap.add_argument(
        "--tries",
        type=int,
        default=16,
        help="loose-stage candidates per start (>1: tv_path_restarts, lowest loose TV first)",
    )
    ap.add_argument(
        "--screen",
        type=int,
        nargs="*",
        default=[8, 4],
        help="candidates kept after each loose level (none given: no screen, session 5)",
    )
    ap.add_argument(
        "--exits",
        type=int,
        nargs="+",
        default=None,
        help="loose levels (0-based) whose estimates go to the tight stages, in order "
        "(default: all, last first; session 6: the last only)",
    )
    ap.add_argument("--workers", type=int, default=1, help="starts run in parallel processes")
    ap.add_argument(
        "--hio-fallback",
        type=int,
        default=1000,
        help="HIO iterations of the fallback when no candidate phases (0: off, ncvx alone; "
        "session 6-7 runs: 0 or 300 with one HIO start)",
    )
    ap.add_argument("--hio-starts", type=int, default=8, help="HIO starts of the fallback")
    ap.add_argument(
        "--hio-rounds", type=int, default=3, help="HIO rounds of the fallback while not accepted"
    )
    ap.add_argument(
        "--hio-grow",
        type=int,
        nargs="+",
        default=[0, 4, 8],
        help="margins by which the fallback's window grows while not accepted",
    )
    ap.add_argument(
        "--hio-accept", type=float, default=1e-8, help="misfit that ends the HIO rounds"
    )
    ap.add_argument(
        "--name", default=None, help="cdi_tv_screen, cdi_tv_restarts (no screen) or cdi_tv_path"
    )
    args = ap.parse_args()
    if args.name is None:
        screened = "cdi_tv_screen" if args.screen else "cdi_tv_restarts"
        args.name = "cdi_tv_path" if args.tries == 1 else screened
    quiet_threads()
    N, n, B = 128, 64, 80
    ff = FarField((n, n), (N, N))
    r0 = (N - B) // 2
    loose = torch.zeros(N, N, dtype=torch.bool)
    loose[r0 : r0 + B, r0 : r0 + B] = True
    window = (*ff.offset, n, n)
    records, arrays = [], {"box": np.array([r0, B, N])}
    for kind in args.objects:
        real = kind == "real"
        obj = load_object(kind, n, math.pi / 2, args.image, args.phase_image)
        truth = ff.pad(obj)
        Y = ff(obj)
        gen = torch.Generator().manual_seed(args.seed)
        starts = random_start(loose, Y.sqrt(), num=args.starts, real=real, generator=gen)
        arrays[f"{kind}_truth"] = truth.numpy()
        outs, misfits, wins, secs, tries, chosen, hio, exits, runs = ([] for _ in range(9))
        alone, alone_mis = [], []  # the ncvx-alone answers (the path's, before the fallback)
        jobs = [(args, real, Y, r0, B, s, i) for i, s in enumerate(starts)]
        pool = None
        if args.workers > 1:
            pool = ProcessPoolExecutor(args.workers, mp_context=get_context("spawn"))
            done = pool.map(_one_start, *zip(*jobs))
        else:
            done = (_one_start(*job) for job in jobs)  # lazily: one line per finished start
        for i, (res, sec) in enumerate(done):
            secs.append(sec)
            tries.append(res.tries)
            chosen.append(res.chosen)
            hio.append(res.hio)
            exits.append(res.exit)
            runs.append(res.tight_runs)
            outs.append(res.field)
            misfits.append(res.misfit)
            path = res.path if res.path is not None else res
            alone.append(path.field)
            alone_mis.append(path.misfit)
            wins.append(list(res.window))
            err, _ = evaluate(res.field[None], truth, window)
            print(
                kind,
                i,
                f"err {err[0]:.4f} misfit {res.misfit:.2e} window {res.window}",
                f"chosen {res.chosen} exit {res.exit}",
                f"(HIO fallback; ncvx alone: misfit {path.misfit:.2e})" if res.hio else "",
                "tries",
                [(tuple(round(a, 4) for a in tv), m and f"{m:.1e}") for tv, m in res.tries],
                "tight runs",
                [(lev, k, f"{m:.1e}") for lev, k, m in res.tight_runs],
                f"{secs[-1]:.0f}s",
                flush=True,
            )
        if pool is not None:
            pool.shutdown()
        out = torch.stack(outs)
        errs, ps = evaluate(out, truth, window)
        errs_alone, _ = evaluate(torch.stack(alone), truth, window)
        arrays[f"{kind}_tv_path"] = compact(out, r0, B)
        arrays[f"{kind}_tv_path_ncvx_alone"] = compact(torch.stack(alone), r0, B)
        sel = int(np.argmin(misfits))
        records.append(
            {
                "object": kind,
                "method": "tv_path"
                if args.tries == 1
                else f"tv_path_restarts({args.tries}, screen={tuple(args.screen)}, "
                f"exits={'default' if args.exits is None else tuple(args.exits)}"
                + (
                    f", hio_fallback={args.hio_fallback}, hio_starts={args.hio_starts}, "
                    f"hio_rounds={args.hio_rounds}, hio_grow={tuple(args.hio_grow)}, "
                    f"hio_accept={args.hio_accept:g})"
                    if args.hio_fallback
                    else ")"
                ),
                "rel_errors": errs,
                "psnr_db": ps,
                "misfits": misfits,
                "windows": wins,
                "successes": sum(e < TOL for e in errs),
                "starts": args.starts,
                "selected_start": sel,
                "selected_error": errs[sel],
                "seconds": secs,
                "tries": tries,
                "chosen": chosen,
                "hio_fallback": hio,
                "exits": exits,
                "tight_runs": runs,
                "successes_ncvx_alone": sum(e < TOL for e in errs_alone),
                "rel_errors_ncvx_alone": errs_alone,
                "misfits_ncvx_alone": alone_mis,
            }
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(RESULTS / f"{args.name}.npz", **arrays)
    write_json(
        args.name, {"config": vars(args), "tol": TOL, "env": environment(), "records": records}
    )
    rows = [
        [
            r["object"],
            f"{r['successes']}/{r['starts']}",
            f"{r['successes_ncvx_alone']}/{r['starts']}",
            f"{min(r['rel_errors']):.4f}",
            f"{float(np.median(r['rel_errors'])):.4f}",
            f"#{r['selected_start']}: {r['selected_error']:.4f}",
            f"{float(np.median(r['seconds'])):.0f}",
        ]
        for r in records
    ]
    write_markdown(
        args.name,
        "# CDI, ncvx lifted TV-discrepancy path from random starts (loose 80x80 box, noiseless)"
        f"\n\nImage {args.image} (phase {args.phase_image}), seed {args.seed}, "
        f"{args.tries} loose candidate(s) per start, screen {tuple(args.screen)}, HIO fallback "
        f"{args.hio_fallback} its x {args.hio_starts} starts x <= {args.hio_rounds} rounds (0: "
        "off; taken only where its data "
        f"misfit is lower than the path's). Success: relative error < {TOL:g} after alignment. "
        "Selected: lowest final misfit.\n\n"
        + md_table(
            [
                "object",
                "successes",
                "ncvx alone (the path's answer, before the HIO fallback)",
                "best err",
                "median err",
                "selected",
                "s per start",
            ],
            rows,
        ),
    )


def _one_start(
    args: argparse.Namespace,
    real: bool,
    Y: torch.Tensor,
    r0: int,
    B: int,
    s: torch.Tensor,
    i: int,
) -> tuple:
    """One start of the benchmark: ``(TVPathResult, seconds)`` (a process-pool job)."""
    quiet_threads()
    t = time.perf_counter()
    kw = dict(
        real=real,
        maxit=args.maxit,
        fit_maxit=args.fit_maxit,
        loose_deltas=tuple(args.loose_deltas),
        generator=torch.Generator().manual_seed(1000 * args.seed + i),
    )
    if args.tries > 1:
        res = tv_path_restarts(
            Y,
            (r0, r0, B, B),
            s,
            tries=args.tries,
            screen=tuple(args.screen),
            exits=None if args.exits is None else tuple(args.exits),
            hio_fallback=args.hio_fallback,
            hio_starts=args.hio_starts,
            hio_rounds=args.hio_rounds,
            hio_grow=tuple(args.hio_grow),
            hio_accept=args.hio_accept,
            **kw,
        )
    else:
        res = tv_path(Y, (r0, r0, B, B), s, **kw)
    return res, time.perf_counter() - t


if __name__ == "__main__":
    main()
