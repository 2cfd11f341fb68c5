"""Blur operators ``y = k * x`` and their adjoints (pure torch, batched, any float dtype/device).

Convention: images are ``(..., H, W)``; a kernel is ``(kh, kw)`` (shared by the batch) or
``(..., kh, kw)`` with the same leading dimensions as the image. ``*`` is true convolution (the
kernel is flipped), with the kernel's centre at index ``(kh // 2, kw // 2)``.

- :func:`conv_circular` / :func:`conv_circular_adjoint`: periodic boundary, output ``(H, W)``,
  computed with FFTs.
- :func:`conv_valid` / :func:`conv_valid_adjoint`: no boundary assumption; the output is the
  ``(H - kh + 1, W - kw + 1)`` part that does not depend on anything outside ``x`` (the natural
  model of a real photograph, used for blind deblurring with an over-sized latent image).
"""

from __future__ import annotations

import torch

__all__ = [
    "conv_circular",
    "conv_circular_adjoint",
    "conv_valid",
    "conv_valid_adjoint",
    "kernel_otf",
]


def _check(x: torch.Tensor, k: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or not isinstance(k, torch.Tensor):
        raise TypeError("image and kernel must be torch tensors")
    if x.dim() < 2 or k.dim() < 2:
        raise ValueError(f"image and kernel need >= 2 dims, got {tuple(x.shape)}, {tuple(k.shape)}")
    if k.dim() > 2 and k.shape[:-2] != x.shape[:-2]:
        raise ValueError(
            f"a batched kernel {tuple(k.shape)} must share the leading dims of the image "
            f"{tuple(x.shape)}"
        )


def kernel_otf(k: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Optical transfer function: the 2-D FFT of ``k`` zero-padded to ``shape`` with its centre
    moved to index ``(0, 0)``. Returns a complex ``(..., H, W)`` tensor."""
    kh, kw = k.shape[-2:]
    H, W = shape
    if kh > H or kw > W:
        raise ValueError(f"kernel {kh}x{kw} larger than the image {H}x{W}")
    pad = k.new_zeros((*k.shape[:-2], H, W))
    pad[..., :kh, :kw] = k
    pad = torch.roll(pad, shifts=(-(kh // 2), -(kw // 2)), dims=(-2, -1))
    return torch.fft.fft2(pad)


def conv_circular(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Periodic convolution ``k * x``; output has the shape of ``x``."""
    _check(x, k)
    otf = kernel_otf(k, (x.shape[-2], x.shape[-1]))
    return torch.fft.ifft2(torch.fft.fft2(x) * otf).real


def conv_circular_adjoint(y: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Adjoint of :func:`conv_circular` in ``x`` (periodic correlation with ``k``)."""
    _check(y, k)
    otf = kernel_otf(k, (y.shape[-2], y.shape[-1]))
    return torch.fft.ifft2(torch.fft.fft2(y) * otf.conj()).real


def _full_fft(a: torch.Tensor, b: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Linear convolution of ``a`` and ``b`` zero-padded to ``shape`` (via FFTs)."""
    return torch.fft.irfft2(torch.fft.rfft2(a, s=shape) * torch.fft.rfft2(b, s=shape), s=shape)


def conv_valid(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """'Valid' convolution: output ``(..., H - kh + 1, W - kw + 1)``.

    ``y[i, j] = sum_{a, b} k[a, b] x[i + kh - 1 - a, j + kw - 1 - b]``; differentiable in both
    ``x`` and ``k`` (FFT based, so cost does not grow with the kernel size).
    """
    _check(x, k)
    H, W = x.shape[-2:]
    kh, kw = k.shape[-2:]
    if kh > H or kw > W:
        raise ValueError(f"kernel {kh}x{kw} larger than the image {H}x{W}")
    full = _full_fft(x, k, (H + kh - 1, W + kw - 1))
    return full[..., kh - 1 : H, kw - 1 : W]


def conv_valid_adjoint(y: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Adjoint of :func:`conv_valid` in ``x``: output ``(..., h + kh - 1, w + kw - 1)``
    (full correlation of ``y`` with ``k``)."""
    _check(y, k)
    h, w = y.shape[-2:]
    kh, kw = k.shape[-2:]
    # correlation = convolution with the flipped kernel, keeping the full support
    full = _full_fft(y, torch.flip(k, dims=(-2, -1)), (h + kh - 1, w + kw - 1))
    return full
