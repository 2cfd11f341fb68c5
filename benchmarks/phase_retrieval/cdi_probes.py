"""CDI probes: formulations tried to make ncvx phase from random starts with the loose box, and
the classical pipeline's sensitivity to its shrinkwrap threshold (same problem as ``cdi.py``:
64x64 object in 128x128, loose 80x80 box, 8 random starts, noiseless).

Methods (each from the same random starts as ``cdi.py``):

- ``hio_er_nosw``: HIO + ER on the loose box, no shrinkwrap.
- ``hio_er_sw005`` / ``hio_er_sw010``: HIO + ER + shrinkwrap with threshold 0.05 / 0.10
  (``cdi.py`` uses 0.2, the usual value; the camera's dark coat sits below it).
- ``ncvx_phase``: feasibility in Fourier-phase variables: ``x = F^-1(m e^{i phi})`` always fits
  the data; ncvx minimises the energy of ``x`` off the box (plus its negative part, real case;
  ``phi`` odd so that ``x`` is real). Its minima with value 0 are exactly the solutions.
- ``ncvx_energy``: convex relaxation of the magnitudes, ``max ||x||^2 s.t. |F x| <= m`` (folded),
  ``x >= 0`` (real) on the box; by Parseval the maximisers with value ``||m||^2`` are the
  solutions.
- ``ncvx_lift`` (real object only): ncvx's amplitude fit on the loose box in *complex* variables
  from the real random start, then :func:`real_projection` (the lift that fixes the Poisson
  refinement in ``cdi.py``).
- ``ncvx_modes`` (on request, slow): a mixed-state lift -- ``K`` complex modes with
  ``sum_k |F x_k|^2`` fitted to the data, ``K = 8, 4, 2, 1`` (300/200/200/300 iterations), each
  stage started from the previous one's top principal modes; the first mode (real-projected for
  real objects) is the estimate.
- ``hio_ncvx``: HIO (no shrinkwrap, loose box) for 1800 steps, then ncvx's amplitude fit instead
  of ER (600 L-BFGS iterations).
- ``alternate``: 10 rounds of 100 HIO steps then 50 ncvx iterations (ncvx's output is HIO's next
  input).

    OMP_NUM_THREADS=1 python -m benchmarks.phase_retrieval.cdi_probes           # ~6 min
    python -m benchmarks.phase_retrieval.cdi --recount --name cdi_probes        # recount
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

import ncvx
from benchmarks.phase_retrieval._common import (
    RESULTS,
    environment,
    md_table,
    quiet_threads,
    write_json,
    write_markdown,
)
from benchmarks.phase_retrieval.cdi import TOL, compact, evaluate, load_object
from ncvx.fold import fold_ineq
from ncvx_imaging.phase_retrieval import (
    CDIProblem,
    FarField,
    hio_er,
    random_start,
    real_projection,
)

METHODS = (
    "hio_er_nosw",
    "hio_er_sw005",
    "hio_er_sw010",
    "ncvx_phase",
    "ncvx_energy",
    "ncvx_lift",
    "hio_ncvx",
    "alternate",
)
EXTRA = ("ncvx_modes",)  # slow (~50 s per start): only on request


def _negate_frequencies(a: torch.Tensor) -> torch.Tensor:
    """``a(-k)`` on the periodic grid."""
    return torch.roll(torch.flip(a, (-2, -1)), (1, 1), (-2, -1))


def phase_feasibility(mags, support, start, real, maxit):
    """ncvx on Fourier phases: minimise the off-support (and negative) energy of F^-1(m e^{i phi})."""
    norm = float(mags.square().sum())

    def field(p):
        ph = p.reshape(mags.shape)
        if real:
            ph = ph - _negate_frequencies(ph)
        return torch.fft.ifft2(torch.polar(mags, ph), norm="ortho")

    def fn(p):
        x = field(p)
        v = x.masked_fill(support, 0).abs().square().sum()
        if real:
            v = v + torch.where(support, x.real.clamp_max(0), 0).square().sum()
        return v / norm, None, None

    p0 = torch.angle(torch.fft.fft2(start, norm="ortho")).flatten() / (2 if real else 1)
    res = ncvx.solve(fn, p0, maxit=maxit, print_level=0, limited_mem_size=10, opt_tol=1e-14)
    x = field(res.final.x)
    return (x.real.clamp_min(0) if real else x) * support


def energy_relaxation(prob, mags, v0, real, maxit):
    """ncvx on ``max ||x||^2 s.t. |F x| <= m, x >= 0``, constraints folded (l2)."""
    mn = float(mags.norm())

    def fn(v):
        img = prob.image(v)
        c = [fold_ineq((prob.farfield.linear(img).abs() - mags) * (100 / mn), "l2")]
        if real:
            c.append(fold_ineq(-img * (100 / mn), "l2"))
        return -img.abs().square().sum() / mn**2, torch.stack(c), None

    res = ncvx.solve(fn, v0, maxit=maxit, print_level=0, limited_mem_size=10, opt_tol=1e-12)
    return res.final.x


def mixed_state(mags, box, start, real, ks=(8, 4, 2, 1), its=(300, 200, 200, 300)):
    """Mixed-state lift: fit ``sum_k |F pad(x_k)|^2`` with ``K`` complex modes on the box, then
    keep fewer and fewer principal modes; returns the first mode's field."""
    r, c, h, w = box
    ff = FarField((h, w), tuple(mags.shape), offset=(r, c))
    norm, total = float(mags.square().sum()), float(mags.norm())
    modes = start

    def misfit(v, k):
        v = v.reshape(2, k, h, w)
        inten = ff(torch.complex(v[0], v[1])).sum(0)
        return (torch.sqrt(inten + 1e-300) - mags).square().sum() / norm, None, None

    for k, it in zip(ks, its):
        _, sv, vh = torch.linalg.svd(modes.reshape(modes.shape[0], -1), full_matrices=False)
        modes = (sv[:k, None] * vh[:k]).reshape(k, h, w)
        modes = modes * (total / float(modes.norm()))
        v0 = torch.cat([modes.real.flatten(), modes.imag.flatten()])
        res = ncvx.solve(
            lambda v, k=k: misfit(v, k),
            v0,
            maxit=it,
            print_level=0,
            limited_mem_size=10,
            opt_tol=1e-14,
        )
        v = res.final.x.reshape(2, k, h, w)
        modes = torch.complex(v[0], v[1])
    z = ff.pad(modes[0] * (total / float(modes[0].norm())))
    return real_projection(z) if real else z


