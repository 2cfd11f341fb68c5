"""CDI from random starts (target 6b): diagnostics of why ncvx formulations stall in the loose box.

Same problem as ``cdi.py`` (64x64 object in a 128x128 field, loose 80x80 box, noiseless; real =
camera, complex = camera * exp(i pi/2 moon)). Each diagnostic is an ncvx problem (or ER, for
reference) and reports relative errors after alignment (shift, twin, global phase):

- ``modes``: mixed-state lift, ``K`` complex modes with ``sum_k |F x_k|^2`` fitted (ncvx, L-BFGS)
  from a random start; then, using the truth, how far the *span* of the fitted modes is from every
  copy of the object the box admits (each translate and its twin). A small residual would mean a
  recombination of modes (alignment, search over mixtures, rank continuation) could recover the
  object; a large one means the lifted answer does not contain it.
- ``near``: ER and ncvx's amplitude fit started from the truth plus white noise (``level`` of its
  norm) on the loose or a tight box: the accuracy a phasing stage must reach before a local
  refinement can end below the success threshold 1e-2.
- ``dr``: ncvx minimising the Douglas-Rachford (HIO with beta = 1) fixed-point residual
  ``||P_A(2 P_B s - s) - P_B s||^2`` over the field ``s`` (no HIO iteration is run; its zeros
  are solutions).
- ``tight``: ncvx's amplitude fit from random starts on a tight 64x64 box (the size the
  autocorrelation gives); the real object is solved in complex variables (the lift) and mapped
  back by :func:`real_projection`.
- ``tvloose``: the lifted TV-discrepancy path of :func:`tv_path` kept on the loose box all the
  way (delta 3e-2 ... 1e-4, then the fit): ends near 0.09 on the camera with stripe artefacts
  (a column profile times the object's row indicator), which is why ``tv_path`` moves to a
  tight box after the first decades.
- ``dip``: the double deep image prior (:mod:`ncvx_imaging.phase_retrieval.dip`) with an error
  trace; options ``--dip-width/--dip-depth/--dip-maxit``; for the real object also with complex
  generators (``real_lift``).

    OMP_NUM_THREADS=1 python -m benchmarks.phase_retrieval.cdi_diagnostics          # ~12 min
    OMP_NUM_THREADS=1 python -m benchmarks.phase_retrieval.cdi_diagnostics --diag dip \\
        --name cdi_diagnostics_dip                                                   # ~15 min
"""

from __future__ import annotations

import argparse
import math
import time
from typing import Any

import numpy as np
import torch

import ncvx
from benchmarks.phase_retrieval._common import (
    environment,
    md_table,
    quiet_threads,
    write_json,
    write_markdown,
)
from benchmarks.phase_retrieval.cdi import load_object
from ncvx_imaging.phase_retrieval import (
    CDIProblem,
    FarField,
    align_fourier,
    hio_er,
    random_start,
    real_projection,
)
from ncvx_imaging.phase_retrieval.dip import DoubleDIP
from ncvx_imaging.phase_retrieval.formulations import data_misfit

N, n, B = 128, 64, 80
R0 = (N - B) // 2
OPTS: dict[str, Any] = {"print_level": 0, "limited_mem_size": 10, "opt_tol": 1e-14}


def setup(kind: str) -> dict[str, Any]:
    obj = load_object(kind, n, math.pi / 2)
    ff = FarField((n, n), (N, N))
    Y = ff(obj)
    return {"obj": obj, "truth": ff.pad(obj), "Y": Y, "mags": Y.sqrt(), "real": kind == "real"}


def err(z: torch.Tensor, truth: torch.Tensor) -> float:
    if z.is_complex() and not truth.is_complex():
        truth = truth.to(z.dtype)
    return float(align_fourier(z, truth)[1])


def box_mask(size: int) -> torch.Tensor:
    m = torch.zeros(N, N, dtype=torch.bool)
    m[R0 : R0 + size, R0 : R0 + size] = True
    return m


