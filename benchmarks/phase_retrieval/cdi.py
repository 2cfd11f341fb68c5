"""Far-field CDI: a 64x64 object in a 128x128 field, loose 80x80 support box, 8 random starts.

Objects (scikit-image): ``real`` = camera (values in [0, 1], non-negative); ``complex`` = camera
amplitude times ``exp(i phase_max * moon)`` (moon scaled to [0, 1]). Methods, each from the same
8 random starts (uniform values on the box; uniform phases for complex):

- ``hio_er``: HIO (beta 0.9) with shrinkwrap inside the loose box, then ER (the classical
  pipeline; Fienup 1982, Marchesini et al. 2003).
- ``ncvx``: ncvx L-BFGS on the amplitude fit over the loose box with the folded non-negativity
  constraint (real) -- a purely local method from the random start.
- ``hio_er_acs``: HIO + ER on a tight box whose *size* is read off the autocorrelation of the
  data (:func:`support_from_autocorrelation`; the position is free, translations being an
  ambiguity) -- the same data-derived information that starts shrinkwrap.
- ``double_dip`` (with ``--dip-maxit``): ncvx L-BFGS on the weights of amplitude/phase DIP
  generators over the loose box (:mod:`ncvx_imaging.phase_retrieval.dip`).
- ``acs_ncvx``: ``hio_er_acs`` followed by ncvx on the same box: the amplitude fit (noiseless) or,
  with ``--photons``, the discrepancy form ``min TV(x) s.t. misfit <= Poisson level``, the
  level being the expected Poisson amplitude misfit at the counts predicted by the phased
  estimate (:func:`poisson_amplitude_variance`).
- ``acs_ncvx_lift`` (real objects): the same refinement with the real object solved in *complex*
  variables (no realness or sign constraint), mapped back by :func:`real_projection` (global
  phase making it as real as possible, real part, clamp at 0), then polished in real variables
  with the sign constraint (``--polish-maxit``). The lift gives a local method directions out
  of the real problem's local minima.

Each method also reports the start it would keep by its own ground-truth-free criterion
(:func:`select_start`: lowest data misfit; for the discrepancy form the lowest TV among the
starts within 1 % of the noise level), so methods are compared per instance as a user would run
them, besides the median over starts.

Success: relative error < 1e-2 after removing shift, twin image and global phase. With
``--photons P`` the data are Poisson counts with P expected photons; PSNR (dB, peak = max|x|) of
the aligned object window is reported.

    OMP_NUM_THREADS=1 python -m benchmarks.phase_retrieval.cdi --objects real complex
    OMP_NUM_THREADS=1 python -m benchmarks.phase_retrieval.cdi --photons 1e7 --name cdi_poisson
    python -m benchmarks.phase_retrieval.cdi --recount --name cdi     # from the saved npz
"""

from __future__ import annotations

import argparse
import json
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
from ncvx_imaging.phase_retrieval import (
    CDIProblem,
    FarField,
    align_fourier,
    hio_er,
    poisson_amplitude_variance,
    poisson_noise,
    psnr,
    random_start,
    real_projection,
    support_from_autocorrelation,
    total_variation,
)

TOL = 1e-2
METHODS = ("hio_er", "ncvx", "hio_er_acs", "acs_ncvx", "acs_ncvx_lift")


def load_object(
    kind: str, size: int, phase_max: float, image: str = "camera", phase_image: str = "moon"
) -> torch.Tensor:
    """``real``: scikit-image ``image`` (grey, resized, scaled to [0, 1]); ``complex``: that
    amplitude times ``exp(i phase_max * phase_image)``."""
    from skimage import color, data, transform

    def img(name):
        a = getattr(data, name)()
        if a.ndim == 3:
            a = color.rgb2gray(a[..., :3])
        a = transform.resize(a.astype(float), (size, size), anti_aliasing=True)
        a = a - a.min()
        return torch.from_numpy(a / a.max())

    amp = img(image)
    if kind == "real":
        return amp
    return torch.polar(amp, phase_max * img(phase_image))


