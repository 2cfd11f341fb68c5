"""Additive Gaussian noise and a noise-level estimator for when sigma is unknown."""

from __future__ import annotations

import torch

__all__ = ["add_gaussian_noise", "estimate_noise_sigma"]


def add_gaussian_noise(y: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    """``y + sigma * n`` with ``n`` i.i.d. standard normal from a seeded generator (CPU-drawn, so
    the same on every device)."""
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    gen = torch.Generator().manual_seed(seed)
    n = torch.randn(y.shape, generator=gen, dtype=torch.float64)
    return y + sigma * n.to(device=y.device, dtype=y.dtype)


def estimate_noise_sigma(y: torch.Tensor) -> torch.Tensor:
    """Donoho's wavelet estimate of white-Gaussian-noise sigma: ``median(|HH|) / 0.6745`` over
    the finest diagonal Haar detail coefficients of each ``(..., H, W)`` image.

    Returns a tensor of shape ``y.shape[:-2]``. Reliable when the image is smooth at the pixel
    scale (blurred images are), biased upwards on heavily textured sharp images.
    """
    if y.dim() < 2 or y.shape[-1] < 2 or y.shape[-2] < 2:
        raise ValueError(f"need an image of at least 2x2, got shape {tuple(y.shape)}")
    H = y.shape[-2] // 2 * 2
    W = y.shape[-1] // 2 * 2
    a = y[..., 0:H:2, 0:W:2]
    b = y[..., 0:H:2, 1:W:2]
    c = y[..., 1:H:2, 0:W:2]
    d = y[..., 1:H:2, 1:W:2]
    hh = (a - b - c + d) / 2  # orthonormal Haar diagonal detail: noise keeps its sigma
    return hh.flatten(-2).abs().median(dim=-1).values / 0.6745
