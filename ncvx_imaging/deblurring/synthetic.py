"""Synthetic blur problems with known answers (for tests, benchmarks and examples)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..data import load_image
from .noise import add_gaussian_noise
from .operators import conv_circular, conv_valid

__all__ = ["BlurProblem", "make_blur_problem"]


@dataclass
class BlurProblem:
    """``y`` (``(n, n)``) = blur of a sharp picture + noise; ``x`` the sharp ``(n, n)`` image
    pixel-aligned with ``y``; ``k`` the true kernel; ``sigma`` the noise level; ``boundary`` the
    blur model (``"circular"``: periodic; ``"valid"``: ``y`` is the valid part of the blur of a
    larger picture, so nothing outside the frame is known)."""

    y: torch.Tensor
    x: torch.Tensor
    k: torch.Tensor
    sigma: float
    boundary: str
    name: str


def make_blur_problem(
    image: str,
    n: int,
    k: torch.Tensor,
    sigma: float,
    boundary: str = "circular",
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> BlurProblem:
    """Blur ``load_image(image)`` with ``k`` and add ``N(0, sigma^2)`` noise (seeded).

    With ``boundary="valid"`` the picture is loaded at size ``n + kh - 1`` (same field of view,
    slightly finer sampling) and ``x`` is its centre ``(n, n)`` part under ``y``.
    """
    k = k.to(dtype)
    kh, kw = k.shape
    if boundary == "circular":
        x = load_image(image, n, dtype=dtype)
        y = conv_circular(x, k)
    elif boundary == "valid":
        big = load_image(image, (n + kh - 1, n + kw - 1), dtype=dtype)
        y = conv_valid(big, k)
        x = big[kh // 2 : kh // 2 + n, kw // 2 : kw // 2 + n]
    else:
        raise ValueError(f"boundary must be 'circular' or 'valid', got {boundary!r}")
    y = add_gaussian_noise(y, sigma, seed=seed)
    return BlurProblem(y=y, x=x, k=k, sigma=sigma, boundary=boundary, name=image)
