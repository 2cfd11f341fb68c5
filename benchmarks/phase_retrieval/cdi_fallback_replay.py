"""Replay the HIO fallback on the failed starts of a saved ``cdi_tv_path`` run (issue 5, session 8).

A ``cdi_tv_path`` run saves, per start, the path's final field (npz, loose-box crop, single
precision) and its tight window and misfit (JSON). The fallback of
:func:`~ncvx_imaging.phase_retrieval.tv_path_restarts` only needs those two (it starts from the
best candidate's field on its window), so it can be applied afterwards to runs made without it
(sessions 6-7) and compared across settings without rerunning the ncvx path. Each start whose
saved misfit is above ``--accept`` gets
:func:`~ncvx_imaging.phase_retrieval.hio_fallback_windows` (``--hio-grow`` window margins, each
:func:`~ncvx_imaging.phase_retrieval.hio_polish` with ``--hio-rounds`` rounds) with ``--hio``
iterations from ``--hio-starts`` fields (the saved field and random ones on the
window, drawn from a generator seeded with the start's index); the answer is kept where its
data misfit is lower, as in the pipeline. The truth (saved in the npz) only scores the result.

    OMP_NUM_THREADS=1 python -m benchmarks.phase_retrieval.cdi_fallback_replay \
        --runs cdi_tv_exits_astronaut cdi_tv_exits_complex_coinsphase --hio 1000 --hio-starts 8
    ... --hio 300 --hio-starts 1 --name cdi_fallback_replay_s7   # the session-6/7 setting
"""

from __future__ import annotations

import argparse
import json
import time

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
from benchmarks.phase_retrieval.cdi import TOL, evaluate, expand
from ncvx_imaging.phase_retrieval import TVPathResult, hio_fallback_windows


def replay(
    name: str,
    hio: int,
    starts: int,
    accept: float,
    alone: bool = False,
    rounds: int = 1,
    grow: tuple[int, ...] = (0,),
    round_misfit: float = 1e-8,
    only: list[int] | None = None,
) -> list[dict]:
    """One record per object of run ``name``: per start the saved and the replayed errors.
    ``alone``: start from the ncvx-alone answers of a run made with the fallback (session 8)."""
    data = np.load(RESULTS / f"{name}.npz")
    records = []
    for rec in json.loads((RESULTS / f"{name}.json").read_text())["records"]:
        kind = rec["object"]
        real = kind == "real"
        truth = torch.from_numpy(data[f"{kind}_truth"])
        y = torch.fft.fft2(truth, norm="ortho").abs().square()
        key = f"{kind}_tv_path_ncvx_alone" if alone else f"{kind}_tv_path"
        fields = expand(data[key], data["box"])
        r0, B, _ = (int(v) for v in data["box"])
        box = (r0, r0, B, B)
        if alone:
            rec = {**rec, "misfits": rec["misfits_ncvx_alone"]}
            rec["rel_errors"] = rec["rel_errors_ncvx_alone"]
        errs, mis, hio_used, secs = [], [], [], []
        idx = [i for i in range(len(fields)) if only is None or i in only]
        for i in idx:
            field = fields[i]
            win = tuple(rec["windows"][i])
            old = TVPathResult(field=field, loose=field, window=win, misfit=rec["misfits"][i])
            t = time.perf_counter()
            out = old
            if old.misfit > accept:
                gen = torch.Generator().manual_seed(i)
                pol = hio_fallback_windows(
                    y,
                    old,
                    box,
                    real=real,
                    grow=grow,
                    hio_iters=hio,
                    starts=starts,
                    rounds=rounds,
                    accept_misfit=accept,
                    round_misfit=round_misfit,
                    generator=gen,
                )
                out = pol if pol.misfit < old.misfit else old
            secs.append(time.perf_counter() - t)
            err, _ = evaluate(out.field[None], truth, win)
            errs.append(err[0])
            mis.append(out.misfit)
            hio_used.append(out.hio)
            print(
                name,
                kind,
                i,
                f"saved err {rec['rel_errors'][i]:.4f} misfit {old.misfit:.1e} ->",
                f"err {err[0]:.4f} misfit {out.misfit:.1e}{' (HIO)' if out.hio else ''}",
                f"{secs[-1]:.1f}s",
                flush=True,
            )
        records.append(
            {
                "run": name,
                "object": kind,
                "replayed_starts": idx,
                "saved_errors": [rec["rel_errors"][i] for i in idx],
                "saved_successes": sum(rec["rel_errors"][i] < TOL for i in idx),
                "rel_errors": errs,
                "misfits": mis,
                "hio": hio_used,
                "successes": sum(e < TOL for e in errs),
                "starts": len(errs),
                "seconds": secs,
            }
        )
    return records


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--runs", nargs="+", required=True, help="saved cdi_tv_path run names")
    ap.add_argument("--hio", type=int, default=1000, help="HIO iterations of the fallback")
    ap.add_argument("--hio-starts", type=int, default=8)
    ap.add_argument("--hio-rounds", type=int, default=1, help="as tv_path_restarts' hio_rounds")
    ap.add_argument("--hio-grow", type=int, nargs="+", default=[0], help="window margins")
    ap.add_argument(
        "--hio-accept", type=float, default=1e-8, help="misfit that ends the HIO rounds"
    )
    ap.add_argument("--only", type=int, nargs="+", default=None, help="these starts only")
    ap.add_argument("--accept", type=float, default=1e-6, help="misfit of an accepted path")
    ap.add_argument("--name", default="cdi_fallback_replay")
    ap.add_argument(
        "--from-ncvx-alone",
        action="store_true",
        help="replay on the ncvx-alone answers saved by a run with the fallback",
    )
    args = ap.parse_args()
    quiet_threads()
    records = [
        r
        for run in args.runs
        for r in replay(
            run,
            args.hio,
            args.hio_starts,
            args.accept,
            args.from_ncvx_alone,
            args.hio_rounds,
            tuple(args.hio_grow),
            args.hio_accept,
            args.only,
        )
    ]
    write_json(
        args.name, {"config": vars(args), "tol": TOL, "env": environment(), "records": records}
    )
    rows = [
        [
            r["run"],
            r["object"],
            f"{r['saved_successes']}/{r['starts']}",
            f"{r['successes']}/{r['starts']}",
            f"{float(np.median(r['rel_errors'])):.4f}",
            f"{max(r['seconds']):.1f}",
        ]
        for r in records
    ]
    write_markdown(
        args.name,
        f"# HIO fallback replayed on saved CDI runs ({args.hio} HIO its x {args.hio_starts} "
        f"starts x <= {args.hio_rounds} rounds, on the failed starts only: saved misfit > "
        f"{args.accept:g})\n\n"
        + md_table(
            ["run", "object", "saved successes", "with the fallback", "median err", "max s"], rows
        ),
    )


if __name__ == "__main__":
    main()