def criteria(fields: torch.Tensor, Y: torch.Tensor) -> tuple[list, list]:
    """Per start: the amplitude misfit ``sum (|F x| - sqrt Y)^2 / sum Y`` and the TV of the field
    (smoothed as in :meth:`CDIProblem.discrepancy_fn`, over ``sum sqrt Y``) -- no ground truth."""
    m = Y.clamp_min(0).sqrt()
    mis = (torch.fft.fft2(fields, norm="ortho").abs() - m).square().flatten(-2).sum(-1) / Y.sum()
    eps = 1e-3 * float(m.max())
    tv = torch.stack([total_variation(f, eps) for f in fields]) / m.sum()
    return mis.tolist(), tv.tolist()


def select_start(misfit: list, tv: list, delta: list | None) -> int:
    """The start a user would keep, by the method's own criterion: the lowest misfit, or for the
    discrepancy form the lowest TV among starts whose misfit is within 1 % of their noise level
    (the level itself is an estimate good to ~1/sqrt(#pixels)); lowest misfit if none is."""
    if delta:
        ok = [i for i, (a, d) in enumerate(zip(misfit, delta)) if a <= 1.01 * d]
        if ok:
            return min(ok, key=lambda i: tv[i])
    return int(np.argmin(misfit))


def evaluate(fields: torch.Tensor, truth_field: torch.Tensor, window) -> tuple[list, list]:
    aligned, err = align_fourier(fields, truth_field.expand(fields.shape))
    r, c, h, w = window
    p = psnr(
        aligned[..., r : r + h, c : c + w],
        truth_field[r : r + h, c : c + w].expand(len(fields), h, w),
    )
    return err.tolist(), p.tolist()


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--objects", nargs="+", default=["real", "complex"], choices=["real", "complex"]
    )
    ap.add_argument("--image", default="camera", help="scikit-image amplitude image")
    ap.add_argument("--phase-image", default="moon", help="scikit-image phase image (complex)")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--field", type=int, default=128)
    ap.add_argument("--box", type=int, default=80)
    ap.add_argument("--starts", type=int, default=8)
    ap.add_argument("--phase-max", type=float, default=math.pi / 2)
    ap.add_argument(
        "--photons", type=float, default=0.0, help="Poisson photon budget (0: noiseless)"
    )
    ap.add_argument("--hio-iters", type=int, default=1800)
    ap.add_argument("--er-iters", type=int, default=200)
    ap.add_argument(
        "--shrinkwrap-threshold",
        type=float,
        default=0.2,
        help="hio_er's shrinkwrap threshold (fraction of the blurred maximum)",
    )
    ap.add_argument("--ncvx-maxit", type=int, default=400, help="0 skips ncvx from random starts")
    ap.add_argument("--refine-maxit", type=int, default=800)
    ap.add_argument(
        "--polish-maxit",
        type=int,
        default=400,
        help="acs_ncvx_lift: real-variable iterations after the lifted solve (0: none)",
    )
    ap.add_argument(
        "--no-lift",
        action="store_true",
        help="skip acs_ncvx_lift (real object in complex variables)",
    )
    ap.add_argument("--dip-maxit", type=int, default=0, help="add the double-DIP method (0: off)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--name", default="cdi")
    ap.add_argument("--recount", action="store_true")
    args = ap.parse_args()
    quiet_threads()
    if args.recount:
        recount(args.name)
        return
    N, n, B = args.field, args.size, args.box
    ff = FarField((n, n), (N, N))
    r0 = (N - B) // 2
    loose = torch.zeros(N, N, dtype=torch.bool)
    loose[r0 : r0 + B, r0 : r0 + B] = True
    window = (*ff.offset, n, n)
    records, arrays = [], {}
    for kind in args.objects:
        real = kind == "real"
        obj = load_object(kind, n, args.phase_max, args.image, args.phase_image)
        truth = ff.pad(obj)
        Y = ff(obj)
        scale = 1.0
        if args.photons > 0:
            gen = torch.Generator().manual_seed(args.seed + 7)
            counts, scale = poisson_noise(Y, args.photons, generator=gen, return_counts=True)
            Y = counts / scale
        mags = Y.clamp_min(0).sqrt()
        thr = 1e-3 if args.photons <= 0 else 3.0 / float(Y.max() * scale)  # > a few counts
        h, w = support_from_autocorrelation(Y, threshold=thr)
        h, w = min(h, B), min(w, B)
        tight = torch.zeros(N, N, dtype=torch.bool)
        tight[r0 : r0 + h, r0 : r0 + w] = True
        gen = torch.Generator().manual_seed(args.seed)
        starts = random_start(loose, mags, num=args.starts, real=real, generator=gen)
        out: dict[str, torch.Tensor] = {}
        secs: dict[str, float] = {}
        t = time.perf_counter()
        out["hio_er"] = hio_er(
            mags,
            loose,
            starts,
            real=real,
            nonnegative=real,
            hio_iters=args.hio_iters,
            er_iters=args.er_iters,
            threshold=args.shrinkwrap_threshold,
        ).x
        secs["hio_er"] = time.perf_counter() - t
        # ncvx from the same random starts, loose box
        prob = CDIProblem(Y, (r0, r0, B, B), real=real, nonnegative=real, loss="amplitude")
        t = time.perf_counter()
        fields = []
        for s in range(args.starts if args.ncvx_maxit > 0 else 0):
            v0 = prob.variables(starts[s, r0 : r0 + B, r0 : r0 + B])
            res = ncvx.solve(
                prob.fit_fn(),
                v0,
                maxit=args.ncvx_maxit,
                print_level=0,
                limited_mem_size=10,
                opt_tol=1e-12,
            )
            v = res.final.x.clamp_min(0) if real else res.final.x
            fields.append(prob.field(v))
        if fields:
            out["ncvx"] = torch.stack(fields)
        secs["ncvx"] = time.perf_counter() - t
        t = time.perf_counter()
        acs_starts = starts * tight
        out["hio_er_acs"] = hio_er(
            mags,
            tight,
            acs_starts,
            real=real,
            nonnegative=real,
            hio_iters=args.hio_iters,
            er_iters=args.er_iters,
            shrinkwrap_every=0,
        ).x
        secs["hio_er_acs"] = time.perf_counter() - t
        t = time.perf_counter()
        crit_fields: dict[str, torch.Tensor] = {}
        deltas: list[float] = []
        for meth, lift in (("acs_ncvx", False), ("acs_ncvx_lift", True)):
            if lift and (not real or args.no_lift):
                continue
            t = time.perf_counter()
            fields, lifted, deltas = refine(
                out["hio_er_acs"], Y, scale, (r0, r0, h, w), real, lift, args
            )
            out[meth] = fields
            crit_fields[meth] = lifted
            secs[meth] = time.perf_counter() - t
        methods = [m for m in METHODS if m in out]
        if args.dip_maxit > 0:
            from ncvx_imaging.phase_retrieval.dip import fit_double_dip

            t = time.perf_counter()
            fields = []
            for s in range(args.starts):
                fit = fit_double_dip(Y, (r0, r0, B, B), real=real, maxit=args.dip_maxit, seed=s)
                fields.append(prob.field(prob.variables(fit.image)))
            out["double_dip"] = torch.stack(fields)
            secs["double_dip"] = time.perf_counter() - t
            methods.append("double_dip")
        arrays[f"{kind}_truth"] = truth.numpy()
        arrays["box"] = np.array([r0, B, N])
        for meth in methods:
            errs, ps = evaluate(out[meth], truth, window)
            mis, tvs = criteria(crit_fields.get(meth, out[meth]), Y)
            sel = select_start(mis, tvs, deltas if meth.startswith("acs_ncvx") else None)
            arrays[f"{kind}_{meth}"] = compact(out[meth], r0, B)
            rec = {
                "object": kind,
                "method": meth,
                "rel_errors": errs,
                "psnr_db": ps,
                "successes": sum(e < TOL for e in errs),
                "starts": args.starts,
                "median_psnr_db": float(np.median(ps)),
                "seconds": secs[meth],
                "support_hw": [h, w] if "acs" in meth else [B, B],
                "misfit": mis,
                "tv": tvs,
                "selected_start": sel,
                "selected_rel_error": errs[sel],
                "selected_psnr_db": ps[sel],
            }
            if meth.startswith("acs_ncvx") and deltas:
                rec["delta"] = deltas
            records.append(rec)
            print(
                kind,
                meth,
                f"success {rec['successes']}/{args.starts}",
                "err",
                np.round(errs, 4).tolist(),
                f"psnr~{rec['median_psnr_db']:.1f}",
                f"selected #{sel}: {ps[sel]:.1f} dB",
                f"{secs[meth]:.0f}s",
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
            f"{min(r['rel_errors']):.2e}",
            f"{float(np.median(r['rel_errors'])):.3f}",
            f"{r['median_psnr_db']:.2f}",
            f"{max(r['psnr_db']):.2f}",
            f"{r['selected_psnr_db']:.2f} (#{r['selected_start']})",
            f"{r['seconds']:.0f}",
        ]
        for r in records
    ]
    noise = f"Poisson, {args.photons:.0e} photons" if args.photons > 0 else "noiseless"
    write_markdown(
        args.name,
        (
            f"# CDI: {n}x{n} object in {N}x{N}, loose {B}x{B} box, {args.starts} random starts ({noise})\n\n"
            f"Success: relative error < {TOL:g} after shift/twin/global-phase alignment. PSNR on the "
            f"aligned {n}x{n} object window (peak max|x|). *Selected*: the start each method "
            "keeps by its own criterion, no ground truth (lowest data misfit; for the discrepancy "
            "form the lowest TV among starts within 1 % of the noise level).\n\n"
            + md_table(
                [
                    "object",
                    "method",
                    "successes",
                    "best err",
                    "median err",
                    "median PSNR",
                    "best PSNR",
                    "selected PSNR (start)",
                    "seconds (all starts)",
                ],
                rows,
            )
        ),
    )


