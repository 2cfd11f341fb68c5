"""The truth-free choice of the discrepancy bound (tau = 1 - df/N) and its primal-dual tools."""

from __future__ import annotations

import itertools

import pytest
import torch

from ncvx_imaging.deblurring import conv_circular, gaussian_kernel, motion_kernel
from ncvx_imaging.deblurring.baselines import tv_deconv_discrepancy_reference
from ncvx_imaging.deblurring.discrepancy import PROBE_SEED, select_tau_df, tv_divergence
from ncvx_imaging.deblurring.nonblind import deconv_tv_discrepancy
from ncvx_imaging.deblurring.regularizers import total_variation
from ncvx_imaging.deblurring.synthetic import make_blur_problem

D = torch.float64


@pytest.fixture(scope="module")
def prob():
    return make_blur_problem("camera", 24, motion_kernel(5, 30), 0.02, seed=2)


def test_reference_meets_the_bound_and_beats_the_feasible_truth(prob) -> None:
    eps = float(torch.linalg.vector_norm(conv_circular(prob.x, prob.k) - prob.y))
    x, lam = tv_deconv_discrepancy_reference(prob.y, prob.k, eps, rtol=2e-3)
    ratio = float(((conv_circular(x, prob.k) - prob.y) ** 2).sum()) / eps**2
    assert abs(ratio - 1) <= 2e-3 and lam > 0
    # the truth satisfies the bound, so the minimum TV cannot be (much) above its TV
    assert float(total_variation(x)) <= 1.001 * float(total_variation(prob.x))
    assert float(x.min()) >= 0 and float(x.max()) <= 1


def test_divergence_known_answers() -> None:
    g = torch.Generator().manual_seed(0)
    y = 0.3 + 0.4 * torch.rand(16, 16, generator=g, dtype=D)
    N = y.numel()
    delta = torch.ones(1, 1, dtype=D)
    b = torch.randn(y.shape, generator=torch.Generator().manual_seed(5), dtype=D)  # its probe
    # large weight: x is the constant mean(y), whose Jacobian is the averaging matrix 11^T / N
    big = tv_divergence(y, delta, 1.0, y, sigma=0.01, iters=1000, seed=5)
    assert abs(big * N - float(b.sum()) ** 2 / N) < 0.01
    # tiny weight, identity blur, y inside the box: x = y, the Jacobian is the identity
    small = tv_divergence(y, delta, 1e-9, y, sigma=0.01, iters=50, seed=5)
    assert abs(small * N - float((b * b).sum())) < 1e-3 * N


def test_select_tau_df_is_a_fixed_point_step(prob) -> None:
    c = select_tau_df(prob.y, prob.k, prob.sigma, updates=2, iters=300)
    assert len(c.history) == 3
    taus = [h[0] for h in c.history]
    assert taus[0] == 1.0
    for (_, _, df), t_next in zip(c.history[:-1], taus[1:], strict=True):
        assert 0 < df < 1
        assert abs(t_next - max(1 - df, 0.5)) < 1e-12
    assert c.tau < 1.0  # a detailed picture has degrees of freedom
    assert c.x.shape == prob.y.shape


def test_deconv_tau_df_and_errors(prob) -> None:
    out = deconv_tv_discrepancy(prob.y, prob.k, prob.sigma, tau="df1", maxit=40,
                                tau_options={"iters": 100, "updates": 1})
    assert out.tau < 1.0 and out.tau_choice is not None
    assert out.misfit_ratio <= out.tau * 1.01
    fp = deconv_tv_discrepancy(prob.y, prob.k, prob.sigma, tau="df", maxit=40, x0=out.x,
                               tau_options={"iters": 100, "probes": 2, "max_evals": 4})
    assert fp.tau < 1.0 and fp.tau_choice.history[-1][0] == fp.tau
    assert fp.misfit_ratio <= fp.tau * 1.01
    with pytest.raises(ValueError, match="tau"):
        deconv_tv_discrepancy(prob.y, prob.k, prob.sigma, tau="gcv")
    with pytest.raises(ValueError, match="circular"):
        deconv_tv_discrepancy(prob.y, gaussian_kernel(3, 1.0), 0.01, tau="df", boundary="valid")
    with pytest.raises(ValueError, match="probes"):
        tv_divergence(prob.y, prob.k, 0.01, prob.y, sigma=0.01, probes=0)


