"""The constrained blind-deblurring pipeline for an unknown (over-specified) kernel size.

Three stages, each tied to the noise level ``sigma`` (given or estimated) instead of to tuned
weights:

1. **Double-DIP warm start** — image generator ``x = G(z)`` and softmax kernel generator, Adam on
   the MSE, *stopped when the MSE reaches sigma^2* (discrepancy principle as the stopping rule,
   so the noise is not fitted).
2. **Alternating refinement** (:func:`~ncvx_imaging.deblurring.blind.blind_deblur_am` at full
   resolution): ncvx image steps ``min ||grad x||_1/||grad x||_2`` s.t. misfit <= tau sigma^2 N,
   0 <= x <= 1, and least-squares kernel fits of the image gradients on the simplex (entries below
   5 % of the peak cleared, which keeps an over-sized support empty).
3. **Final non-blind deconvolution** with the estimated kernel (:func:`~ncvx_imaging.deblurring.
   nonblind.deconv_tv_discrepancy`, 'valid' boundary): ``min TV(x)`` s.t. the same misfit bound.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from .blind import BlindResult, blind_deblur_am
from .blind_dip import double_dip_naive
from .noise import estimate_noise_sigma
from .nonblind import deconv_tv_discrepancy

__all__ = ["blind_deblur_constrained"]


def blind_deblur_constrained(
    y: torch.Tensor,
    kernel_size: int,
    sigma: float | None = None,
    tau: float = 1.0,
    warmup_iters: int = 1500,
    outer: int = 8,
    final_maxit: int = 300,
    seed: int = 0,
    net: Any = None,
    z: torch.Tensor | None = None,
    stages: dict[str, Any] | None = None,
) -> BlindResult:
    """Blind deblurring of ``y`` (``(h, w)``, float64) with a ``kernel_size`` kernel (may be
    over-specified); see the module doc. ``net``/``z``: the image generator and its input for the
    warm start (default :func:`~ncvx_imaging.dip.small_skip`; e.g. ``standard_skip`` on a GPU).
    ``stages``, when a dict, receives the intermediate results (``"warmup"``, ``"am"``)."""
    if y.dim() != 2:
        raise ValueError(f"y must be (h, w), got {tuple(y.shape)}")
    if sigma is None:
        sigma = float(estimate_noise_sigma(y))
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    warm = double_dip_naive(y, kernel_size, iters=warmup_iters, seed=seed, net=net, z=z,
                            stop_mse=tau * sigma**2)
    am = blind_deblur_am(y, kernel_size, sigma, tau, outer=outer,
                         x0=warm.x.to(y).clamp(0, 1), k0=warm.k.to(y))
    final = deconv_tv_discrepancy(y, am.k, sigma, tau, boundary="valid", x0=am.x.clamp(0, 1),
                                  maxit=final_maxit)
    if stages is not None:
        stages.update({"warmup": warm, "am": am})
    secs = time.perf_counter() - t0
    return BlindResult(x=final.x, k=am.k, result=final.result, seconds=secs, sigma=sigma,
                       misfit_ratio=final.misfit_ratio)
