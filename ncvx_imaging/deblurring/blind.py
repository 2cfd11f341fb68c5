"""Blind deconvolution with an over-specified kernel size and a noise-level misfit bound (ncvx).

Model: ``y = k * x + n`` with the 'valid' blur (``y`` is ``(h, w)``, the latent image ``x`` is
``(h + kh - 1, w + kw - 1)``, so nothing is assumed outside the photograph), and

    minimise   ||grad x||_1 / ||grad x||_2                  (scale-invariant sparsity ratio)
    subject to ||k * x - y||^2 / (tau sigma^2 N) - 1 <= 0     (misfit at the noise level)
               ||(-k)_+||_2 <= 0,  sum(k) - 1 = 0            (k on the probability simplex)
               ||(x - 1)_+||_2 + ||(-x)_+||_2 <= 0           (0 <= x <= 1)

over pixels ``x`` and ``k`` (the specified kernel size may exceed the true one; any extra support
should come out zero). ``sigma`` may be estimated from ``y``. The recovered pair is defined only up
to a translation (``k`` one way, ``x`` the other): evaluate with
:func:`ncvx_imaging.metrics.psnr_aligned`.

A generator option (``x = G_x(z_x)``, ``k = G_k(z_k)`` from :mod:`ncvx_imaging.dip`) keeps the same
constraints with the networks' weights as variables: :func:`blind_deblur_dip`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

import ncvx

from .kernels import gaussian_kernel, pad_kernel
from .noise import estimate_noise_sigma
from .nonblind import box_violation
from .operators import conv_valid
from .regularizers import l1_over_l2

__all__ = [
    "BlindResult",
    "blind_deblur",
    "blind_problem",
    "crop_latent",
    "pad_latent",
]


@dataclass
class BlindResult:
    """Latent image ``x`` (``(h + kh - 1, w + kw - 1)``), kernel ``k`` (``(kh, kw)``), the ncvx
    result, seconds, the noise level used, and the final misfit ratio ``||k*x-y||^2/(sigma^2 N)``."""

    x: torch.Tensor
    k: torch.Tensor
    result: Any
    seconds: float
    sigma: float
    misfit_ratio: float

    @property
    def image(self) -> torch.Tensor:
        """The latent image cropped to the size of ``y`` (aligned with ``y``'s pixels)."""
        return crop_latent(self.x, tuple(self.k.shape))


def pad_latent(y: torch.Tensor, kernel_shape: tuple[int, int]) -> torch.Tensor:
    """Edge-replicate ``y`` ``(h, w)`` to the latent size ``(h + kh - 1, w + kw - 1)``."""
    kh, kw = kernel_shape
    pad = (kw // 2, kw - 1 - kw // 2, kh // 2, kh - 1 - kh // 2)
    return F.pad(y[None, None], pad, mode="replicate")[0, 0]


def crop_latent(x: torch.Tensor, kernel_shape: tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`pad_latent`'s geometry: the ``(h, w)`` part of ``x`` under ``y``."""
    kh, kw = kernel_shape
    H, W = x.shape[-2:]
    return x[..., kh // 2 : H - (kh - 1 - kh // 2), kw // 2 : W - (kw - 1 - kw // 2)]


def blind_problem(
    y: torch.Tensor, sigma: float, tau: float = 1.0, box: bool = True
) -> Any:
    """``fn(v) -> (f, ci, ce)`` for ncvx with ``v = {"x": latent image, "k": kernel}``."""
    N = y.numel()
    bound = tau * sigma**2 * N

    def fn(v: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict, torch.Tensor]:
        x, k = v["x"], v["k"]
        r = conv_valid(x, k) - y
        ci = {
            "misfit": (r**2).sum() / bound - 1,
            "k_nonneg": torch.linalg.vector_norm(torch.relu(-k)),
        }
        if box:
            ci["x_box"] = box_violation(x)
        ce = k.sum() - 1
        ng = 2 * x.numel()
        return l1_over_l2(x) / ng**0.5, ci, ce

    return fn


def blind_deblur(
    y: torch.Tensor,
    kernel_size: int | tuple[int, int],
    sigma: float | None = None,
    tau: float = 1.0,
    k0: torch.Tensor | None = None,
    x0: torch.Tensor | None = None,
    init_sd: float | None = None,
    maxit: int = 1000,
    limited_mem_size: int = 20,
    box: bool = True,
    callback: Any = None,
    **options: Any,
) -> BlindResult:
    """Blind deblurring of ``y`` (``(h, w)``) with a ``kernel_size`` kernel (may be over-sized).

    Args:
        sigma: noise level; ``None`` estimates it from ``y`` (Donoho's wavelet MAD).
        tau: misfit allowance factor.
        k0: start kernel (default: a centred Gaussian of sd ``init_sd``, default ``kh / 10``).
        x0: start latent image (default: ``y`` edge-padded).
        maxit, limited_mem_size, callback, options: passed to :func:`ncvx.solve`.
    """
    if y.dim() != 2:
        raise ValueError(f"y must be (h, w), got {tuple(y.shape)}")
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    if kh < 1 or kw < 1 or kh > y.shape[0] or kw > y.shape[1]:
        raise ValueError(f"kernel size {(kh, kw)} invalid for a {tuple(y.shape)} image")
    if sigma is None:
        sigma = float(estimate_noise_sigma(y))
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    if k0 is None:
        sd = init_sd if init_sd is not None else max(min(kh, kw) / 10, 0.5)
        m = min(kh, kw) // 2 * 2 + 1
        k0 = pad_kernel(gaussian_kernel(m, sd, dtype=y.dtype), (kh, kw))
    if x0 is None:
        x0 = pad_latent(y, (kh, kw))
    fn = blind_problem(y, sigma, tau, box)
    opts = {"print_level": 0, "opt_tol": 1e-8, "viol_ineq_tol": 1e-6, "viol_eq_tol": 1e-6}
    opts.update(options)
    t0 = time.perf_counter()
    res = ncvx.solve(
        fn,
        {"x": x0.to(y.dtype), "k": k0.to(y.dtype)},
        maxit=maxit,
        limited_mem_size=limited_mem_size,
        callback=callback,
        **opts,
    )
    secs = time.perf_counter() - t0
    v = ncvx.unflatten(res)
    x = v["x"].reshape(x0.shape)
    k = v["k"].reshape(k0.shape)
    ratio = float(((conv_valid(x, k) - y) ** 2).sum() / (sigma**2 * y.numel()))
    return BlindResult(x=x, k=k, result=res, seconds=secs, sigma=sigma, misfit_ratio=ratio)