def refine(
    phased: torch.Tensor,
    Y: torch.Tensor,
    scale: float,
    box: tuple[int, int, int, int],
    real: bool,
    lift: bool,
    args: argparse.Namespace,
) -> tuple[torch.Tensor, torch.Tensor, list[float]]:
    """ncvx on the tight box from each phased field: the amplitude fit (noiseless) or the
    discrepancy form (``--photons``). ``lift``: a real object is solved in complex variables (no
    realness or sign constraint), mapped back by :func:`real_projection` and polished in real
    variables for ``--polish-maxit`` iterations.

    Returns the fields, the fields the selection criterion is computed on (the complex ones
    before the projection when lifted without a polish) and the per-start noise levels (empty
    when noiseless).
    """
    r0, c0, h, w = box
    as_real = real and not lift
    prob = CDIProblem(Y, box, real=as_real, nonnegative=as_real, loss="amplitude")
    fields, raw, deltas = [], [], []
    gen = torch.Generator().manual_seed(args.seed + 11)
    for phased_s in phased:
        if args.photons > 0:
            # noise level: expected Poisson amplitude misfit at the counts the phased estimate
            # predicts (no ground truth involved)
            rate = torch.fft.fft2(phased_s, norm="ortho").abs().square() * scale
            delta = float(poisson_amplitude_variance(rate).sum()) / float(Y.sum() * scale)
            deltas.append(delta)
            fn = prob.discrepancy_fn(delta)
        else:
            fn = prob.fit_fn()
        img = phased_s[r0 : r0 + h, c0 : c0 + w]
        if as_real:
            img = img.real.clamp_min(0) + 1e-3 * float(img.abs().max())
        elif real:
            # a real point is a saddle of the lifted problem: nudge it off the real axis
            noise = torch.randn(img.shape, dtype=Y.dtype, generator=gen)
            img = torch.complex(img.real, 1e-2 * float(img.abs().max()) * noise)
        v0 = prob.variables(img)
        res = ncvx.solve(
            fn, v0, maxit=args.refine_maxit, print_level=0, limited_mem_size=10, opt_tol=1e-12
        )
        z = prob.field(res.final.x)
        if lift and args.polish_maxit > 0:
            # back in real variables with the realness and sign constraints: a short polish
            z = real_projection(z)
            img = z[r0 : r0 + h, c0 : c0 + w] + 1e-3 * float(z.max())
            rprob = CDIProblem(Y, box, real=True, nonnegative=True, loss="amplitude")
            fn = rprob.discrepancy_fn(delta) if args.photons > 0 else rprob.fit_fn()
            res = ncvx.solve(
                fn,
                rprob.variables(img),
                maxit=args.polish_maxit,
                print_level=0,
                limited_mem_size=10,
                opt_tol=1e-12,
            )
            z = rprob.field(res.final.x.clamp_min(0))
        raw.append(z)
        fields.append(real_projection(z) if real else z)
    return torch.stack(fields), torch.stack(raw), deltas


