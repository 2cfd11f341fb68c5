"""DIP fitting on a tiny deblurring problem: ncvx (discrepancy and MSE modes) and Adam."""

from __future__ import annotations

import pytest
import torch

from ncvx_imaging.deblurring import conv_circular, gaussian_kernel
from ncvx_imaging.deblurring.synthetic import make_blur_problem
from ncvx_imaging.dip import (
    ESWMV,
    fit_dip_adam,
    fit_dip_ncvx,
    image_from_flat,
    make_input,
    small_skip,
)
from ncvx_imaging.metrics import psnr


def _setup() -> tuple:
    P = make_blur_problem("camera", 24, gaussian_kernel(5, 1.0), 0.02, seed=1)
    torch.manual_seed(0)
    net = small_skip(in_channels=4, width=8, depth=2).double()
    z = make_input(4, (24, 24), dtype=torch.float64)
    return P, net, z, (lambda im: conv_circular(im, P.k))


def test_discrepancy_dip_improves_psnr_and_meets_the_bound() -> None:
    P, net, z, blur = _setup()
    fit = fit_dip_ncvx(net, z, P.y, blur, mode="discrepancy", sigma=P.sigma, maxit=100,
                       reference=P.x)
    assert float(psnr(fit.image, P.x)) > float(psnr(P.y, P.x)) + 1.0
    ratio = float(((blur(fit.image) - P.y) ** 2).sum() / (P.sigma**2 * P.y.numel()))
    assert ratio <= 1 + 1e-2  # at the bound, up to the solver tolerance after 100 iterations
    assert len(fit.psnr) == fit.iterations + 1  # one record per iteration, start included
    # the module holds the answer; image_from_flat reproduces it from the flat vector
    flat = torch.cat([p.detach().reshape(-1) for p in net.parameters()])
    torch.testing.assert_close(image_from_flat(net, z, flat), fit.image)


def test_mse_mode_fits_the_data() -> None:
    P, net, z, blur = _setup()
    with torch.no_grad():
        start = float(((blur(net(z)[0, 0]) - P.y) ** 2).mean())
    fit = fit_dip_ncvx(net, z, P.y, blur, mode="mse", maxit=40)
    assert float(((blur(fit.image) - P.y) ** 2).mean()) < 0.1 * start


def test_adam_with_es_wmv_callback_and_errors() -> None:
    P, net, z, blur = _setup()
    es = ESWMV(window=5, patience=10)
    fit = fit_dip_adam(net.float(), z.float(), P.y.float(), lambda im: conv_circular(im, P.k.float()),
                       iters=200, reference=P.x.float(), callback=lambda im, i: es.update(im))
    assert es.stopped_at is not None and fit.iterations == es.stopped_at + 1 <= 200
    assert len(fit.psnr) == fit.iterations
    with pytest.raises(ValueError, match="sigma"):
        fit_dip_ncvx(net, z, P.y, blur, mode="discrepancy")
    with pytest.raises(ValueError, match="mode"):
        fit_dip_ncvx(net, z, P.y, blur, mode="l2")
