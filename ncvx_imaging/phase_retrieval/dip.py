"""Deep-image-prior (double DIP) formulation of CDI, solved by ncvx with L-BFGS memory.

Following the idea of Zhuang, Yang, Hofmann, Barmherzig and Sun ("Practical phase retrieval using
double deep image priors", 2022): the object is generated, ``x = a * exp(i phi)`` with the
amplitude ``a = G_a(z_a) >= 0`` and the phase ``phi = G_phi(z_phi)`` produced by two untrained
convolutional generators with fixed random inputs; a real non-negative object uses the amplitude
generator only. The generators are :mod:`ncvx_imaging.dip`'s ``small_skip`` networks (owned by the
DIP package); ncvx optimises their weights (``ncvx.solve_module``) on the amplitude data fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

import ncvx

from .formulations import data_misfit
from .forward import FarField

__all__ = ["DIPResult", "DoubleDIP", "fit_double_dip"]


class DoubleDIP(nn.Module):
    """Amplitude (softplus) and optional phase (``pi tanh``) generators on a ``(h, w)`` box.

    ``forward()`` returns the ``(h, w)`` object: real (amplitude only) or complex.
    """

    def __init__(
        self, shape: tuple[int, int], *, real: bool, width: int = 16, depth: int = 3, seed: int = 0
    ) -> None:
        super().__init__()
        from ncvx_imaging.dip import make_input, small_skip

        torch.manual_seed(seed)
        self.real = real
        self.amp = small_skip(8, 1, out_activation="softplus", width=width, depth=depth)
        self.register_buffer("z_amp", make_input(8, shape, seed=seed))
        if not real:
            self.phase = small_skip(8, 1, out_activation="phase", width=width, depth=depth)
            self.register_buffer("z_phase", make_input(8, shape, seed=seed + 1))

    def forward(self) -> torch.Tensor:
        a = self.amp(self.z_amp)[0, 0]
        if self.real:
            return a
        return torch.polar(a, self.phase(self.z_phase)[0, 0])


@dataclass
class DIPResult:
    """The fitted object ``(h, w)``, the ncvx result and the module."""

    image: torch.Tensor
    result: ncvx.Result
    module: DoubleDIP


def fit_double_dip(
    y: torch.Tensor,
    box: tuple[int, int, int, int],
    *,
    real: bool,
    maxit: int = 500,
    limited_mem_size: int = 10,
    width: int = 16,
    seed: int = 0,
    **options: Any,
) -> DIPResult:
    """Fit a :class:`DoubleDIP` on the support ``box = (row, col, h, w)`` of the ``(H, W)``
    intensities ``y`` (unitary far field) by ncvx L-BFGS on ``sum(|F x| - sqrt y)^2 / sum y``."""
    r, c, h, w = box
    ff = FarField((h, w), tuple(y.shape), offset=(r, c))
    dtype = y.dtype
    net = DoubleDIP((h, w), real=real, width=width, seed=seed).to(dtype)
    # scale the generated amplitude to the data's energy: ||x||^2 = sum(y)
    with torch.no_grad():
        gain = float(y.sum().sqrt() / net().abs().norm().clamp_min(1e-12))
    norm = y.sum()

    def fn(module: DoubleDIP) -> tuple[torch.Tensor, None, None]:
        return data_misfit(ff.linear(gain * module()), y, "amplitude") / norm, None, None

    res = ncvx.solve_module(
        net, fn, maxit=maxit, limited_mem_size=limited_mem_size, print_level=0, **options
    )
    with torch.no_grad():
        img = gain * net()
    return DIPResult(image=img, result=res, module=net)
