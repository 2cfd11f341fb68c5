"""The constrained blind-deblurring pipeline for an unknown (over-specified) kernel size.

Three stages, each tied to the noise level ``sigma`` (given or estimated) instead of to tuned
weights:

1. **Double-DIP warm start** — image generator ``x = G(z)`` and softmax kernel generator, Adam on
   the MSE, *stopped when the MSE reaches sigma^2* (discrepancy principle as the stopping rule,
   so the noise is not fitted). ``warm_start="coarse"`` runs it on ``y`` averaged over 2 x 2
   blocks (noise ``sigma / 2``, kernel half the size), refines that by the alternating method at
   the coarse scale and upsamples image and kernel: the smaller problem finds the blur before the
   image generator has fitted the data. ``warm_start="eswmv"`` runs the full-resolution warm
   start to the end and keeps the iterate chosen by ES-WMV (no noise level needed).
2. **Alternating refinement** (:func:`~ncvx_imaging.deblurring.blind.blind_deblur_am` at full
   resolution): ncvx image steps ``min ||grad x||_1/||grad x||_2`` s.t. misfit <= tau sigma^2 N,
   0 <= x <= 1, and least-squares kernel fits of the image gradients on the simplex (entries below
   5 % of the peak cleared, which keeps an over-sized support empty).
3. **Final non-blind deconvolution** with the estimated kernel (:func:`~ncvx_imaging.deblurring.
   nonblind.deconv_tv_discrepancy`, 'valid' boundary): ``min TV(x)`` s.t. the same misfit bound.

With several ``starts`` (warm-start kinds x seeds) every start runs all three stages and the answer
with the lowest value of the formulation's objective, ``||grad x||_1 / ||grad x||_2`` of the final
image (all answers satisfy the same misfit bound), is returned — a choice that uses only ``y``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from .blind import BlindResult, _odd, _resize, blind_deblur_am, crop_latent, pad_latent
from .blind_dip import double_dip_naive
from .noise import estimate_noise_sigma
from .nonblind import deconv_tv_discrepancy
from .regularizers import l1_over_l2

__all__ = ["blind_deblur_constrained", "coarse_warm_start", "eswmv_warm_start"]


def coarse_warm_start(
    y: torch.Tensor,
    kernel_size: int,
    sigma: float,
    tau: float = 1.0,
    warmup_iters: int = 1500,
    outer: int = 8,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """Stage 1 at half resolution: double DIP (stopped at the noise level ``sigma / 2``) and the
    alternating refinement on ``y`` averaged over 2 x 2 blocks with a kernel of about half the
    size, then both upsampled (bilinear; the kernel renormalised). Returns the full-resolution
    latent image ``(h + k - 1, w + k - 1)``, the ``kernel_size`` kernel and the coarse results."""
    y2 = F.avg_pool2d(y[None, None], 2)[0, 0]
    s2 = _odd(kernel_size / 2)
    s_c = sigma / 2
    warm = double_dip_naive(y2, s2, iters=warmup_iters, seed=seed, stop_mse=tau * s_c**2)
    am = blind_deblur_am(y2, s2, s_c, tau, outer=outer, x0=warm.x.to(y2).clamp(0, 1),
                         k0=warm.k.to(y2))
    k_up = _resize(am.k, (kernel_size, kernel_size)).clamp_min(0)
    inner = _resize(crop_latent(am.x, (s2, s2)), tuple(y.shape)).clamp(0, 1)
    return pad_latent(inner, (kernel_size, kernel_size)), k_up / k_up.sum(), {"warmup": warm,
                                                                               "am": am}


def eswmv_warm_start(
    y: torch.Tensor,
    kernel_size: int,
    iters: int = 1500,
    seed: int = 0,
    net: Any = None,
    z: torch.Tensor | None = None,
    window: int = 50,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """Stage 1 stopped by ES-WMV instead of at the noise level: the naive double DIP runs all
    ``iters`` Adam steps and the latent image and kernel of the iteration with the smallest
    windowed moving variance of the image (:class:`~ncvx_imaging.dip.ESWMV`) are returned —
    needs no noise level."""
    from ..dip.early_stopping import ESWMV

    es = ESWMV(window=window, patience=iters + 1)
    kept: dict[str, torch.Tensor] = {}

    def watch(x: torch.Tensor, k: torch.Tensor) -> None:
        es.update(x)
        if es.best_iteration == es.iteration:
            kept["x"], kept["k"] = x.clone(), k.clone()

    warm = double_dip_naive(y, kernel_size, iters=iters, seed=seed, net=net, z=z, monitor=watch,
                            monitor_every=1)
    if not kept:  # fewer iterations than the window: use the last ones
        kept["x"], kept["k"] = warm.x, warm.k
    info = {"warmup": warm, "eswmv_iteration": es.best_iteration}
    return kept["x"].to(y).clamp(0, 1), kept["k"].to(y), info


def _one_start(
    y: torch.Tensor, kernel_size: int, sigma: float, tau: float, warm_start: str, seed: int,
    warmup_iters: int, outer: int, final_maxit: int, net: Any, z: Any,
) -> tuple[BlindResult, dict[str, Any]]:
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    if warm_start == "coarse":
        x0, k0, info = coarse_warm_start(y, kernel_size, sigma, tau, warmup_iters, outer, seed)
    elif warm_start == "eswmv":
        x0, k0, info = eswmv_warm_start(y, kernel_size, warmup_iters, seed, net, z)
    else:
        warm = double_dip_naive(y, kernel_size, iters=warmup_iters, seed=seed, net=net, z=z,
                                stop_mse=tau * sigma**2)
        x0, k0, info = warm.x.to(y).clamp(0, 1), warm.k.to(y), {"warmup": warm}
    am = blind_deblur_am(y, kernel_size, sigma, tau, outer=outer, x0=x0, k0=k0)
    final = deconv_tv_discrepancy(y, am.k, sigma, tau, boundary="valid", x0=am.x.clamp(0, 1),
                                  maxit=final_maxit, box="fold")
    info["am"] = am
    out = BlindResult(x=final.x, k=am.k, result=final.result, seconds=time.perf_counter() - t0,
                      sigma=sigma, misfit_ratio=final.misfit_ratio)
    return out, info


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
    starts: Sequence[tuple[str, int]] | None = None,
) -> BlindResult:
    """Blind deblurring of ``y`` (``(h, w)``, float64) with a ``kernel_size`` kernel (may be
    over-specified); see the module doc. ``net``/``z``: the image generator and its input for the
    full-resolution warm start (default :func:`~ncvx_imaging.dip.small_skip`; e.g.
    ``standard_skip`` on a GPU). ``starts``: ``(warm_start, seed)`` pairs, ``warm_start`` in
    ``"full"``, ``"coarse"``, ``"eswmv"`` (:func:`eswmv_warm_start`; default:
    ``[("full", seed)]``, the single-start pipeline); the
    answer with the lowest objective is returned. ``stages``, when a dict, receives the
    intermediate results of the chosen start (``"warmup"``, ``"am"``) and ``"starts"``: one
    ``(warm_start, seed, objective, misfit ratio)`` per start."""
    if y.dim() != 2:
        raise ValueError(f"y must be (h, w), got {tuple(y.shape)}")
    if sigma is None:
        sigma = float(estimate_noise_sigma(y))
    starts = [("full", seed)] if starts is None else list(starts)
    if not starts:
        raise ValueError("starts must not be empty")
    for kind, _ in starts:
        if kind not in ("full", "coarse", "eswmv"):
            raise ValueError(f"warm start must be 'full', 'coarse' or 'eswmv', got {kind!r}")
    t0 = time.perf_counter()
    best: tuple[float, BlindResult, dict[str, Any]] | None = None
    scores = []
    for kind, s in starts:
        out, info = _one_start(y, kernel_size, sigma, tau, kind, s, warmup_iters, outer,
                               final_maxit, net, z)
        obj = float(l1_over_l2(crop_latent(out.x, tuple(out.k.shape))))
        scores.append((kind, s, obj, out.misfit_ratio))
        if best is None or obj < best[0]:
            best = (obj, out, info)
    assert best is not None
    _, out, info = best
    if stages is not None:
        stages.update(info)
        stages["starts"] = scores
    out.seconds = time.perf_counter() - t0
    return out
