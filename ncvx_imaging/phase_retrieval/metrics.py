"""Error metrics that first remove phase retrieval's trivial ambiguities.

- Gaussian PR: ``x`` and ``c x`` with ``|c| = 1`` (a global sign for real signals, a global phase
  for complex ones) give the same data.
- Far-field (Fourier) PR on a periodic ``(H, W)`` field: circular translations, the conjugate flip
  ``conj(x(-r))`` (the "twin image") and a global phase give the same data.

All functions are batched over leading dims and return one value per signal.
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "align_fourier",
    "align_global_phase",
    "psnr",
    "relative_error",
    "relative_error_fourier",
    "relative_error_global_phase",
    "success",
]


def _flat(x: torch.Tensor, ndim: int) -> torch.Tensor:
    return x.reshape(*x.shape[: x.ndim - ndim], -1)


def align_global_phase(z: torch.Tensor, x: torch.Tensor, signal_ndim: int = 1) -> torch.Tensor:
    """``c z`` with the unit scalar ``c`` minimising ``||x - c z||`` (sign if both are real).

    ``z`` and ``x`` have the same shape ``(..., *signal)``, the last ``signal_ndim`` dims being one
    signal.
    """
    if z.shape != x.shape:
        raise ValueError(f"shapes differ: z {tuple(z.shape)} vs x {tuple(x.shape)}")
    zf, xf = _flat(z, signal_ndim), _flat(x, signal_ndim)
    inner = (xf * zf.conj()).sum(-1)  # <z, x>
    if z.is_complex() or x.is_complex():
        c = torch.sgn(inner)
        c = torch.where(inner == 0, torch.ones_like(c), c)
    else:
        c = torch.where(inner < 0, -1.0, 1.0).to(z.dtype)
    return z * c.reshape(*c.shape, *([1] * signal_ndim))


def relative_error(z: torch.Tensor, x: torch.Tensor, signal_ndim: int = 1) -> torch.Tensor:
    """``||z - x|| / ||x||`` per signal (no alignment)."""
    d = _flat(z - x, signal_ndim).norm(dim=-1)
    return d / _flat(x, signal_ndim).norm(dim=-1)


def relative_error_global_phase(
    z: torch.Tensor, x: torch.Tensor, signal_ndim: int = 1
) -> torch.Tensor:
    """Relative error after removing the global sign/phase (Gaussian PR)."""
    return relative_error(align_global_phase(z, x, signal_ndim), x, signal_ndim)


def _shift_scores(z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``c[s] = sum_r x(r) conj(z(r - s))`` for every circular shift ``s`` (via FFT)."""
    X = torch.fft.fft2(x)
    Z = torch.fft.fft2(z)
    return torch.fft.ifft2(X * Z.conj())


def _conj_flip(z: torch.Tensor) -> torch.Tensor:
    """``conj(z(-r mod N))`` on the last two dims (the twin image)."""
    return torch.roll(torch.flip(z, dims=(-2, -1)), shifts=(1, 1), dims=(-2, -1)).conj()


def align_fourier(
    z: torch.Tensor, x: torch.Tensor, *, allow_flip: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Align a far-field reconstruction ``z`` to ``x`` over shift, twin image and global phase.

    ``z``, ``x``: ``(..., H, W)`` fields (real or complex). Tries ``z`` and its conjugate flip,
    every circular shift and the best global phase (a sign for real data), and returns
    ``(aligned, rel_error)`` with ``aligned`` of ``z``'s shape (complex if either is complex) and
    ``rel_error`` of shape ``(...)``.
    """
    if z.shape != x.shape or z.ndim < 2:
        raise ValueError(
            f"z and x must share a shape (..., H, W); got {tuple(z.shape)}, {tuple(x.shape)}"
        )
    real = not (z.is_complex() or x.is_complex())
    cdt = torch.complex128 if z.dtype in (torch.float64, torch.complex128) else torch.complex64
    zc, xc = z.to(cdt), x.to(cdt)
    H, W = z.shape[-2:]
    candidates = [zc, _conj_flip(zc)] if allow_flip else [zc]
    best_err, best_al = None, None
    xnorm2 = _flat(xc, 2).abs().square().sum(-1)
    for cand in candidates:
        scores = _shift_scores(cand, xc)
        flat = _flat(scores, 2)
        val = flat.real.abs() if real else flat.abs()
        idx = val.argmax(dim=-1)
        c = flat.gather(-1, idx.unsqueeze(-1)).squeeze(-1)
        if real:
            phase = torch.where(c.real < 0, -1.0, 1.0).to(cdt)
            gain = c.real.abs()
        else:
            phase = torch.where(c == 0, torch.ones_like(c), torch.sgn(c))
            gain = c.abs()
        cnorm2 = _flat(cand, 2).abs().square().sum(-1)
        err = (xnorm2 + cnorm2 - 2 * gain).clamp_min(0).sqrt() / xnorm2.sqrt()
        sr, sc = idx // W, idx % W
        # shift each batch element by its own (sr, sc): gather with index arithmetic
        rows = (torch.arange(H, device=z.device).view(H, 1) - sr.view(*sr.shape, 1, 1)) % H
        cols = (torch.arange(W, device=z.device).view(1, W) - sc.view(*sc.shape, 1, 1)) % W
        lin = (rows * W + cols).expand(*cand.shape)
        shifted = _flat(cand, 2).gather(-1, _flat(lin, 2)).reshape(cand.shape)
        aligned = shifted * phase.reshape(*phase.shape, 1, 1)
        if best_err is None:
            best_err, best_al = err, aligned
        else:
            better = err < best_err
            best_err = torch.where(better, err, best_err)
            best_al = torch.where(better.reshape(*better.shape, 1, 1), aligned, best_al)
    assert best_al is not None and best_err is not None
    # recompute exactly (the correlation shortcut is exact up to rounding)
    rel = relative_error(best_al, xc, 2)
    if real:
        best_al = best_al.real
    return best_al, rel


def relative_error_fourier(
    z: torch.Tensor, x: torch.Tensor, *, allow_flip: bool = True
) -> torch.Tensor:
    """Relative error after removing shift, twin image and global phase (far-field PR)."""
    return align_fourier(z, x, allow_flip=allow_flip)[1]


def psnr(
    z: torch.Tensor, x: torch.Tensor, *, peak: float | None = None, signal_ndim: int = 2
) -> torch.Tensor:
    """``10 log10(peak^2 / MSE)`` per signal in dB, MSE of ``|z - x|^2``; ``peak`` defaults to
    ``max |x|`` of each signal. Align first (:func:`align_fourier`, :func:`align_global_phase`)."""
    mse = _flat((z - x).abs().square(), signal_ndim).mean(-1)
    pk = _flat(x.abs(), signal_ndim).amax(-1) if peak is None else torch.full_like(mse, float(peak))
    return 10 * torch.log10(pk.square() / mse.clamp_min(torch.finfo(mse.dtype).tiny))


def success(rel_error: torch.Tensor, tol: float) -> torch.Tensor:
    """Boolean success flags ``rel_error < tol`` (NaN counts as failure)."""
    if not math.isfinite(tol) or tol <= 0:
        raise ValueError(f"tol must be a positive finite number, got {tol}")
    return torch.nan_to_num(rel_error, nan=math.inf) < tol
