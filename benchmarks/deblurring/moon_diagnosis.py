"""Why the blind pipeline misses +2 dB on the held-out moon cases (session 9): reference kernels
through the final stage, and the alternating stage started from the true kernel.

    OMP_NUM_THREADS=1 python -m benchmarks.deblurring.moon_diagnosis refs
    OMP_NUM_THREADS=1 python -m benchmarks.deblurring.moon_diagnosis basins CASE ...

``refs``: for every held-out moon case (``blind_choice.SETS``), the final stage of the pipeline
(TV s.t. the misfit bound, 'valid' blur, from ``y`` padded) with a delta kernel, a generic
Gaussian (sd 1 px), the true kernel and the pipeline's saved kernel
(``results/blind_choice/<case>-fit_0_p0.05.npz``), plus the signal-to-noise figures
``var(y) / sigma^2`` and the gradient SNR of ``y`` (``(|grad y|^2 - 2 sigma^2 M) / (2 sigma^2 M)``,
``M`` gradient entries). ``basins``: the alternating stage at the half-size support (8 rounds)
from the pipeline's warm start and from the true kernel, with the truth-free criteria of both
end points (the formulation's ``||grad x||_1 / ||grad x||_2``, TV/N, residual whiteness) and the
final-stage PSNR. Prints one line per case; nothing is saved.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from ncvx_imaging.deblurring.blind import (
    _odd,
    blind_deblur_am,
    crop_latent,
    crop_latent_centred,
    pad_latent,
)
from ncvx_imaging.deblurring.kernels import gaussian_kernel, pad_kernel
from ncvx_imaging.deblurring.nonblind import deconv_tv_discrepancy
from ncvx_imaging.deblurring.operators import conv_valid
from ncvx_imaging.deblurring.pipeline import residual_whiteness, size_pyramid_warm_start
from ncvx_imaging.deblurring.regularizers import l1_over_l2, total_variation
from ncvx_imaging.deblurring.synthetic import make_blur_problem
from ncvx_imaging.metrics import kernel_error_aligned, psnr_aligned

from .blind_choice import SETS, _kernel, case_name

OUT = Path(__file__).resolve().parent / "results" / "blind_choice"


def _problem(c: tuple):
    return make_blur_problem(c[0], 64, _kernel(c[1]), c[3], boundary="valid", seed=c[4])


def _final_psnr(P, k: torch.Tensor, x0: torch.Tensor | None = None) -> float:
    x0 = pad_latent(P.y, tuple(k.shape)) if x0 is None else x0.clamp(0, 1)
    f = deconv_tv_discrepancy(P.y, k, P.sigma, 1.0, boundary="valid", x0=x0, maxit=300,
                              box="fold")
    return psnr_aligned(crop_latent_centred(f.x, k).clamp(0, 1), P.x, 8)[0]


def refs(cases: list[tuple]) -> None:
    for c in cases:
        P = _problem(c)
        s = P.k.shape[0]
        y, sig = P.y, P.sigma
        g = float(((y[1:] - y[:-1]) ** 2).sum() + ((y[:, 1:] - y[:, :-1]) ** 2).sum())
        m = 2 * sig**2 * (y[1:].numel() + y[:, 1:].numel())
        kernels = {"delta": pad_kernel(torch.ones(1, 1, dtype=y.dtype), (s, s)),
                   "gauss1": gaussian_kernel(s, 1.0), "true": P.k}
        saved = OUT / f"{case_name(c)}-fit_0_p0.05.npz"
        if saved.exists():
            kernels["pipeline"] = torch.tensor(np.load(saved)["k"])
        b = psnr_aligned(y, P.x, 8)[0]
        line = f"{case_name(c):32s} var(y)/s2 {float(y.var()) / sig**2:5.1f} gradSNR {(g - m) / m:5.2f}"
        line += f" blurry {b:.2f}"
        for name, k in kernels.items():
            v = _final_psnr(P, k)
            line += f" | {name} {v:.2f} ({v - b:+.2f})"
        print(line, flush=True)


def basins(cases: list[tuple]) -> None:
    for c in cases:
        P = _problem(c)
        torch.manual_seed(0)
        _, _, info = size_pyramid_warm_start(P.y, c[2], P.sigma, 1.0, 1500, 0, None, None,
                                             ring_max=1.0)
        w = info["small_warmup"]
        s = _odd(c[2] / 2)
        if P.k.shape[0] > s:
            print(f"{case_name(c)}: true kernel larger than the half support, skipped")
            continue
        starts = {"warm start": (w.x.to(P.y).clamp(0, 1), w.k.to(P.y) / w.k.sum()),
                  "true kernel": (pad_latent(P.y, (s, s)), pad_kernel(P.k, (s, s)))}
        line = case_name(c)
        for name, (x0, k0) in starts.items():
            am = blind_deblur_am(P.y, s, P.sigma, 1.0, outer=8, x0=x0, k0=k0, min_piece=0.05)
            inner = crop_latent(am.x, (s, s))
            white = residual_whiteness(P.y - conv_valid(am.x, am.k))
            line += (f" | from {name}: kernel error {kernel_error_aligned(am.k, P.k):.3f}, "
                     f"l1/l2 {float(l1_over_l2(inner)):.3f}, "
                     f"TV/N {float(total_variation(inner)) / inner.numel():.4f}, "
                     f"whiteness {white:.4f}, final {_final_psnr(P, am.k, am.x):.2f}")
        print(line, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["refs", "basins"])
    ap.add_argument("cases", nargs="*", help="case names (default: every held-out moon case)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    every = {case_name(c): c for name, cs in SETS.items() for c in cs}
    if args.cases:
        unknown = [n for n in args.cases if n not in every]
        if unknown:
            raise SystemExit(f"unknown cases {unknown}; e.g. {next(iter(every))}")
        cases = [every[n] for n in args.cases]
    else:
        cases = [c for n, cs in SETS.items() if n.startswith("held") for c in cs
                 if c[0] == "moon"]
    (refs if args.what == "refs" else basins)(cases)


if __name__ == "__main__":
    main()
