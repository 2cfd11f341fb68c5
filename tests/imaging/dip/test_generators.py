"""Generator networks: shapes for odd sizes, output ranges, kernel simplex, bad input."""

from __future__ import annotations

import math

import pytest
import torch

from ncvx_imaging.dip import KernelMLP, count_parameters, make_input, small_skip, standard_skip


@pytest.mark.parametrize("size", [(16, 16), (21, 17), (33, 40)])
def test_skip_net_keeps_any_size(size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    net = small_skip(in_channels=4, out_channels=1, width=8)
    out = net(make_input(4, size))
    assert out.shape == (1, 1, *size)
    assert bool((out > 0).all() and (out < 1).all())


def test_per_channel_activations_amplitude_phase() -> None:
    torch.manual_seed(0)
    net = small_skip(in_channels=2, out_channels=2, out_activation=("softplus", "phase"), width=8)
    out = net(10 * make_input(2, (16, 16), scale=1.0))
    assert bool((out[:, 0] >= 0).all())
    assert bool((out[:, 1].abs() <= math.pi).all())


def test_float64_and_gradients() -> None:
    net = small_skip(in_channels=3, width=4, depth=2).double()
    out = net(make_input(3, (12, 12), dtype=torch.float64))
    assert out.dtype == torch.float64
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_kernel_mlp_on_simplex() -> None:
    torch.manual_seed(0)
    g = KernelMLP((7, 5), in_features=10, hidden=20)
    k = g(torch.rand(10))
    assert k.shape == (7, 5)
    assert bool((k >= 0).all())
    assert math.isclose(float(k.detach().sum()), 1.0, rel_tol=1e-6)


def test_sizes_and_errors() -> None:
    assert count_parameters(small_skip()) < count_parameters(standard_skip())
    with pytest.raises(ValueError, match="activation"):
        small_skip(out_activation="bogus")
    with pytest.raises(ValueError, match="output channels"):
        small_skip(out_channels=2, out_activation=("sigmoid",))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        small_skip()(torch.zeros(8, 16, 16))
