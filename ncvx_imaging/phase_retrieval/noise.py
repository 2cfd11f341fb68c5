"""Measurement noise for intensity data: additive Gaussian and Poisson with a photon budget."""

from __future__ import annotations

import torch

__all__ = ["gaussian_noise", "poisson_noise"]


def gaussian_noise(
    y: torch.Tensor,
    *,
    sigma: float | None = None,
    snr_db: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``y + sigma * N(0, 1)`` (same shape/dtype as the real intensities ``y``).

    Give either the standard deviation ``sigma`` or a signal-to-noise ratio ``snr_db``
    (``10 log10(mean(y^2) / sigma^2)``). The result may be negative, as real detectors' can be.
    """
    if (sigma is None) == (snr_db is None):
        raise ValueError("give exactly one of sigma and snr_db")
    if y.is_complex():
        raise TypeError("intensities y must be real")
    if snr_db is not None:
        sigma = float(y.square().mean().sqrt()) * 10 ** (-snr_db / 20)
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    noise = torch.randn(y.shape, dtype=y.dtype, generator=generator).to(y.device)
    return y + sigma * noise


def poisson_noise(
    y: torch.Tensor,
    photons: float,
    *,
    generator: torch.Generator | None = None,
    return_counts: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, float]:
    """Poisson (shot) noise with an expected total of ``photons`` counts per measurement set.

    The clean intensities are scaled so that the expected counts sum to ``photons`` over the last
    ``y.ndim`` dims of each sample -- here simply over the whole tensor -- and
    ``counts ~ Poisson(scale * y)``. Returns ``counts / scale`` (same units as ``y``), or
    ``(counts, scale)`` when ``return_counts``. Fewer photons means more noise.
    """
    if photons <= 0:
        raise ValueError(f"photons must be positive, got {photons}")
    if y.is_complex():
        raise TypeError("intensities y must be real")
    if bool((y < 0).any()):
        raise ValueError("intensities must be non-negative for Poisson noise")
    total = float(y.sum())
    if total <= 0:
        raise ValueError("intensities sum to zero; nothing to scale")
    scale = photons / total
    rate = (y * scale).detach().cpu().double()
    counts = torch.poisson(rate, generator=generator).to(device=y.device, dtype=y.dtype)
    if return_counts:
        return counts, scale
    return counts / scale
