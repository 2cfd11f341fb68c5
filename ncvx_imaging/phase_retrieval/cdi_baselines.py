"""Classical CDI baselines: error reduction (ER), hybrid input-output (HIO) and shrinkwrap.

Written from Fienup, "Phase retrieval algorithms: a comparison", Appl. Opt. 21 (1982) (ER and HIO
with feedback ``beta``) and Marchesini et al., "X-ray image reconstruction from a diffraction
pattern alone", Phys. Rev. B 68 (2003) (shrinkwrap: every few iterations the support becomes the
set where the Gaussian-blurred magnitude exceeds a fraction of its maximum, with the blur width
shrinking from 3 to 1.5 pixels by 1 % per update).

Everything acts on full ``(H, W)`` fields: ``magnitudes = sqrt(Y)`` with ``Y`` the far-field
intensities from :class:`~ncvx_imaging.phase_retrieval.forward.FarField` (unitary FFT).
Fields are batched over leading dims (one run per batch element, e.g. several random starts).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .forward import complex_dtype_for

__all__ = [
    "PhasingResult",
    "fourier_projection",
    "gaussian_blur",
    "hio_er",
    "random_start",
    "shrinkwrap_support",
    "support_from_autocorrelation",
]


@dataclass
class PhasingResult:
    """Final fields ``x`` (``(..., H, W)``), final supports, and the per-iteration misfit
    ``||(|F x| - m)|| / ||m||`` of the batch (``(iters, ...)``)."""

    x: torch.Tensor
    support: torch.Tensor
    history: torch.Tensor


def fourier_projection(g: torch.Tensor, magnitudes: torch.Tensor) -> torch.Tensor:
    """Replace the far-field modulus of ``g`` by ``magnitudes``, keep the phase (zero-modulus
    entries get phase 0)."""
    G = torch.fft.fft2(g, norm="ortho")
    mag = G.abs()
    ph = torch.where(mag > 0, G / mag.clamp_min(torch.finfo(mag.dtype).tiny), torch.ones_like(G))
    return torch.fft.ifft2(magnitudes * ph, norm="ortho")


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Periodic Gaussian blur of the last two dims (FFT), real input -> real output."""
    H, W = x.shape[-2:]
    fy = torch.fft.fftfreq(H, dtype=x.dtype, device=x.device)
    fx = torch.fft.fftfreq(W, dtype=x.dtype, device=x.device)
    k = torch.exp(-2 * (torch.pi * sigma) ** 2 * (fy.view(H, 1) ** 2 + fx.view(1, W) ** 2))
    return torch.fft.ifft2(torch.fft.fft2(x) * k).real


def shrinkwrap_support(
    g: torch.Tensor, sigma: float, threshold: float, bound: torch.Tensor | None = None
) -> torch.Tensor:
    """New support: ``blur(|g|, sigma) > threshold * max`` (per field), within ``bound``."""
    b = gaussian_blur(g.abs(), sigma)
    mx = b.flatten(-2).amax(-1).view(*b.shape[:-2], 1, 1)
    s = b > threshold * mx
    if bound is not None:
        s = s & bound
    return s


def support_from_autocorrelation(
    intensities: torch.Tensor, threshold: float = 1e-3
) -> tuple[int, int]:
    """Object extent ``(h, w)`` read off the autocorrelation ``F^{-1}(Y)`` of ``(H, W)`` data.

    The autocorrelation of an object whose bounding box is ``h x w`` is supported on
    ``(2h - 1) x (2w - 1)`` circular lags, so counting the rows/columns where
    ``|F^{-1} Y| > threshold * max`` gives the box size (its position is free: translations are a
    trivial ambiguity). Noise fills the lags, so use a larger ``threshold`` with noisy data.
    """
    if intensities.ndim != 2:
        raise ValueError(f"intensities must be (H, W), got {tuple(intensities.shape)}")
    ac = torch.fft.ifft2(intensities).abs()
    m = ac > threshold * ac.max()
    rows, cols = int(m.any(1).sum()), int(m.any(0).sum())
    return (rows + 1) // 2, (cols + 1) // 2


