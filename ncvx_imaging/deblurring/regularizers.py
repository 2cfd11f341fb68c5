"""Image regularisers: discrete gradient, isotropic total variation, the l1/l2 sparsity ratio."""

from __future__ import annotations

import torch

__all__ = ["gradient", "gradient_adjoint", "l1_over_l2", "total_variation"]


def gradient(x: torch.Tensor) -> torch.Tensor:
    """Forward differences with Neumann boundary (zero difference past the last row/column):
    ``(..., H, W) -> (..., 2, H, W)`` with channel 0 vertical, 1 horizontal."""
    dv = torch.zeros_like(x)
    dh = torch.zeros_like(x)
    dv[..., :-1, :] = x[..., 1:, :] - x[..., :-1, :]
    dh[..., :, :-1] = x[..., :, 1:] - x[..., :, :-1]
    return torch.stack([dv, dh], dim=-3)


def gradient_adjoint(g: torch.Tensor) -> torch.Tensor:
    """Adjoint of :func:`gradient` (minus the divergence): ``(..., 2, H, W) -> (..., H, W)``."""
    dv, dh = g[..., 0, :, :], g[..., 1, :, :]
    out = torch.zeros_like(dv)
    out[..., :-1, :] -= dv[..., :-1, :]
    out[..., 1:, :] += dv[..., :-1, :]
    out[..., :, :-1] -= dh[..., :, :-1]
    out[..., :, 1:] += dh[..., :, :-1]
    return out


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Isotropic TV ``sum_ij ||grad x_ij||_2`` over the last two dims (nonsmooth where the
    gradient vanishes; autograd returns the zero subgradient there, never NaN)."""
    return torch.linalg.vector_norm(gradient(x), dim=-3).sum(dim=(-2, -1))


def l1_over_l2(x: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
    """Scale-invariant sparsity ratio ``||grad x||_1 / ||grad x||_2`` (anisotropic l1 over all
    differences), lower for sharp images than for blurred ones (Krishnan et al. 2011)."""
    g = gradient(x).flatten(-3)
    return g.abs().sum(dim=-1) / (torch.linalg.vector_norm(g, dim=-1) + eps)