def modes(kind: str, k: int, its: int, seed: int) -> dict[str, Any]:
    """K-mode lift from a random start; mode errors and the span residual of the object's copies."""
    p = setup(kind)
    ff = FarField((B, B), (N, N), offset=(R0, R0))
    mags, Y = p["mags"], p["Y"]
    gen = torch.Generator().manual_seed(seed)
    m0 = torch.complex(
        torch.rand(k, B, B, dtype=Y.dtype, generator=gen) - 0.5,
        torch.rand(k, B, B, dtype=Y.dtype, generator=gen) - 0.5,
    )
    m0 = m0 * (float(mags.norm()) / float(m0.norm()))

    def fn(v):
        v = v.reshape(2, k, B, B)
        inten = ff(torch.complex(v[0], v[1])).sum(0)
        return (torch.sqrt(inten + 1e-300) - mags).square().sum() / Y.sum(), None, None

    t = time.perf_counter()
    res = ncvx.solve(fn, torch.cat([m0.real.flatten(), m0.imag.flatten()]), maxit=its, **OPTS)
    secs = time.perf_counter() - t
    v = res.final.x.reshape(2, k, B, B)
    V = torch.complex(v[0], v[1])
    truth = p["truth"].to(V.dtype)
    mode_err = [err(ff.pad(x), truth) for x in V]
    q, _ = torch.linalg.qr(V.flatten(1).T)  # (B*B, k) orthonormal basis of the span
    obj = p["obj"].to(V.dtype)
    best = math.inf
    for o in (obj, torch.flip(obj, (0, 1)).conj()):
        for a in range(B - n + 1):
            for b in range(B - n + 1):
                c = torch.zeros(B, B, dtype=V.dtype)
                c[a : a + n, b : b + n] = o
                c = c.flatten()
                best = min(best, float((c - q @ (q.conj().T @ c)).norm() / c.norm()))
    return {
        "diag": "modes",
        "object": kind,
        "K": k,
        "iters": its,
        "misfit": float(fn(res.final.x)[0]),
        "mode_errors": mode_err,
        "span_residual": best,
        "seconds": secs,
    }