def random_start(
    support: torch.Tensor,
    magnitudes: torch.Tensor,
    *,
    num: int,
    real: bool,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``num`` random fields on ``support`` with the data's energy: uniform [0, 1) values (real)
    or uniform amplitudes with uniform phases (complex). Shape ``(num, H, W)``."""
    H, W = support.shape
    dt = magnitudes.dtype
    a = torch.rand(num, H, W, dtype=dt, generator=generator)
    if not real:
        ph = 2 * torch.pi * torch.rand(num, H, W, dtype=dt, generator=generator)
        a = torch.polar(a, ph)
    a = a.to(magnitudes.device) * support
    scale = magnitudes.norm() / a.flatten(-2).norm(dim=-1).view(num, 1, 1)
    return a * scale


def hio_er(
    magnitudes: torch.Tensor,
    support: torch.Tensor,
    x0: torch.Tensor,
    *,
    real: bool = True,
    nonnegative: bool = True,
    beta: float = 0.9,
    hio_iters: int = 1800,
    er_every: int = 0,
    er_iters: int = 200,
    shrinkwrap_every: int = 20,
    sigma_start: float = 3.0,
    sigma_end: float = 1.5,
    sigma_decay: float = 0.99,
    threshold: float = 0.2,
) -> PhasingResult:
    """HIO with shrinkwrap, then ER polishing.

    ``magnitudes``: ``(H, W)`` = ``sqrt(Y)``; ``support``: ``(H, W)`` bool, the loose support
    (shrinkwrap never leaves it); ``x0``: ``(..., H, W)`` starts. Object constraint: on the
    support and (``real``) real and (``nonnegative``) ``>= 0``. HIO: where the projected field
    ``g'`` obeys the constraints keep it, elsewhere ``g - beta g'``; ER: zero where violated.
    ``er_every > 0`` inserts one ER step every ``er_every`` HIO steps. ``shrinkwrap_every = 0``
    keeps the support fixed.
    """
    if magnitudes.shape != support.shape or magnitudes.ndim != 2:
        raise ValueError("magnitudes and support must be (H, W) of equal shape")
    if tuple(x0.shape[-2:]) != tuple(support.shape):
        raise ValueError(f"x0 must end with {tuple(support.shape)}, got {tuple(x0.shape)}")
    if nonnegative and not real:
        raise ValueError("nonnegative requires real")
    if hio_iters < 0 or er_iters < 0 or hio_iters + er_iters < 1:
        raise ValueError(f"need at least one iteration, got hio {hio_iters}, er {er_iters}")
    support = support.to(torch.bool)
    cdt = complex_dtype_for(magnitudes.dtype)
    g = x0.to(cdt)
    S = support.expand(g.shape).clone()
    sigma = sigma_start
    mnorm = magnitudes.norm()
    hist = []

    def admissible(gp: torch.Tensor) -> torch.Tensor:
        ok = S.clone()
        if nonnegative:
            ok &= gp.real >= 0
        return ok

    def project_object(gp: torch.Tensor) -> torch.Tensor:
        gp = gp.real.to(cdt) if real else gp
        return gp

    total = hio_iters + er_iters
    for it in range(total):
        gp = project_object(fourier_projection(g, magnitudes))
        ok = admissible(gp)
        use_er = it >= hio_iters or (er_every > 0 and (it + 1) % er_every == 0)
        g = torch.where(ok, gp, torch.zeros_like(gp) if use_er else g - beta * gp)
        if shrinkwrap_every > 0 and it < hio_iters and (it + 1) % shrinkwrap_every == 0:
            S = shrinkwrap_support(g, sigma, threshold, support)
            sigma = max(sigma_end, sigma * sigma_decay)
        G = torch.fft.fft2(g * S, norm="ortho")
        hist.append((G.abs() - magnitudes).flatten(-2).norm(dim=-1) / mnorm)
    out = g * S
    if real:
        out = out.real
    return PhasingResult(x=out, support=S, history=torch.stack(hist))
