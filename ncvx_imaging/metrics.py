"""Image quality metrics (pure torch, batched over leading dims, any float dtype/device).

- :func:`psnr`, :func:`ssim` — the usual definitions for images with values in
  ``[0, data_range]`` (SSIM: Gaussian window 11x11, sd 1.5, K1 = 0.01, K2 = 0.03, Wang et al. 2004).
- :func:`aligned` — the best value of a metric over integer translations of the estimate within
  ``max_shift`` pixels, compared on the reference's interior (margin ``max_shift``): the fair score
  when the answer is only defined up to a shift (blind deconvolution: ``k * x`` is unchanged when
  ``k`` moves one way and ``x`` the other).
- :func:`psnr_aligned`, :func:`ssim_aligned` — shortcuts; :func:`kernel_error_aligned` — relative
  l2 error between kernels up to a shift.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = [
    "aligned",
    "kernel_error_aligned",
    "mse",
    "psnr",
    "psnr_aligned",
    "ssim",
    "ssim_aligned",
]

Metric = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _pair(x: torch.Tensor, ref: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or not isinstance(ref, torch.Tensor):
        raise TypeError("metrics take torch tensors")
    if x.shape != ref.shape:
        raise ValueError(f"shape mismatch: estimate {tuple(x.shape)} vs reference {tuple(ref.shape)}")
    if x.dim() < 2:
        raise ValueError(f"images need >= 2 dims (..., H, W), got {tuple(x.shape)}")


def mse(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the last two dims; shape ``x.shape[:-2]``."""
    _pair(x, ref)
    return ((x - ref) ** 2).mean(dim=(-2, -1))


def psnr(x: torch.Tensor, ref: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB, ``10 log10(data_range^2 / mse)``; +inf when equal."""
    return 10 * torch.log10(data_range**2 / mse(x, ref))


def _gauss_window(size: int, sd: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    t = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    g = torch.exp(-(t**2) / (2 * sd**2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def ssim(
    x: torch.Tensor,
    ref: torch.Tensor,
    data_range: float = 1.0,
    win_size: int = 11,
    sd: float = 1.5,
) -> torch.Tensor:
    """Mean structural similarity over the valid window positions; shape ``x.shape[:-2]``."""
    _pair(x, ref)
    H, W = x.shape[-2:]
    if win_size > min(H, W):
        raise ValueError(f"SSIM window {win_size} larger than the image {H}x{W}")
    lead = x.shape[:-2]
    w = _gauss_window(win_size, sd, x.dtype, x.device)[None, None]
    a = x.reshape(-1, 1, H, W)
    b = ref.reshape(-1, 1, H, W).to(x.dtype)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, w)

    mu_a, mu_b = blur(a), blur(b)
    va = blur(a * a) - mu_a**2
    vb = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (va + vb + c2))
    return s.mean(dim=(-3, -2, -1)).reshape(lead)


def aligned(
    metric: Metric,
    x: torch.Tensor,
    ref: torch.Tensor,
    max_shift: int = 4,
    higher_is_better: bool = True,
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Best ``metric(x shifted, ref)`` over integer shifts ``|dy|, |dx| <= max_shift``.

    Both images are ``(H, W)``; the comparison uses ``ref[m:H-m, m:W-m]`` (``m = max_shift``) and
    the same-size window of ``x`` displaced by ``(dy, dx)``, so every shift is scored on the same
    reference pixels. Returns ``(best value, (dy, dx))``: ``x[i + dy, j + dx]`` matches
    ``ref[i, j]``.
    """
    _pair(x, ref)
    if x.dim() != 2:
        raise ValueError(f"aligned metrics take single (H, W) images, got {tuple(x.shape)}")
    m = int(max_shift)
    H, W = x.shape
    if m < 0 or 2 * m >= min(H, W):
        raise ValueError(f"max_shift {max_shift} invalid for a {H}x{W} image")
    ref_c = ref[m : H - m, m : W - m]
    # all shifted windows at once: (S, H-2m, W-2m)
    shifts = [(dy, dx) for dy in range(-m, m + 1) for dx in range(-m, m + 1)]
    wins = torch.stack([x[m + dy : H - m + dy, m + dx : W - m + dx] for dy, dx in shifts])
    vals = metric(wins, ref_c.expand_as(wins))
    i = int(torch.argmax(vals) if higher_is_better else torch.argmin(vals))
    return vals[i], shifts[i]


def psnr_aligned(
    x: torch.Tensor, ref: torch.Tensor, max_shift: int = 4, data_range: float = 1.0
) -> tuple[float, tuple[int, int]]:
    """Shift-aligned PSNR (dB) and the shift; see :func:`aligned`."""
    v, s = aligned(lambda a, b: psnr(a, b, data_range), x, ref, max_shift)
    return float(v), s


def ssim_aligned(
    x: torch.Tensor, ref: torch.Tensor, max_shift: int = 4, data_range: float = 1.0
) -> tuple[float, tuple[int, int]]:
    """Shift-aligned SSIM and the shift; see :func:`aligned`."""
    v, s = aligned(lambda a, b: ssim(a, b, data_range), x, ref, max_shift)
    return float(v), s


def kernel_error_aligned(k_est: torch.Tensor, k_true: torch.Tensor) -> float:
    """``min over shifts ||k_est - shift(k_true)||_2 / ||k_true||_2`` with both kernels embedded
    (zero-padded, centred) in a common support large enough for every relative position."""
    if k_est.dim() != 2 or k_true.dim() != 2:
        raise ValueError("kernels must be 2-D")
    kt = k_true.to(k_est.dtype)
    H = k_est.shape[0] + 2 * kt.shape[0]
    W = k_est.shape[1] + 2 * kt.shape[1]
    a = k_est.new_zeros(H, W)
    a[kt.shape[0] : kt.shape[0] + k_est.shape[0], kt.shape[1] : kt.shape[1] + k_est.shape[1]] = k_est
    # ||a - shift(b)||^2 = ||a||^2 + ||b||^2 - 2 (a correlated with b) at that shift
    corr = F.conv2d(a[None, None], kt[None, None])[0, 0]
    err2 = (a**2).sum() + (kt**2).sum() - 2 * corr.max()
    return float(err2.clamp_min(0).sqrt() / kt.norm())