def fit(prob, v0, real, maxit):
    res = ncvx.solve(
        prob.fit_fn(), v0, maxit=maxit, print_level=0, limited_mem_size=10, opt_tol=1e-12
    )
    return res.final.x.clamp_min(0) if real else res.final.x


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--objects", nargs="+", default=["real", "complex"], choices=["real", "complex"]
    )
    ap.add_argument(
        "--methods", nargs="+", default=list(METHODS), choices=list(METHODS) + list(EXTRA)
    )
    ap.add_argument("--starts", type=int, default=8)
    ap.add_argument("--maxit", type=int, default=400, help="ncvx iterations (phase, energy)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--name", default="cdi_probes")
    args = ap.parse_args()
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
        obj = load_object(kind, n, math.pi / 2)
        truth = ff.pad(obj)
        Y = ff(obj)
        mags = Y.sqrt()
        gen = torch.Generator().manual_seed(args.seed)
        starts = random_start(loose, mags, num=args.starts, real=real, generator=gen)
        prob = CDIProblem(Y, (r0, r0, B, B), real=real, nonnegative=real, loss="amplitude")
        arrays[f"{kind}_truth"] = truth.numpy()

        def hio(x0, iters, er, sw, thr=0.2, real=real, mags=mags):
            return hio_er(
                mags,
                loose,
                x0,
                real=real,
                nonnegative=real,
                hio_iters=iters,
                er_iters=er,
                shrinkwrap_every=sw,
                threshold=thr,
            ).x

        def box_vars(f, prob=prob, real=real):
            v = prob.variables(f[r0 : r0 + B, r0 : r0 + B])
            return v.clamp_min(0) if real else v

        for meth in args.methods:
            t = time.perf_counter()
            if meth == "hio_er_nosw":
                out = hio(starts, 1800, 200, 0)
            elif meth.startswith("hio_er_sw"):
                out = hio(starts, 1800, 200, 20, int(meth[-3:]) / 100)
            elif meth == "ncvx_phase":
                out = torch.stack(
                    [phase_feasibility(mags, loose, s, real, args.maxit) for s in starts]
                )
            elif meth == "ncvx_energy":
                out = torch.stack(
                    [
                        prob.field(
                            energy_relaxation(prob, mags, 0.3 * box_vars(s), real, args.maxit)
                        )
                        for s in starts
                    ]
                )
                if real:
                    out = out.clamp_min(0)
            elif meth == "ncvx_lift":
                if not real:
                    continue
                cprob = CDIProblem(Y, (r0, r0, B, B), real=False, nonnegative=False)
                lifted = []
                for s in starts:
                    # a real start is a saddle of the lifted problem: nudge it off the real axis
                    img = s[r0 : r0 + B, r0 : r0 + B]
                    noise = torch.randn(img.shape, dtype=img.dtype, generator=gen)
                    v0 = cprob.variables(torch.complex(img, 1e-2 * float(img.max()) * noise))
                    lifted.append(real_projection(cprob.field(fit(cprob, v0, False, args.maxit))))
                out = torch.stack(lifted)
            elif meth == "ncvx_modes":
                k0 = 8
                cplx = torch.complex(
                    torch.rand(len(starts), k0, B, B, dtype=Y.dtype, generator=gen) - 0.5,
                    torch.rand(len(starts), k0, B, B, dtype=Y.dtype, generator=gen) - 0.5,
                )
                out = torch.stack(
                    [mixed_state(mags, (r0, r0, B, B), m0, real, (k0, 4, 2, 1)) for m0 in cplx]
                )
            elif meth == "hio_ncvx":
                h = hio(starts, 1800, 0, 0)
                out = torch.stack([prob.field(fit(prob, box_vars(f), real, 600)) for f in h])
            else:  # alternate
                out = starts
                for _ in range(10):
                    h = hio(out, 100, 0, 0)
                    out = torch.stack([prob.field(fit(prob, box_vars(f), real, 50)) for f in h])
            secs = time.perf_counter() - t
            errs, ps = evaluate(out, truth, window)
            arrays[f"{kind}_{meth}"] = compact(out, r0, B)
            rec = {
                "object": kind,
                "method": meth,
                "rel_errors": errs,
                "psnr_db": ps,
                "successes": sum(e < TOL for e in errs),
                "starts": args.starts,
                "seconds": secs,
            }
            records.append(rec)
            print(
                kind,
                meth,
                f"{rec['successes']}/{args.starts}",
                np.round(errs, 3).tolist(),
                f"{secs:.0f}s",
                flush=True,
            )
    RESULTS.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(RESULTS / f"{args.name}.npz", **arrays)
    write_json(
        args.name, {"config": vars(args), "tol": TOL, "env": environment(), "records": records}
    )
    rows = [
        [
            r["object"],
            r["method"],
            f"{r['successes']}/{r['starts']}",
            f"{min(r['rel_errors']):.3f}",
            f"{float(np.median(r['rel_errors'])):.3f}",
            f"{r['seconds']:.0f}",
        ]
        for r in records
    ]
    write_markdown(
        args.name,
        "# CDI probes: loose 80x80 box, random starts, noiseless\n\n"
        f"Success: relative error < {TOL:g} after alignment. See `cdi_probes.py` for the methods.\n\n"
        + md_table(
            ["object", "method", "successes", "best err", "median err", "seconds (all starts)"],
            rows,
        ),
    )


if __name__ == "__main__":
    main()
