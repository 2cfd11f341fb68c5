"""Gaussian phase retrieval, n = 64: success rates of ncvx (random starts) vs Wirtinger flow with
spectral initialisation (and reweighted amplitude flow for reference) over m/n and seeds.

    OMP_NUM_THREADS=1 python -m benchmarks.phase_retrieval.gaussian_pr --seeds 20

Writes ``results/gaussian_pr.json``, ``results/gaussian_pr.md`` and ``results/gaussian_pr.npz``
(truths and every method's estimate, so success counts can be recomputed with
``--recount``). Success: relative error < 1e-4 after removing the global sign/phase.
"""

from __future__ import annotations

import argparse
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
from ncvx_imaging.phase_retrieval import (
    GaussianMeasurement,
    amplitude_flow,
    gaussian_pr_fn,
    relative_error_global_phase,
    solve_with_restarts,
    to_complex,
    wirtinger_flow,
)

TOL = 1e-4
METHODS = ("wf_spectral", "raf", "ncvx")


def instance(n: int, ratio: float, cplx: bool, seed: int):
    m = round(ratio * n)
    model = GaussianMeasurement.random(m, n, complex_valued=cplx, seed=10_000 + seed)
    g = torch.Generator().manual_seed(20_000 + seed)
    x = torch.randn(n, dtype=torch.float64, generator=g)
    if cplx:
        x = torch.complex(x, torch.randn(n, dtype=torch.float64, generator=g)) / 2**0.5
    return model, x, model(x)


def run_ncvx(model, y, n, cplx, seed, restarts, maxit):
    fn, nvar = gaussian_pr_fn(model, y, loss="intensity")
    g = torch.Generator().manual_seed(30_000 + seed)
    scale = float(y.mean().sqrt()) / (nvar**0.5) * (n**0.5)  # ||x|| estimate / sqrt(n) per entry
    starts = [
        torch.randn(nvar, dtype=torch.float64, generator=g) * scale / n**0.5
        for _ in range(restarts)
    ]
    stop = 1e-14 * float(y.mean()) ** 2
    rr = solve_with_restarts(
        fn, starts, maxit=maxit, warm_maxit=200, stop_fun=stop, options={"opt_tol": 1e-12}
    )
    return to_complex(rr.x, cplx), {"starts_used": len(rr.rounds), "best_start": rr.best_start}


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--ratios", type=float, nargs="+", default=[2, 2.5, 3, 4, 6])
    ap.add_argument("--fields", nargs="+", default=["real", "complex"], choices=["real", "complex"])
    ap.add_argument("--restarts", type=int, default=8, help="max random starts for ncvx")
    ap.add_argument("--maxit", type=int, default=400, help="ncvx iterations per start")
    ap.add_argument("--name", default="gaussian_pr")
    ap.add_argument("--recount", action="store_true", help="recount successes from the npz")
    args = ap.parse_args()
    quiet_threads()
    if args.recount:
        recount(args.name)
        return
    records, arrays = [], {}
    for field in args.fields:
        cplx = field == "complex"
        for ratio in args.ratios:
            for seed in range(args.seeds):
                model, x, y = instance(args.n, ratio, cplx, seed)
                rec = {"field": field, "ratio": ratio, "seed": seed, "m": model.m, "n": args.n}
                ests = {}
                t = time.perf_counter()
                ests["wf_spectral"] = wirtinger_flow(model, y).x
                rec["wf_spectral_s"] = time.perf_counter() - t
                t = time.perf_counter()
                ests["raf"] = amplitude_flow(model, y, variant="reweighted").x
                rec["raf_s"] = time.perf_counter() - t
                t = time.perf_counter()
                ests["ncvx"], info = run_ncvx(
                    model, y, args.n, cplx, seed, args.restarts, args.maxit
                )
                rec["ncvx_s"] = time.perf_counter() - t
                rec.update(info)
                for k, z in ests.items():
                    rec[f"{k}_err"] = float(relative_error_global_phase(z, x))
                    arrays[f"{field}_{ratio}_{seed}_{k}"] = z.numpy()
                arrays[f"{field}_{ratio}_{seed}_truth"] = x.numpy()
                records.append(rec)
                print(
                    field,
                    ratio,
                    seed,
                    *(f"{k}={rec[k + '_err']:.1e}" for k in METHODS),
                    f"starts={info['starts_used']} t={rec['ncvx_s']:.1f}s",
                    flush=True,
                )
    RESULTS.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(RESULTS / f"{args.name}.npz", **arrays)
    summary = summarise(records)
    write_json(
        args.name,
        {
            "config": vars(args),
            "tol": TOL,
            "env": environment(),
            "summary": summary,
            "records": records,
        },
    )
    write_markdown(args.name, markdown(summary, args))


def summarise(records):
    out = []
    keys = sorted({(r["field"], r["ratio"]) for r in records})
    for field, ratio in keys:
        rs = [r for r in records if r["field"] == field and r["ratio"] == ratio]
        row = {"field": field, "ratio": ratio, "seeds": len(rs)}
        for k in METHODS:
            row[f"{k}_success"] = sum(r[f"{k}_err"] < TOL for r in rs)
            row[f"{k}_median_s"] = float(np.median([r[f"{k}_s"] for r in rs]))
        row["ncvx_mean_starts"] = float(np.mean([r["starts_used"] for r in rs]))
        out.append(row)
    return out


def markdown(summary, args) -> str:
    head = [
        "field",
        "m/n",
        "seeds",
        "WF+spectral",
        "RAF",
        "ncvx",
        "ncvx starts (mean)",
        "ncvx s (median)",
    ]
    rows = [
        [
            s["field"],
            s["ratio"],
            s["seeds"],
            s["wf_spectral_success"],
            s["raf_success"],
            s["ncvx_success"],
            f"{s['ncvx_mean_starts']:.1f}",
            f"{s['ncvx_median_s']:.2f}",
        ]
        for s in summary
    ]
    return (
        f"# Gaussian phase retrieval, n = {args.n}\n\nSuccesses (relative error < {TOL:g} after "
        f"the global sign/phase) out of `seeds` instances. ncvx: intensity loss, L = up to "
        f"{args.restarts} random starts ({args.maxit} iterations each, stop at a zero misfit), "
        f"best warm-restarted.\n\n" + md_table(head, rows)
    )


def recount(name: str) -> None:
    data = np.load(RESULTS / f"{name}.npz")
    counts: dict[tuple[str, str, str], list[int]] = {}
    for key in data.files:
        field, ratio, seed, meth = key.split("_", 3)
        if meth == "truth":
            continue
        x = torch.from_numpy(data[f"{field}_{ratio}_{seed}_truth"])
        z = torch.from_numpy(data[key])
        c = counts.setdefault((field, ratio, meth), [0, 0])
        c[0] += int(relative_error_global_phase(z, x) < TOL)
        c[1] += 1
    for (field, ratio, meth), (s, t) in sorted(counts.items()):
        print(f"{field:8s} m/n={ratio:5s} {meth:12s} {s}/{t}")


if __name__ == "__main__":
    main()