def test_native_bounds_keep_the_box_and_improve(prob) -> None:
    from ncvx_imaging.metrics import psnr

    out = deconv_tv_discrepancy(prob.y, prob.k, prob.sigma, maxit=60, box="bounds")
    assert float(out.x.min()) >= 0.0 and float(out.x.max()) <= 1.0
    assert out.misfit_ratio <= 1.01
    assert float(psnr(out.x, prob.x)) > float(psnr(prob.y, prob.x)) + 1.0
    with pytest.raises(ValueError, match="box"):
        deconv_tv_discrepancy(prob.y, prob.k, prob.sigma, box="clip")


def test_select_tau_df_rejects_a_bound_no_boxed_image_meets(monkeypatch) -> None:
    # a strong blur: with the box, the misfit cannot fall to half the noise level, so a step to
    # tau = 0.5 (forced here by a huge df) must be rejected and tau = 1 kept
    import ncvx_imaging.deblurring.discrepancy as disc

    P = make_blur_problem("camera", 24, gaussian_kernel(9, 2.0), 0.05, seed=1)
    monkeypatch.setattr(disc, "tv_divergence", lambda *a, **k: 0.9)
    c = disc.select_tau_df(P.y, P.k, P.sigma, iters=100)
    assert c.tau == 1.0
    assert [h[0] for h in c.history] == [1.0, 0.5]
    ratio = float(((conv_circular(c.x, P.k) - P.y) ** 2).sum()) / (P.sigma**2 * P.y.numel())
    assert abs(ratio - 1) < 0.01  # the returned image is the tau = 1 one


def test_deconv_default_box_is_native_bounds(prob) -> None:
    out = deconv_tv_discrepancy(prob.y, prob.k, prob.sigma, maxit=30)
    assert float(out.x.min()) >= 0.0 and float(out.x.max()) <= 1.0
    assert out.result.x.numel() == prob.y.numel()


def test_select_tau_fixed_point_root_or_risk_minimum(prob) -> None:
    from ncvx_imaging.deblurring.discrepancy import select_tau_fixed_point

    c = select_tau_fixed_point(prob.y, prob.k, prob.sigma, probes=2, iters=100)
    assert 0.5 <= c.tau < 1.0 and c.x.shape == prob.y.shape
    ratio = float(((conv_circular(c.x, prob.k) - prob.y) ** 2).sum()) / (
        prob.sigma**2 * prob.y.numel())
    assert abs(ratio - c.tau) < 1e-9  # tau is the misfit of the returned primal-dual image
    walk = c.history[:-1]
    assert abs(walk[0][0] - 1) < 0.01  # the walk starts at the textbook weight ...
    assert all(b[1] < a[1] for a, b in itertools.pairwise(walk))  # ... and goes down
    # an independent divergence (same two probes) at the chosen weight: the chosen point is the
    # fixed point tau = 1 - df/N, or (safeguard) no worse in estimated risk than the walk
    df = tv_divergence(prob.y, prob.k, c.lam, c.x, prob.sigma, probes=2, iters=100,
                       seed=PROBE_SEED)
    risks = [t - 1 + 2 * d for t, _, d in walk]
    assert abs(1 - df - c.tau) < 0.01 or c.tau - 1 + 2 * df <= min(risks) + 0.005
    # safeguards: an unreachable bound keeps tau = 1 without walking
    P = make_blur_problem("camera", 24, gaussian_kernel(9, 2.0), 0.05, seed=1)
    c2 = select_tau_fixed_point(P.y, P.k, P.sigma / 2, iters=100)  # misfit cannot get there
    assert c2.tau == 1.0 and len(c2.history) == 1
    # a walk cut by the budget while the risk still falls (nothing bracketed) keeps tau = 1
    c3 = select_tau_fixed_point(prob.y, prob.k, prob.sigma, probes=2, iters=100,
                                factor=1.01, max_evals=2)
    walk3 = c3.history[:-1]
    r3 = [t - 1 + 2 * d for t, _, d in walk3]
    if max(1 - d - t for t, _, d in walk3) < 0 and r3[-1] < r3[0]:
        assert c3.tau == 1.0
    with pytest.raises(ValueError, match="factor"):
        select_tau_fixed_point(prob.y, prob.k, prob.sigma, factor=1.0)

