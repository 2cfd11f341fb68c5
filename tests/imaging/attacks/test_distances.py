"""Distances of ncvx_imaging.attacks: known values, identities and finite-difference gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ncvx_imaging.attacks import FeatureDistance, lp_distance, ssim, ssim_distance
from ncvx_imaging.attacks.distances import check_window, default_feature_fn
from ncvx_imaging.attacks.models import DigitsCNN, DigitsMLP

D = torch.float64


def _pair(seed: int = 0, shape: tuple[int, ...] = (2, 1, 8, 8)) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g, dtype=D)
    y = (x + 0.2 * torch.randn(shape, generator=g, dtype=D)).clamp(0, 1)
    return x, y


def test_lp_known_values() -> None:
    x = torch.zeros(1, 1, 2, 2, dtype=D)
    y = torch.tensor([[[[3.0, -4.0], [0.0, 1.0]]]], dtype=D)
    assert lp_distance(x, y, "l1").tolist() == [8.0]
    assert lp_distance(x, y, "l2").tolist() == pytest.approx([26.0**0.5])
    assert lp_distance(x, y, "linf").tolist() == [4.0]
    with pytest.raises(ValueError, match="unknown lp"):
        lp_distance(x, y, "l3")


@pytest.mark.parametrize("p", ["l1", "l2", "linf"])
def test_lp_gradcheck(p: str) -> None:
    x, y = _pair()
    y = y.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v: lp_distance(x, v, p), (y,))


def test_ssim_identities() -> None:
    x, y = _pair()
    torch.testing.assert_close(ssim(x, x), torch.ones(2, dtype=D))
    torch.testing.assert_close(ssim(x, y), ssim(y, x))
    assert bool((ssim(x, y) < 1).all())
    assert bool((ssim_distance(x, y) > 0).all())
    # contrast inversion around the mean gives negative structure correlation
    assert float(ssim(x, 1 - x)[0]) < 0.5


def test_ssim_matches_explicit_single_window() -> None:
    """With a window the size of the image, SSIM is the global formula with Gaussian weights."""
    x, y = _pair(shape=(1, 1, 5, 5))
    r = torch.arange(5, dtype=D) - 2.0
    g = torch.exp(-(r**2) / 2.0)
    w = torch.outer(g, g) / torch.outer(g, g).sum()
    mx, my = (w * x[0, 0]).sum(), (w * y[0, 0]).sum()
    sxx = (w * x[0, 0] ** 2).sum() - mx**2
    syy = (w * y[0, 0] ** 2).sum() - my**2
    sxy = (w * x[0, 0] * y[0, 0]).sum() - mx * my
    c1, c2 = 0.01**2, 0.03**2
    want = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))
    torch.testing.assert_close(ssim(x, y, window=5, sigma=1.0)[0], want)


def test_ssim_gradcheck_and_bad_window() -> None:
    x, y = _pair(shape=(1, 1, 6, 6))
    y = y.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v: ssim_distance(x, v, window=3), (y,))
    with pytest.raises(ValueError, match="window"):
        ssim(x, x, window=7)
    with pytest.raises(ValueError, match="one shape"):
        ssim(x, x[:, :, :5])
    assert check_window(8, 8, 7) == 7
    assert check_window(4, 8, 7) == 3


@pytest.mark.parametrize("arch", [DigitsMLP, DigitsCNN])
def test_feature_distance_zero_at_x_and_gradcheck(arch: type[nn.Module]) -> None:
    torch.manual_seed(0)
    model = arch().double().eval()
    dist = FeatureDistance(default_feature_fn(model))
    x, y = _pair()
    torch.testing.assert_close(dist(x, x), torch.zeros(2, dtype=D))
    assert bool((dist(x, y) > 0).all())
    y = y.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v: dist(x, v), (y,))


def test_feature_hooks_without_features_method() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(48, 5), nn.ReLU(),
        nn.Linear(5, 3),
    ).double().eval()
    feats = default_feature_fn(model)(torch.rand(2, 1, 4, 4, dtype=D))
    assert [tuple(f.shape) for f in feats] == [(2, 3, 4, 4), (2, 5)]  # the logits layer is left out
    with pytest.raises(ValueError, match="feature_fn"):
        default_feature_fn(nn.Sequential(nn.Flatten()))