def compact(fields: torch.Tensor, r0: int, B: int) -> np.ndarray:
    """The loose-box crop (every method's fields vanish outside it), single precision."""
    crop = fields[..., r0 : r0 + B, r0 : r0 + B]
    return crop.to(torch.complex64 if crop.is_complex() else torch.float32).numpy()


def expand(arr: np.ndarray, box: np.ndarray | None) -> torch.Tensor:
    """Inverse of :func:`compact` (full fields pass through)."""
    t = torch.from_numpy(arr).to(torch.complex128 if np.iscomplexobj(arr) else torch.float64)
    if box is None or t.shape[-1] == int(box[2]):
        return t
    r0, B, N = (int(v) for v in box)
    out = torch.zeros(*t.shape[:-2], N, N, dtype=t.dtype)
    out[..., r0 : r0 + B, r0 : r0 + B] = t
    return out


def recount(name: str) -> None:
    """Recompute the errors from the saved reconstructions; the selected start (chosen by a
    ground-truth-free criterion when the benchmark ran) is read from the JSON record."""
    data = np.load(RESULTS / f"{name}.npz")
    box = data["box"] if "box" in data.files else None
    chosen = {}
    if (RESULTS / f"{name}.json").exists():
        for r in json.loads((RESULTS / f"{name}.json").read_text())["records"]:
            if "selected_start" in r:
                # the npz key holds the method's base name ("tv_path" for "tv_path_restarts(6)")
                base = r["method"].split("_restarts")[0]
                chosen[(r["object"], base)] = r["selected_start"]
    for key in data.files:
        if key == "box":
            continue
        kind, meth = key.split("_", 1)
        if meth == "truth":
            continue
        truth = torch.from_numpy(data[f"{kind}_truth"])
        fields = expand(data[key], box)
        aligned, err = align_fourier(fields, truth.expand(fields.shape))
        # PSNR on the object window: the truth's non-zero bounding box
        nz = truth.abs() > 0
        rows, cols = nz.any(1).nonzero().flatten(), nz.any(0).nonzero().flatten()
        win = (slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1))
        p = psnr(aligned[..., win[0], win[1]], truth[win].expand(len(fields), *truth[win].shape))
        sel = chosen.get((kind, meth))
        extra = (
            f"  selected #{sel}: {float(err[sel]):.4f} ({float(p[sel]):.2f} dB)"
            if sel is not None
            else ""
        )
        print(
            f"{kind:8s} {meth:14s} {int((err < TOL).sum())}/{len(err)}  median PSNR "
            f"{float(np.median(p.numpy())):.2f} dB  errors {np.round(err.numpy(), 4).tolist()}{extra}"
        )


if __name__ == "__main__":
    main()