def near(kind: str, size: int, level: float, its: int) -> dict[str, Any]:
    """ER and ncvx from ``truth + level * white noise`` on a ``size`` box."""
    p = setup(kind)
    real, truth = p["real"], p["truth"]
    sup = box_mask(size)
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(N, N, dtype=p["Y"].dtype, generator=gen)
    if not real:
        noise = torch.complex(noise, torch.randn(N, N, dtype=p["Y"].dtype, generator=gen))
    noise = noise * sup
    # the truth is placed so that it lies in the box (translations are free)
    x0 = torch.roll(truth, (R0 - (N - n) // 2,) * 2, (0, 1))
    x0 = x0 + level * noise * (truth.norm() / noise.norm())
    t = time.perf_counter()
    er = hio_er(
        p["mags"],
        sup,
        x0[None],
        real=real,
        nonnegative=real,
        hio_iters=0,
        er_iters=its,
        shrinkwrap_every=0,
    ).x[0]
    t_er = time.perf_counter() - t
    prob = CDIProblem(p["Y"], (R0, R0, size, size), real=real, nonnegative=False)
    t = time.perf_counter()
    res = ncvx.solve(prob.fit_fn(), prob.variables(x0[sup].reshape(size, size)), maxit=its, **OPTS)
    t_nc = time.perf_counter() - t
    z = prob.field(res.final.x)
    return {
        "diag": "near",
        "object": kind,
        "box": size,
        "level": level,
        "iters": its,
        "start_error": err(x0, truth),
        "er_error": err(er, truth),
        "ncvx_error": err(z.clamp_min(0) if real else z, truth),
        "ncvx_misfit": float(prob.misfit(res.final.x)),
        "seconds": t_er + t_nc,
    }


def dr(kind: str, its: int, starts: int) -> dict[str, Any]:
    """ncvx on the Douglas-Rachford fixed-point residual over the field."""
    p = setup(kind)
    real, mags, Y = p["real"], p["mags"], p["Y"]
    sup = box_mask(B)

    def pb(s):
        fs = torch.fft.fft2(s, norm="ortho")
        z = torch.fft.ifft2(mags * fs / (fs.abs() + 1e-12), norm="ortho")
        return z.real if real else z

    def pa(x):
        return (x.clamp_min(0) if real else x) * sup

    def field(v):
        return v.reshape(N, N) if real else torch.complex(v[: N * N], v[N * N :]).reshape(N, N)

    def fn(v):
        s = field(v)
        b = pb(s)
        return (pa(2 * b - s) - b).abs().square().sum() / Y.sum(), None, None

    gen = torch.Generator().manual_seed(0)
    errs, fs = [], []
    t = time.perf_counter()
    for s0 in random_start(sup, mags, num=starts, real=real, generator=gen):
        v0 = s0.flatten() if real else torch.cat([s0.real.flatten(), s0.imag.flatten()])
        res = ncvx.solve(fn, v0, maxit=its, **OPTS)
        errs.append(err(pa(pb(field(res.final.x))), p["truth"]))
        fs.append(float(res.final.f))
    return {
        "diag": "dr",
        "object": kind,
        "iters": its,
        "errors": errs,
        "residual": fs,
        "seconds": time.perf_counter() - t,
    }


def tight(kind: str, its: int, starts: int, size: int = n) -> dict[str, Any]:
    """ncvx amplitude fit from random starts on a tight box (complex variables)."""
    p = setup(kind)
    real, mags = p["real"], p["mags"]
    sup = box_mask(size)
    gen = torch.Generator().manual_seed(0)
    prob = CDIProblem(p["Y"], (R0, R0, size, size), real=False, nonnegative=False)
    errs, mis = [], []
    t = time.perf_counter()
    for s0 in random_start(sup, mags, num=starts, real=real, generator=gen):
        img = s0[sup].reshape(size, size)
        if real:  # a real start is a saddle of the lifted problem
            wiggle = torch.rand(img.shape, dtype=img.dtype, generator=gen) - 0.5
            img = torch.complex(img, 0.3 * float(img.abs().max()) * wiggle)
        res = ncvx.solve(prob.fit_fn(), prob.variables(img), maxit=its, **OPTS)
        z = prob.field(res.final.x)
        errs.append(err(real_projection(z) if real else z, p["truth"]))
        mis.append(float(prob.misfit(res.final.x)))
    return {
        "diag": "tight",
        "object": kind,
        "box": size,
        "iters": its,
        "errors": errs,
        "misfit": mis,
        "seconds": time.perf_counter() - t,
    }


def tvloose(kind: str, its: int, starts: int) -> dict[str, Any]:
    """The lifted TV-discrepancy path on the loose box only."""
    p = setup(kind)
    real, mags = p["real"], p["mags"]
    sup = box_mask(B)
    gen = torch.Generator().manual_seed(0)
    prob = CDIProblem(p["Y"], (R0, R0, B, B), real=False, nonnegative=False)
    opts = {**OPTS, "opt_tol": 1e-12}
    errs, mis = [], []
    t = time.perf_counter()
    for s0 in random_start(sup, mags, num=starts, real=real, generator=gen):
        img = s0[sup].reshape(B, B)
        if real:
            wiggle = torch.rand(img.shape, dtype=img.dtype, generator=gen) - 0.5
            img = torch.complex(img, 0.3 * float(img.abs().max()) * wiggle)
        v = prob.variables(img)
        for d in (3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4):
            v = ncvx.solve(prob.discrepancy_fn(d), v, maxit=its, **opts).final.x
        v = ncvx.solve(prob.fit_fn(), v, maxit=its, **OPTS).final.x
        z = prob.field(v)
        errs.append(err(real_projection(z) if real else z, p["truth"]))
        mis.append(float(prob.misfit(v)))
    return {
        "diag": "tvloose",
        "object": kind,
        "iters": its,
        "errors": errs,
        "misfit": mis,
        "seconds": time.perf_counter() - t,
    }


def dip(
    kind: str, its: int, width: int, depth: int, lift: bool, seed: int, size: int = B
) -> dict[str, Any]:
    """Double DIP on the box (float32 weights), with the aligned error every 250 iterations."""
    p = setup(kind)
    real, truth = p["real"], p["truth"]
    Y = p["Y"].float()
    ff = FarField((size, size), (N, N), offset=(R0, R0))
    net = DoubleDIP((size, size), real=real and not lift, width=width, depth=depth, seed=seed)
    with torch.no_grad():
        gain = float(Y.sum().sqrt() / net().abs().norm())

    def current() -> torch.Tensor:
        with torch.no_grad():
            z = ff.pad(gain * net()).double() if real and not lift else ff.pad(gain * net())
        return z.to(torch.complex128) if z.is_complex() else z

    def fn(module):
        return data_misfit(ff.linear(gain * module()), Y, "amplitude") / Y.sum(), None, None

    trace: list[tuple[int, float, float]] = []

    def cb(rec) -> None:
        if rec.iteration % 250 == 0:
            trace.append((rec.iteration, float(rec.point.f), err(current(), truth)))

    t = time.perf_counter()
    res = ncvx.solve_module(net, fn, maxit=its, callback=cb, **OPTS)
    z = current()
    return {
        "diag": "dip",
        "object": kind + ("_lift" if lift else ""),
        "box": size,
        "width": width,
        "depth": depth,
        "iters": res.iters,
        "misfit": float(res.final.f),
        "error": err(real_projection(z) if (real and lift) else z, truth),
        "trace": trace,
        "seconds": time.perf_counter() - t,
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--diag",
        nargs="+",
        default=["modes", "near", "dr", "tight", "tvloose"],
        choices=["modes", "near", "dr", "tight", "tvloose", "dip"],
    )
    ap.add_argument("--objects", nargs="+", default=["real", "complex"])
    ap.add_argument("--starts", type=int, default=2)
    ap.add_argument("--dip-maxit", type=int, default=1200)
    ap.add_argument("--dip-width", type=int, default=16)
    ap.add_argument("--dip-depth", type=int, default=3)
    ap.add_argument("--name", default="cdi_diagnostics")
    args = ap.parse_args()
    quiet_threads()
    recs: list[dict[str, Any]] = []

    def log(r: dict[str, Any]) -> None:
        recs.append(r)
        short = {
            k: (np.round(v, 4).tolist() if isinstance(v, list | float) else v)
            for k, v in r.items()
            if k != "trace"
        }
        print(short, flush=True)

    for kind in args.objects:
        if "modes" in args.diag:
            for k in (8, 2):
                log(modes(kind, k, 300 if k == 8 else 500, 0))
        if "near" in args.diag:
            for size in (B, n):
                for level in (0.1, 0.03):
                    log(near(kind, size, level, 600))
        if "dr" in args.diag:
            log(dr(kind, 500, args.starts))
        if "tight" in args.diag:
            log(tight(kind, 600, args.starts))
        if "tvloose" in args.diag:
            log(tvloose(kind, 300, args.starts))
        if "dip" in args.diag:
            for lift in [False, True] if kind == "real" else [False]:
                log(dip(kind, args.dip_maxit, args.dip_width, args.dip_depth, lift, 0))
    write_json(args.name, {"config": vars(args), "env": environment(), "records": recs})
    rows = []
    for r in recs:
        if r["diag"] == "modes":
            what = f"K={r['K']} modes, {r['iters']} its: misfit {r['misfit']:.1e}"
            res = (
                f"span residual {r['span_residual']:.3f}; mode errors "
                f"{min(r['mode_errors']):.2f}-{max(r['mode_errors']):.2f}"
            )
        elif r["diag"] == "near":
            what = f"truth + {r['level']:g} noise, {r['box']}x{r['box']} box, {r['iters']} its"
            res = (
                f"start {r['start_error']:.3f} -> ER {r['er_error']:.4f}, "
                f"ncvx {r['ncvx_error']:.4f} (misfit {r['ncvx_misfit']:.1e})"
            )
        elif r["diag"] == "dip":
            what = (
                f"double DIP w{r['width']} d{r['depth']}, {r['box']}x{r['box']} box, "
                f"{r['iters']} its"
            )
            res = f"error {r['error']:.3f}, misfit {r['misfit']:.1e}"
        else:
            what = f"{r['diag']}, {r['iters']} its, {len(r['errors'])} starts"
            res = "errors " + ", ".join(f"{e:.3f}" for e in r["errors"])
        rows.append([r["object"], what, res, f"{r['seconds']:.0f}"])
    write_markdown(
        args.name,
        "# CDI from random starts: diagnostics (noiseless, loose 80x80 box)\n\n"
        "Errors: relative, after shift/twin/phase alignment; success would be < 1e-2.\n\n"
        + md_table(["object", "what", "result", "seconds"], rows),
    )


if __name__ == "__main__":
    main()
