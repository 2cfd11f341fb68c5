"""Blur kernels on the probability simplex (nonnegative, summing to one), as float64 tensors.

- :func:`gaussian_kernel` — isotropic Gaussian (defocus / atmospheric blur).
- :func:`motion_kernel` — straight-line camera motion of a given length and angle, anti-aliased.
- :func:`random_motion_kernel` — a smooth random camera trajectory (shake).
- :func:`pad_kernel`, :func:`center_kernel` — embed a kernel in a larger support, re-centre it.
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "center_kernel",
    "gaussian_kernel",
    "motion_kernel",
    "pad_kernel",
    "random_motion_kernel",
]


def _odd_size(size: int) -> int:
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"kernel size must be a positive int, got {size!r}")
    return size


def gaussian_kernel(size: int, sd: float, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``(size, size)`` Gaussian with standard deviation ``sd`` pixels, centred at ``size // 2``."""
    _odd_size(size)
    if sd <= 0:
        raise ValueError(f"sd must be positive, got {sd}")
    t = torch.arange(size, dtype=dtype) - size // 2
    g = torch.exp(-(t**2) / (2 * sd**2))
    k = g[:, None] * g[None, :]
    return k / k.sum()


def _rasterise(points: torch.Tensor, size: int, dtype: torch.dtype) -> torch.Tensor:
    """Bilinear splat of ``(n, 2)`` (row, col) points (kernel-centred coordinates) onto a grid."""
    c = size // 2
    rc = points + c
    r0 = torch.floor(rc[:, 0])
    c0 = torch.floor(rc[:, 1])
    fr = rc[:, 0] - r0
    fc = rc[:, 1] - c0
    k = torch.zeros(size * size, dtype=dtype)
    for dr, dc, w in ((0, 0, (1 - fr) * (1 - fc)), (1, 0, fr * (1 - fc)),
                      (0, 1, (1 - fr) * fc), (1, 1, fr * fc)):
        rr = (r0 + dr).long()
        cc = (c0 + dc).long()
        ok = (rr >= 0) & (rr < size) & (cc >= 0) & (cc < size)
        k.index_add_(0, (rr * size + cc)[ok], w[ok].to(dtype))
    return k.reshape(size, size)


def motion_kernel(
    length: float,
    angle: float = 0.0,
    size: int | None = None,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """Uniform straight-line motion blur of ``length`` pixels at ``angle`` degrees
    (0 = horizontal, counter-clockwise), in a ``(size, size)`` support (default: the smallest odd
    size holding the line)."""
    if length <= 0:
        raise ValueError(f"length must be positive, got {length}")
    if size is None:
        size = math.ceil(length) // 2 * 2 + 1
    _odd_size(size)
    n = max(int(20 * length), 2)
    t = torch.linspace(-(length - 1) / 2, (length - 1) / 2, n, dtype=torch.float64)
    a = math.radians(angle)
    pts = torch.stack([-t * math.sin(a), t * math.cos(a)], dim=1)
    k = _rasterise(pts, size, dtype)
    if float(k.sum()) <= 0:
        raise ValueError(f"motion of length {length} does not fit a {size}x{size} kernel")
    return k / k.sum()


def random_motion_kernel(
    size: int,
    seed: int = 0,
    steps: int = 300,
    smoothness: float = 0.95,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """A random camera-shake kernel: an inertial random walk (velocity with momentum
    ``smoothness``) scaled to fill most of a ``(size, size)`` support, then re-centred."""
    _odd_size(size)
    gen = torch.Generator().manual_seed(seed)
    acc = torch.randn(steps, 2, generator=gen, dtype=torch.float64)
    vel = torch.zeros(2, dtype=torch.float64)
    path = torch.zeros(steps, 2, dtype=torch.float64)
    pos = torch.zeros(2, dtype=torch.float64)
    for i in range(steps):  # sequential recurrence over time steps (not pixels)
        vel = smoothness * vel + (1 - smoothness) * acc[i]
        pos = pos + vel
        path[i] = pos
    path = path - path.mean(dim=0)
    extent = path.abs().max()
    path = path * ((size - 1) / 2 * 0.85 / float(extent))
    k = _rasterise(path, size, dtype)
    return center_kernel(k / k.sum())


def pad_kernel(k: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Embed ``k`` (..., kh, kw) centred in a larger ``size`` support (centre index ``n // 2``)."""
    H, W = (size, size) if isinstance(size, int) else size
    kh, kw = k.shape[-2:]
    if kh > H or kw > W:
        raise ValueError(f"cannot pad a {kh}x{kw} kernel to {H}x{W}")
    out = k.new_zeros((*k.shape[:-2], H, W))
    r = H // 2 - kh // 2
    c = W // 2 - kw // 2
    out[..., r : r + kh, c : c + kw] = k
    return out


def center_kernel(k: torch.Tensor) -> torch.Tensor:
    """Shift ``k`` (kh, kw) by whole pixels so its centre of mass is nearest the centre index
    (circularly within the support; mass that would wrap is what the caller must avoid)."""
    kh, kw = k.shape[-2:]
    w = k.clamp_min(0)
    tot = w.sum()
    if float(tot) <= 0:
        raise ValueError("kernel has no positive mass")
    r = (w.sum(dim=-1) * torch.arange(kh, dtype=k.dtype, device=k.device)).sum() / tot
    c = (w.sum(dim=-2) * torch.arange(kw, dtype=k.dtype, device=k.device)).sum() / tot
    dr = kh // 2 - round(float(r))
    dc = kw // 2 - round(float(c))
    return torch.roll(k, shifts=(dr, dc), dims=(-2, -1))
