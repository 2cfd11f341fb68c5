"""Blur operators, kernels, noise estimate, data loading and metrics."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ncvx_imaging import data, metrics
from ncvx_imaging.deblurring import (
    add_gaussian_noise,
    center_kernel,
    conv_circular,
    conv_circular_adjoint,
    conv_valid,
    conv_valid_adjoint,
    estimate_noise_sigma,
    gaussian_kernel,
    motion_kernel,
    pad_kernel,
    random_motion_kernel,
)

D = torch.float64


@pytest.mark.parametrize("kshape", [(5, 5), (4, 7), (1, 1), (9, 2)])
def test_adjoint_identities(kshape: tuple[int, int]) -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 19, 16, generator=g, dtype=D)
    k = torch.randn(kshape, generator=g, dtype=D)
    for fwd, adj in ((conv_circular, conv_circular_adjoint), (conv_valid, conv_valid_adjoint)):
        y = fwd(x, k)
        u = torch.randn(y.shape, generator=g, dtype=D)
        lhs = (y * u).sum()
        rhs = (x * adj(u, k)).sum()
        assert math.isclose(float(lhs), float(rhs), rel_tol=1e-10, abs_tol=1e-10)


def test_valid_matches_direct_convolution_and_circular_interior() -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.randn(20, 17, generator=g, dtype=D)
    k = torch.randn(5, 5, generator=g, dtype=D)
    direct = F.conv2d(x[None, None], k.flip(0, 1)[None, None])[0, 0]  # conv2d correlates
    torch.testing.assert_close(conv_valid(x, k), direct)
    torch.testing.assert_close(conv_circular(x, k)[2:-2, 2:-2], direct)


def test_batched_kernels_and_delta() -> None:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 12, 12, generator=g, dtype=D)
    delta = pad_kernel(torch.ones(1, 1, dtype=D), 5)
    torch.testing.assert_close(conv_circular(x, delta), x)
    ks = torch.stack([delta, gaussian_kernel(5, 1.0)])
    y = conv_circular(x, ks)
    torch.testing.assert_close(y[0], x[0])
    torch.testing.assert_close(y[1], conv_circular(x[1], ks[1]))
    with pytest.raises(ValueError, match="leading dims"):
        conv_circular(x, torch.ones(3, 5, 5, dtype=D))
    with pytest.raises(ValueError, match="larger"):
        conv_valid(x, torch.ones(13, 3, dtype=D))


@pytest.mark.parametrize(
    "k",
    [gaussian_kernel(13, 2.0), motion_kernel(11, 30.0), motion_kernel(9, 0.0, size=15),
     random_motion_kernel(13, seed=4)],
)
def test_kernels_on_simplex_and_centred(k: torch.Tensor) -> None:
    assert bool((k >= 0).all())
    assert math.isclose(float(k.sum()), 1.0, rel_tol=1e-12)
    torch.testing.assert_close(center_kernel(k), k)


def test_motion_kernel_length() -> None:
    k = motion_kernel(9, 0.0, size=15)
    cols = (k.sum(dim=0) > 1e-12).sum()
    assert int(cols) in (9, 10)  # anti-aliased ends may touch one more column
    assert int((k.sum(dim=1) > 1e-12).sum()) == 1


def test_noise_estimate() -> None:
    x = conv_circular(data.load_image("camera", 128), gaussian_kernel(9, 2.0))
    for sigma in (0.01, 0.05):
        est = float(estimate_noise_sigma(add_gaussian_noise(x, sigma, seed=0)))
        assert abs(est - sigma) < 0.15 * sigma


def test_load_image_range_and_errors() -> None:
    img = data.load_image("moon", 40, dtype=torch.float32)
    assert img.shape == (40, 40) and img.dtype == torch.float32
    assert float(img.min()) >= 0 and float(img.max()) <= 1
    assert data.load_image("astronaut", (20, 30)).shape == (20, 30)
    with pytest.raises(ValueError, match="unknown test image"):
        data.load_image("lena")


def test_psnr_ssim_known_answers() -> None:
    x = data.load_image("camera", 32)
    assert math.isclose(float(metrics.psnr(x + 0.1, x)), 20.0, rel_tol=1e-9)
    assert math.isclose(float(metrics.ssim(x, x)), 1.0, rel_tol=1e-12)
    assert float(metrics.ssim(x + 0.1 * torch.randn_like(x), x)) < 0.9


@pytest.mark.parametrize("shift", [(0, 0), (2, -1), (-3, 3)])
def test_aligned_metrics_invariant_to_shifts(shift: tuple[int, int]) -> None:
    g = torch.Generator().manual_seed(5)
    big = data.load_image("camera", 48)
    ref = big[8:40, 8:40]
    noisy = big + 0.02 * torch.randn(big.shape, generator=g, dtype=D)
    base, s0 = metrics.psnr_aligned(noisy[8:40, 8:40], ref, max_shift=4)
    dy, dx = shift
    moved = noisy[8 + dy : 40 + dy, 8 + dx : 40 + dx]  # moved[i, j] = noisy[i + dy, j + dx]
    val, s = metrics.psnr_aligned(moved, ref, max_shift=4)
    assert s0 == (0, 0) and s == (-dy, -dx)
    assert math.isclose(val, base, rel_tol=1e-12)
    sv, _ = metrics.ssim_aligned(moved, ref, max_shift=4)
    sb, _ = metrics.ssim_aligned(noisy[8:40, 8:40], ref, max_shift=4)
    assert math.isclose(sv, sb, rel_tol=1e-12)
    # a shifted copy scores infinitely well aligned, but not unaligned
    assert metrics.psnr_aligned(big[8 + dy : 40 + dy, 8 + dx : 40 + dx], ref)[0] == math.inf
    if shift != (0, 0):
        assert float(metrics.psnr(moved, ref)) < base - 3


def test_kernel_error_aligned() -> None:
    k = motion_kernel(7, 45.0)
    big = pad_kernel(k, 15)
    assert metrics.kernel_error_aligned(torch.roll(big, (3, -2), (0, 1)), k) < 1e-12
    assert metrics.kernel_error_aligned(pad_kernel(gaussian_kernel(7, 1.0), 15), k) > 0.3
