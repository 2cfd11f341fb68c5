"""Measurement noise for intensity data: additive Gaussian and Poisson with a photon budget."""

from __future__ import annotations

import torch

__all__ = ["gaussian_noise", "poisson_amplitude_variance", "poisson_noise"]


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


def poisson_amplitude_variance(rate: torch.Tensor, *, series_below: float = 50.0) -> torch.Tensor:
    """``E[(sqrt(c) - sqrt(rate))^2]`` for ``c ~ Poisson(rate)``, elementwise (counts units).

    Tends to 1/4 for large rates (the square root stabilises the variance) and to ``rate`` for
    small ones. Below ``series_below`` it sums the Poisson series exactly (200 terms); above it
    uses ``1/4 + 1/(32 rate)``. Summed over pixels with ``rate`` = a model's predicted counts, it
    is the expected amplitude misfit of the truth: the noise level of the discrepancy form.
    """
    if bool((rate < 0).any()):
        raise ValueError("rates must be non-negative")
    r = rate.to(torch.float64)
    out = 0.25 + 1.0 / (32.0 * r.clamp_min(series_below))
    small = r < series_below
    if bool(small.any()):
        k = torch.arange(0, 200, dtype=torch.float64, device=r.device)
        ls = r[small].unsqueeze(-1)
        logp = k * torch.log(ls.clamp_min(1e-300)) - ls - torch.lgamma(k + 1)
        e_sqrt = (torch.exp(logp) * k.sqrt()).sum(-1)
        out[small] = 2 * r[small] - 2 * r[small].sqrt() * e_sqrt
    return out.to(rate.dtype)
