"""Symmetry breaking for learned phase-retrieval inversion.

A forward map with a symmetry group (``y = |Ax|^2`` is invariant under ``x -> -x``; far-field
intensities under shifts, the twin image and a global phase) makes ``y -> x`` one-to-many, and a
regressor trained on raw pairs learns an average of the orbit (close ``y`` with far ``x``): more
data does not help. Mapping every training target to one representative of its orbit first
(canonicalisation) makes the target a function of ``y`` again.

- :func:`canonical_sign`: the half-space representative ``{x : x_k > 0}`` for the first
  non-zero coordinate ``k`` (real Gaussian PR).
- :func:`canonical_global_phase`: makes the first entry with ``|x_k| > tol`` real positive
  (complex Gaussian PR).
- :func:`canonical_fourier`: centring (circular centre of mass of ``|x|^2`` at the field centre),
  twin-image rule (non-negative third central moment) and global phase (DC term real positive)
  for far-field PR fields ``(..., H, W)``.

Every map is batched, pure torch, idempotent, and constant on orbits (up to ties of measure zero
in the centring / flip rules).
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "canonical_fourier",
    "canonical_global_phase",
    "canonical_sign",
    "conj_flip",
]


def _first_significant(x: torch.Tensor, tol: float) -> torch.Tensor:
    """Value of the first entry with ``|x_k| > tol`` along the last dim (0 if none)."""
    big = x.abs() > tol
    idx = big.to(torch.int64).argmax(dim=-1, keepdim=True)
    val = x.gather(-1, idx).squeeze(-1)
    return torch.where(big.any(dim=-1), val, torch.zeros_like(val))


def canonical_sign(x: torch.Tensor, tol: float = 0.0) -> torch.Tensor:
    """Representative of ``{x, -x}`` (``(..., n)``, real): the one whose first entry with
    ``|x_k| > tol`` is positive."""
    if x.is_complex():
        raise TypeError("canonical_sign needs a real tensor; use canonical_global_phase")
    v = _first_significant(x, tol)
    s = torch.where(v < 0, -1.0, 1.0).to(x.dtype)
    return x * s.unsqueeze(-1)


def canonical_global_phase(x: torch.Tensor, tol: float = 0.0) -> torch.Tensor:
    """Representative of ``{c x : |c| = 1}`` (``(..., n)``): first entry with ``|x_k| > tol`` real
    and positive (for real ``x`` this is :func:`canonical_sign`)."""
    if not x.is_complex():
        return canonical_sign(x, tol)
    v = _first_significant(x, tol)
    c = torch.where(v == 0, torch.ones_like(v), torch.sgn(v).conj())
    return x * c.unsqueeze(-1)


def conj_flip(x: torch.Tensor) -> torch.Tensor:
    """Twin image ``conj(x(-r mod N))`` over the last two dims."""
    return torch.roll(torch.flip(x, dims=(-2, -1)), shifts=(1, 1), dims=(-2, -1)).conj()


def _centre_shifts(p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer shifts moving the circular centre of mass of ``p`` (``(..., H, W)``, >= 0) to
    ``(H // 2, W // 2)``."""
    H, W = p.shape[-2:]
    out = []
    for dim, N in ((-2, H), (-1, W)):
        marg = p.sum(dim=-1 if dim == -2 else -2)  # (..., N)
        ang = 2 * math.pi * torch.arange(N, dtype=p.dtype, device=p.device) / N
        c = (marg * torch.cos(ang)).sum(-1)
        s = (marg * torch.sin(ang)).sum(-1)
        pos = torch.atan2(s, c) * N / (2 * math.pi)  # centre in pixel units, (-N/2, N/2]
        out.append(torch.round(N // 2 - pos).to(torch.int64) % N)
    return out[0], out[1]


def _roll_batched(x: torch.Tensor, sr: torch.Tensor, sc: torch.Tensor) -> torch.Tensor:
    """Circularly shift each field of ``(..., H, W)`` by its own ``(sr, sc)``."""
    H, W = x.shape[-2:]
    rows = (torch.arange(H, device=x.device).view(H, 1) - sr.view(*sr.shape, 1, 1)) % H
    cols = (torch.arange(W, device=x.device).view(1, W) - sc.view(*sc.shape, 1, 1)) % W
    lin = (rows * W + cols).expand(*x.shape)
    return x.reshape(*x.shape[:-2], -1).gather(-1, lin.reshape(*x.shape[:-2], -1)).reshape(x.shape)


def _centre(x: torch.Tensor) -> torch.Tensor:
    sr, sc = _centre_shifts(x.abs().square())
    return _roll_batched(x, sr, sc)


def _flip_score(x: torch.Tensor) -> torch.Tensor:
    """A quantity that changes sign under the twin flip of a centred field: the third central
    moment of the row marginal plus a small multiple of the column one."""
    p = x.abs().square()
    H, W = p.shape[-2:]
    dr = torch.arange(H, dtype=p.dtype, device=p.device) - H // 2
    dc = torch.arange(W, dtype=p.dtype, device=p.device) - W // 2
    mr = (p.sum(-1) * dr**3).sum(-1)
    mc = (p.sum(-2) * dc**3).sum(-1)
    return mr + 1e-3 * mc


def canonical_fourier(x: torch.Tensor) -> torch.Tensor:
    """Representative of the far-field orbit of ``x`` (``(..., H, W)``, real or complex):
    circular shifts, the twin image and a global phase (a sign for real fields) are removed.

    Steps: centre ``|x|^2``'s circular centre of mass at ``(H//2, W//2)``; of the centred field and
    its centred twin keep the one with the larger :func:`_flip_score`; rotate the global phase so
    that the sum of the field (the DC Fourier coefficient) is real and positive.
    """
    if x.ndim < 2:
        raise ValueError(f"x must be (..., H, W), got shape {tuple(x.shape)}")
    a = _centre(x)
    b = _centre(conj_flip(x))
    keep_a = _flip_score(a) >= _flip_score(b)
    z = torch.where(keep_a.view(*keep_a.shape, 1, 1), a, b)
    dc = z.sum(dim=(-2, -1))
    if z.is_complex():
        c = torch.where(dc == 0, torch.ones_like(dc), torch.sgn(dc).conj())
    else:
        c = torch.where(dc < 0, -1.0, 1.0).to(z.dtype)
    return z * c.view(*c.shape, 1, 1)
