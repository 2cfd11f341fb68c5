"""ES-WMV: stops near the minimum of the windowed variance on synthetic trajectories."""

from __future__ import annotations

import math

import pytest
import torch

from ncvx_imaging.dip import ESWMV


def _trajectory(t: int, g: torch.Generator) -> torch.Tensor:
    """A fit that converges to a clean image, then drifts with growing jitter (noise fitting):
    the per-step change is smallest around t = 300."""
    clean = torch.linspace(0, 1, 64).reshape(8, 8)
    approach = math.exp(-t / 60.0)
    jitter = 1e-3 + 1e-5 * max(t - 300, 0) ** 1.5
    return clean * (1 - approach) + jitter * torch.randn(8, 8, generator=g, dtype=clean.dtype)


def test_stops_after_variance_minimum() -> None:
    g = torch.Generator().manual_seed(0)
    es = ESWMV(window=20, patience=150)
    stopped = None
    for t in range(2000):
        if es.update(_trajectory(t, g)):
            stopped = t
            break
    assert stopped is not None and es.stopped_at == stopped
    assert es.best_iteration is not None
    assert 200 <= es.best_iteration <= 450
    assert stopped == es.best_iteration + 150
    assert es.best_image is not None and es.best_image.shape == (8, 8)
    # variance is undefined until the window is full, then positive
    assert es.variances[:19] == [None] * 19 and all(v > 0 for v in es.variances[19:])


def test_never_stops_on_monotone_convergence() -> None:
    es = ESWMV(window=10, patience=50)
    clean = torch.ones(4, 4)
    assert not any(es.update(clean * (1 - 1 / (t + 1))) for t in range(300))


def test_window_variance_value() -> None:
    es = ESWMV(window=3, patience=5)
    for v in (0.0, 1.0, 2.0):
        es.update(torch.full((2, 2), v))
    assert math.isclose(es.variances[-1], 2.0 / 3.0, rel_tol=1e-12)  # population variance


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="window"):
        ESWMV(window=1)
    es = ESWMV(window=3)
    with pytest.raises(ValueError, match="image_fn"):
        es(object())
    es.update(torch.zeros(2, 2))
    with pytest.raises(ValueError, match="size changed"):
        es.update(torch.zeros(3, 3))
