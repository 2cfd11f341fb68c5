"""Why a held-out blind case misses +2 dB (session 10: camera 9-px sigma .02, coffee 9-px
sigma .03): which of the kernel, the support, the start or the final stage's tau it is.

    OMP_NUM_THREADS=1 python -m benchmarks.deblurring.miss_diagnosis refs CASE ...
    OMP_NUM_THREADS=1 python -m benchmarks.deblurring.miss_diagnosis seeds CASE ...

``refs``: the final stage (TV s.t. the misfit bound ``tau sigma^2 N``, 'valid' blur, from ``y``
padded) with the true kernel, the pipeline's saved kernel (``results/blind_choice/<case>-<label>
.npz``, ``--label``, default the session-9 HEAD records) and a generic Gaussian (sd 1 px), each at
tau = 1, 0.9, 0.8, 0.7: if the true kernel gains +2 dB and the pipeline's does not at any tau,
the kernel is what misses, not the final stage. ``seeds``: the whole ``"fit"`` start with the
pipeline seeds given (``--seeds``, default 0 1 2): the chosen support, the kernel error of the
warm start and of the alternating stage, the final PSNR and the truth-free criteria of the
alternating stage's answer (the formulation's ``||grad x||_1 / ||grad x||_2``, TV/N, residual
whiteness); for the first seed also the alternating stage at the chosen support started from the
true kernel (is the truth a fixed point?) and 8 more rounds from the pipeline's own answer.
Compare with the exact-size record (``blind_choice --table``) for the support. Prints one line
per item; nothing is saved.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from ncvx_imaging.deblurring.blind import (
    blind_deblur_am,
    crop_latent,
    crop_latent_centred,
    pad_latent,
)
from ncvx_imaging.deblurring.kernels import gaussian_kernel, pad_kernel
from ncvx_imaging.deblurring.nonblind import deconv_tv_discrepancy
from ncvx_imaging.deblurring.operators import conv_valid
from ncvx_imaging.deblurring.pipeline import _one_start, residual_whiteness
from ncvx_imaging.deblurring.regularizers import l1_over_l2, total_variation
from ncvx_imaging.metrics import kernel_error_aligned, psnr_aligned

from .blind_choice import SETS, case_name, exact_size
from .moon_diagnosis import OUT, _problem


def _final(P, k: torch.Tensor, tau: float = 1.0, x0: torch.Tensor | None = None) -> float:
    x0 = pad_latent(P.y, tuple(k.shape)) if x0 is None else x0.clamp(0, 1)
    f = deconv_tv_discrepancy(P.y, k, P.sigma, tau, boundary="valid", x0=x0, maxit=300,
                              box="fold")
    return psnr_aligned(crop_latent_centred(f.x, k).clamp(0, 1), P.x, 8)[0]


def _criteria(P, x: torch.Tensor, k: torch.Tensor) -> str:
    inner = crop_latent(x, tuple(k.shape))
    return (f"l1/l2 {float(l1_over_l2(inner)):.3f}, "
            f"TV/N {float(total_variation(inner)) / inner.numel():.4f}, "
            f"whiteness {residual_whiteness(P.y - conv_valid(x, k)):.4f}")


def refs(cases: list[tuple], label: str) -> None:
    for c in cases:
        P = _problem(c)
        b = psnr_aligned(P.y, P.x, 8)[0]
        saved = np.load(OUT / f"{case_name(c)}-{label}.npz")
        kp = torch.tensor(saved["k"])
        print(f"{case_name(c)}: blurry {b:.2f}, var(y)/sigma^2 {float(P.y.var()) / P.sigma**2:.1f}"
              f", pipeline kernel error {kernel_error_aligned(kp, P.k):.3f}", flush=True)
        for name, k in (("true", P.k), ("pipeline", kp),
                        ("gauss1", gaussian_kernel(P.k.shape[0], 1.0))):
            row = [f"tau {t}: {v:.2f} ({v - b:+.2f})"
                   for t in (1.0, 0.9, 0.8, 0.7) for v in [_final(P, k, t)]]
            print(f"  {name:8s} " + " | ".join(row), flush=True)


def seeds(cases: list[tuple], seed_list: list[int]) -> None:
    for c in cases:
        P = _problem(c)
        b = psnr_aligned(P.y, P.x, 8)[0]
        print(f"{case_name(c)}: blurry {b:.2f}", flush=True)
        for i, seed in enumerate(seed_list):
            out, info = _one_start(P.y, c[2], P.sigma, 1.0, "fit", seed, 1500, 8, 300, None,
                                   None, min_piece=0.05)
            v = psnr_aligned(crop_latent_centred(out.x, out.k).clamp(0, 1), P.x, 8)[0]
            am, warm = info["am"], info["warmup"]
            s = am.k.shape[0]
            wk = warm.k.to(P.y) / warm.k.sum()
            print(f"  seed {seed}: final {v:.2f} ({v - b:+.2f}), support {s}, kernel error warm "
                  f"start {kernel_error_aligned(wk, P.k):.3f} / alternating "
                  f"{kernel_error_aligned(am.k, P.k):.3f}; {_criteria(P, am.x, am.k)}",
                  flush=True)
            if i == 0:
                rows = torch.nonzero(P.k.sum(1)).flatten()
                cols = torch.nonzero(P.k.sum(0)).flatten()
                kt = P.k[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]  # nonzero box
                if max(kt.shape) <= s:
                    tr = blind_deblur_am(P.y, s, P.sigma, 1.0, outer=8,
                                         x0=pad_latent(P.y, (s, s)), k0=pad_kernel(kt, (s, s)),
                                         min_piece=0.05)
                    print(f"    from the true kernel at {s}: kernel error "
                          f"{kernel_error_aligned(tr.k, P.k):.3f}, final "
                          f"{_final(P, tr.k, x0=tr.x):.2f}; {_criteria(P, tr.x, tr.k)}",
                          flush=True)
                more = blind_deblur_am(P.y, s, P.sigma, 1.0, outer=8, x0=am.x, k0=am.k,
                                       min_piece=0.05)
                print(f"    8 more rounds from the pipeline's answer: kernel error "
                      f"{kernel_error_aligned(more.k, P.k):.3f}, final "
                      f"{_final(P, more.k, x0=more.x):.2f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["refs", "seeds"])
    ap.add_argument("cases", nargs="+", help="case names, e.g. camera-motion9_100-25-0.02-s2")
    ap.add_argument("--label", default="fit_0_p0.05_ha4a32ab", help="record label (refs)")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    args = ap.parse_args()
    torch.set_num_threads(1)
    every = {case_name(d): d for cs in SETS.values() for c in cs for d in (c, exact_size(c))}
    unknown = [n for n in args.cases if n not in every]
    if unknown:
        raise SystemExit(f"unknown cases {unknown}; e.g. {next(iter(every))}")
    cases = [every[n] for n in args.cases]
    if args.what == "refs":
        refs(cases, args.label)
    else:
        seeds(cases, args.seeds)


if __name__ == "__main__":
    main()
