"""Regularisers, simplex tools, baselines and the ncvx deconvolution formulations on tiny
problems (known answers, feasibility of the results, PSNR improvement)."""

from __future__ import annotations

import math

import pytest
import torch

from ncvx_imaging.deblurring import (
    conv_circular,
    conv_valid,
    gaussian_kernel,
    motion_kernel,
    pad_kernel,
)
from ncvx_imaging.deblurring.baselines import oracle_tune, tv_deconv_constrained, wiener
from ncvx_imaging.deblurring.blind import blind_deblur, blind_deblur_am, crop_latent, pad_latent
from ncvx_imaging.deblurring.blind_dip import blind_deblur_dip
from ncvx_imaging.deblurring.nonblind import box_violation, deconv_tv_discrepancy
from ncvx_imaging.deblurring.pipeline import blind_deblur_constrained
from ncvx_imaging.deblurring.regularizers import (
    gradient,
    gradient_adjoint,
    l1_over_l2,
    total_variation,
)
from ncvx_imaging.deblurring.simplex import fit_kernel_simplex, project_simplex
from ncvx_imaging.deblurring.synthetic import make_blur_problem
from ncvx_imaging.metrics import psnr

D = torch.float64


def test_gradient_adjoint_and_tv_known_answer() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 9, 7, generator=g, dtype=D)
    u = torch.randn(2, 2, 9, 7, generator=g, dtype=D)
    assert math.isclose(float((gradient(x) * u).sum()), float((x * gradient_adjoint(u)).sum()),
                        rel_tol=1e-12)
    step = torch.zeros(6, 6, dtype=D)
    step[:, 3:] = 1.0  # one vertical edge of height 6 and jump 1
    assert math.isclose(float(total_variation(step)), 6.0, rel_tol=1e-12)
    assert math.isclose(float(l1_over_l2(step)), 6.0 / 6.0**0.5, rel_tol=1e-12)
    assert math.isclose(float(l1_over_l2(3 * x[0])), float(l1_over_l2(x[0])), rel_tol=1e-12)
    flat = torch.zeros(5, 5, dtype=D, requires_grad=True)
    total_variation(flat).backward()  # nonsmooth at 0: a finite (zero) subgradient, not NaN
    assert flat.grad is not None and bool(torch.isfinite(flat.grad).all())


def test_project_simplex_is_the_projection() -> None:
    g = torch.Generator().manual_seed(1)
    v = torch.randn(5, 5, generator=g, dtype=D)
    p = project_simplex(v)
    assert bool((p >= 0).all()) and math.isclose(float(p.sum()), 1.0, rel_tol=1e-12)
    for _ in range(20):  # no random simplex point is closer
        q = torch.rand(5, 5, generator=g, dtype=D)
        q = q / q.sum()
        assert float((p - v).norm()) <= float((q - v).norm()) + 1e-12
    torch.testing.assert_close(project_simplex(p), p)


def test_fit_kernel_simplex_recovers_oversized_kernel() -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.rand(40, 40, generator=g, dtype=D)
    k = motion_kernel(7, 45.0)
    y = conv_valid(x, k)[4:-4, 4:-4]  # the valid part for a 15x15 support
    k0 = torch.full((15, 15), 1 / 225, dtype=D)
    est = fit_kernel_simplex(x, y, k0, iters=300)
    assert float((est - pad_kernel(k, 15)).abs().max()) < 1e-3


def test_wiener_inverts_noiseless_blur_and_oracle_tune_picks_it() -> None:
    x = make_blur_problem("camera", 32, gaussian_kernel(3, 0.5), 0.0).x
    k = gaussian_kernel(3, 0.5)
    y = conv_circular(x, k)
    torch.testing.assert_close(wiener(y, k, 0.0), x)
    best, _est, score = oracle_tune(lambda v: wiener(y, k, v), x, [1e-8, 1e-4, 1e-1], refine=0)
    assert best == 1e-8 and score > 60


@pytest.fixture(scope="module")
def tiny_nonblind() -> tuple:
    P = make_blur_problem("camera", 32, gaussian_kernel(7, 1.5), 0.01, seed=3)
    return P, deconv_tv_discrepancy(P.y, P.k, P.sigma, maxit=150)


@pytest.fixture
def short_am(monkeypatch) -> list[int]:
    """The pipeline's alternating stage with a few iterations per step (the tests here check
    shapes, supports, feasibility and the control flow, not quality); returns the supports it
    was called with."""
    import ncvx_imaging.deblurring.pipeline as pipe_mod

    sizes: list[int] = []
    real_am = pipe_mod.blind_deblur_am

    def short(y, size, *a, **kw):
        sizes.append(size)
        return real_am(y, size, *a, x_maxit=5, k_iters=10, final_maxit=5, **kw)

    monkeypatch.setattr(pipe_mod, "blind_deblur_am", short)
    return sizes


def test_nonblind_discrepancy_improves_psnr_and_is_feasible(tiny_nonblind) -> None:
    P, out = tiny_nonblind
    assert out.misfit_ratio <= 1 + 1e-4
    assert float(box_violation(out.x)) <= 1e-4
    assert float(psnr(out.x, P.x)) > float(psnr(P.y, P.x)) + 1.0


def test_nonblind_discrepancy_reaches_the_reference_optimum(tiny_nonblind) -> None:
    P, out = tiny_nonblind
    # same problem by the primal-dual reference: TV values agree within a few percent
    ref = tv_deconv_constrained(P.y, P.k, (P.sigma**2 * P.y.numel()) ** 0.5, iters=3000)
    assert float(total_variation(out.x)) <= 1.05 * float(total_variation(ref))


def test_nonblind_valid_boundary_and_errors() -> None:
    P = make_blur_problem("moon", 24, gaussian_kernel(5, 1.0), 0.01, boundary="valid")
    out = deconv_tv_discrepancy(P.y, P.k, P.sigma, boundary="valid", maxit=60)
    assert out.x.shape == (28, 28)
    assert float(psnr(crop_latent(out.x, (5, 5)), P.x)) > float(psnr(P.y, P.x))
    with pytest.raises(ValueError, match="boundary"):
        deconv_tv_discrepancy(P.y, P.k, 0.01, boundary="reflect")


def _on_simplex(k: torch.Tensor, tol: float) -> bool:
    return float(k.min()) >= -tol and abs(float(k.sum()) - 1) <= tol


def test_blind_solvers_return_kernels_on_the_simplex(short_am) -> None:
    P = make_blur_problem("camera", 24, motion_kernel(5, 0.0), 0.01, boundary="valid")
    joint = blind_deblur(P.y, 9, P.sigma, maxit=50)
    assert joint.x.shape == (32, 32) and joint.k.shape == (9, 9)
    assert _on_simplex(joint.k, 1e-12) and joint.kernel_projection < 1e-2
    am = blind_deblur_am(P.y, 9, P.sigma, outer=1, x_maxit=5, final_maxit=5, levels=1)
    assert _on_simplex(am.k, 1e-10)
    torch.manual_seed(0)
    dip = blind_deblur_dip(P.y, 9, P.sigma, warmup_iters=10, ncvx_maxit=5)
    assert _on_simplex(dip.k, 1e-12) and dip.kernel_projection < 1e-2
    assert pad_latent(P.y, (9, 9)).shape == joint.x.shape
    stages: dict = {}
    pipe = blind_deblur_constrained(P.y, 9, P.sigma, warmup_iters=10, outer=1, final_maxit=5,
                                    stages=stages, starts=[("trim", 0)])
    assert _on_simplex(pipe.k, 1e-10) and pipe.x.shape == (32, 32)
    assert {"warmup", "am", "starts", "enlarged", "small_size"} <= set(stages)
    assert stages["small_size"] == 5 and stages["starts"][0][0] == "trim"


@pytest.mark.slow  # three full pipeline starts: ~45 s on the loaded 2-core machine (session 5)
def test_pipeline_coarse_start_and_choice_by_objective() -> None:
    P = make_blur_problem("camera", 24, motion_kernel(5, 0.0), 0.01, boundary="valid")
    stages: dict = {}
    pipe = blind_deblur_constrained(P.y, 9, P.sigma, warmup_iters=20, outer=1, final_maxit=10,
                                    starts=[("full", 0), ("coarse", 0), ("eswmv", 0)],
                                    stages=stages, select="objective")
    assert _on_simplex(pipe.k, 1e-10) and pipe.x.shape == (32, 32)
    objs = [s[2] for s in stages["starts"]]
    assert [s[0] for s in stages["starts"]] == ["full", "coarse", "eswmv"]
    chosen = float(l1_over_l2(crop_latent(pipe.x, (9, 9))))
    assert chosen == pytest.approx(min(objs))
    with pytest.raises(ValueError, match="warm start"):
        blind_deblur_constrained(P.y, 9, P.sigma, starts=[("medium", 0)])


def test_ring_mass_and_enlarged_support_keep_the_blur() -> None:
    from ncvx_imaging.deblurring.pipeline import enlarge_support, ring_mass

    k = motion_kernel(5, 30.0)  # fits its 5 x 5 support loosely
    assert ring_mass(pad_kernel(k, 9)) == pytest.approx(0.0, abs=1e-12)
    assert ring_mass(torch.ones(5, 5, dtype=D)) == pytest.approx(16 / 25)
    g = torch.Generator().manual_seed(0)
    off = torch.zeros(7, 7, dtype=D)
    off[1:4, 3:6] = torch.rand(3, 3, generator=g, dtype=D)  # off-centre mass
    x = torch.rand(20 + 6, 18 + 6, generator=g, dtype=D)
    xb, kb = enlarge_support(x, off, 15)
    assert kb.shape == (15, 15) and xb.shape == (20 + 14, 18 + 14)
    assert torch.allclose(conv_valid(xb, kb), conv_valid(x, off), atol=1e-12)
    assert kb.sum() == pytest.approx(float(off.sum()))
    # the centre of mass moves to the centre of the larger support
    rows = (kb.sum(1) * torch.arange(15, dtype=D)).sum() / kb.sum()
    assert abs(float(rows) - 7) <= 0.5
    with pytest.raises(ValueError, match="square"):
        enlarge_support(x, off, 5)
    with pytest.raises(ValueError, match="3 x 3"):
        ring_mass(torch.ones(2, 2, dtype=D))


def test_size_pyramid_enlarges_a_fitting_kernel_and_falls_back_otherwise() -> None:
    from ncvx_imaging.deblurring.pipeline import size_pyramid_warm_start

    P = make_blur_problem("camera", 24, motion_kernel(5, 0.0), 0.01, boundary="valid")
    x0, k0, info = size_pyramid_warm_start(P.y, 11, P.sigma, iters=15, ring_max=1.0)
    assert info["enlarged"] and info["small_size"] == 7
    assert k0.shape == (11, 11) and x0.shape == (34, 34)
    nz = k0.nonzero()
    assert int(nz[:, 0].max() - nz[:, 0].min()) < 7 and int(nz[:, 1].max() - nz[:, 1].min()) < 7
    assert float(k0.sum()) == pytest.approx(1.0) and float(k0.min()) >= 0
    x1, k1, info1 = size_pyramid_warm_start(P.y, 11, P.sigma, iters=15, ring_max=-1.0)
    assert not info1["enlarged"] and k1.shape == (11, 11) and x1.shape == (34, 34)
    assert info1["ring_mass"] == pytest.approx(info["ring_mass"])


@pytest.mark.parametrize("kind", ["trim", "sizes"])
def test_pyramid_starts_return_the_specified_support(kind, monkeypatch, short_am) -> None:
    import ncvx_imaging.deblurring.pipeline as pipe_mod

    monkeypatch.setattr(pipe_mod, "ring_mass", lambda k: 0.0)  # force the enlargement branch
    P = make_blur_problem("camera", 24, motion_kernel(5, 0.0), 0.01, boundary="valid")
    stages: dict = {}
    out = blind_deblur_constrained(P.y, 11, P.sigma, warmup_iters=10, outer=1, final_maxit=5,
                                   starts=[(kind, 0)], stages=stages)
    assert stages["enlarged"] and stages["small_size"] == 7
    assert out.k.shape == (11, 11) and out.x.shape == (34, 34)
    assert _on_simplex(out.k, 1e-10)
    if kind == "trim":  # stages 2-3 ran with the 7 x 7 support: the rest stays empty
        assert stages["am"].k.shape == (7, 7)
        nz = out.k.nonzero()
        assert int(nz[:, 0].max() - nz[:, 0].min()) < 7
    ratio = float(((conv_valid(out.x, out.k) - P.y) ** 2).sum()) / (P.sigma**2 * P.y.numel())
    assert ratio == pytest.approx(out.misfit_ratio, rel=1e-9)


def test_size_pyramid_uses_the_given_generator_at_the_small_size() -> None:
    from ncvx_imaging.deblurring.pipeline import size_pyramid_warm_start
    from ncvx_imaging.dip import make_input, small_skip

    P = make_blur_problem("camera", 24, motion_kernel(5, 0.0), 0.01, boundary="valid")
    torch.manual_seed(0)
    net = small_skip(4, 1, width=6, depth=2).to(D)
    before = [p.detach().clone() for p in net.parameters()]
    z = make_input(4, (34, 34), dtype=D)
    calls: list[tuple[int, ...]] = []
    handle = net.register_forward_hook(lambda m, i, o: calls.append(tuple(i[0].shape)))
    x0, k0, info = size_pyramid_warm_start(P.y, 11, P.sigma, iters=5, ring_max=1.0, net=net, z=z)
    handle.remove()
    assert info["enlarged"] and x0.shape == (34, 34) and k0.shape == (11, 11)
    # a copy of the given module (the copy carries the hook) ran on the 4-channel centre of z,
    # 30 x 30 for the 7 x 7 support ...
    assert info["small_warmup"].x.shape == (30, 30)
    assert calls and set(calls) == {(1, 4, 30, 30)}
    # ... and the passed module itself was not trained (kept for a full-size rerun)
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))


def test_crop_latent_centred_follows_the_kernel_centre() -> None:
    from ncvx_imaging.deblurring.blind import crop_latent_centred

    g = torch.Generator().manual_seed(1)
    x = torch.rand(30, 32, generator=g, dtype=D)
    k = torch.zeros(9, 9, dtype=D)
    k[4, 4] = 1.0  # centred delta: both crops agree and equal y
    assert torch.equal(crop_latent_centred(x, k), crop_latent(x, (9, 9)))
    k = torch.zeros(9, 9, dtype=D)
    k[1, 7] = 1.0  # off-centre delta: y is the latent shifted, the centred crop recovers it
    y = conv_valid(x, k)
    assert torch.allclose(crop_latent_centred(x, k), y, atol=1e-12)
    assert not torch.allclose(crop_latent(x, (9, 9)), y)
    with pytest.raises(ValueError, match="positive mass"):
        crop_latent_centred(x, torch.zeros(9, 9, dtype=D))


def test_residual_whiteness_and_start_selection(monkeypatch) -> None:
    import torch.nn.functional as F

    import ncvx_imaging.deblurring.pipeline as pipe_mod
    from ncvx_imaging.deblurring.blind import BlindResult
    from ncvx_imaging.deblurring.pipeline import residual_whiteness

    g = torch.Generator().manual_seed(0)
    r = torch.randn(48, 40, generator=g, dtype=D)
    white = residual_whiteness(r)
    assert 0 <= white < 3 * 48 / r.numel()  # about (7^2 - 1) / N for white noise
    assert residual_whiteness(F.avg_pool2d(r[None, None], 3, 1, 1)[0, 0]) > 100 * white
    assert residual_whiteness(5 * r + 2) == pytest.approx(white)  # scale and offset free
    with pytest.raises(ValueError, match="2-D"):
        residual_whiteness(r[0])
    # selection among starts: fake starts whose residuals are white or smooth, one "trim" start
    # that fell back to the full size (its "full" twin must not run again)
    y = torch.rand(20, 20, generator=g, dtype=D)
    k = torch.zeros(5, 5, dtype=D)
    k[2, 2] = 1.0
    runs: list[tuple[str, int]] = []

    def fake(y_, size, sigma, tau, kind, seed, *a, min_piece=0.0, kernel_seeds=0,
             seed_choice=""):
        assert min_piece == 0.05  # the pipeline's default piece clean-up is passed on
        assert kernel_seeds == 1  # ... and no consensus kernel by default
        assert seed_choice == "median"
        runs.append((kind, seed))
        noise = torch.randn(20, 20, generator=torch.Generator().manual_seed(seed), dtype=D)
        res = 0.01 * (noise if seed == 1 else F.avg_pool2d(noise[None, None], 5, 1, 2)[0, 0])
        x = pad_latent(y_ - res, (5, 5))
        info = {"enlarged": False} if kind == "trim" else {}
        return BlindResult(x=x, k=k, result=None, seconds=0.0, sigma=sigma,
                           misfit_ratio=1.0), info

    monkeypatch.setattr(pipe_mod, "_one_start", fake)
    stages: dict = {}
    out = blind_deblur_constrained(y, 5, 0.01, starts=[("trim", 0), ("full", 0), ("full", 1)],
                                   select="whiteness", stages=stages)
    assert runs == [("trim", 0), ("full", 1)]
    assert [s[:2] for s in stages["starts"]] == runs
    assert torch.allclose(conv_valid(out.x, out.k), y - 0.01 * torch.randn(
        20, 20, generator=torch.Generator().manual_seed(1), dtype=D))  # the white one
    # the default: one "fit" start of the given seed
    runs.clear()
    monkeypatch.setattr(pipe_mod, "_one_start",
                        lambda *a, **kw: (fake(*a, **kw)[0], {"enlarged": True}))
    blind_deblur_constrained(y, 5, 0.01, seed=1)
    assert runs == [("fit", 1)]
    with pytest.raises(ValueError, match="select"):
        blind_deblur_constrained(y, 5, 0.01, select="tv")
    with pytest.raises(ValueError, match="kernel_seeds"):
        blind_deblur_constrained(y, 5, 0.01, kernel_seeds=0)


def test_estimate_support_ignores_specks_and_rounds_up_to_odd() -> None:
    from ncvx_imaging.deblurring.pipeline import estimate_support

    k = pad_kernel(motion_kernel(13, 60.0), (27, 27))  # a 13-px line: 13 rows, fewer columns
    assert estimate_support(k) == 13
    specks = k.clone()
    specks[0, 0] = specks[26, 20] = 0.005  # isolated specks (under 2 % each) are ignored ...
    assert estimate_support(specks / specks.sum()) == 13
    assert estimate_support(specks / specks.sum(), min_mass=0.0) == 27  # ... unless asked
    two = torch.zeros(15, 15, dtype=D)  # two pieces of real mass: the box spans both
    two[3, 3:5] = two[8, 9] = 1.0
    assert estimate_support(two / two.sum()) == 7  # 6 wide -> 7
    assert estimate_support(pad_kernel(torch.ones(1, 1, dtype=D), (9, 9))) == 1
    with pytest.raises(ValueError, match="square"):
        estimate_support(torch.ones(3, 5, dtype=D))
    with pytest.raises(ValueError, match="positive mass"):
        estimate_support(torch.zeros(5, 5, dtype=D))


def test_drop_small_pieces_clears_specks_and_keeps_the_blur() -> None:
    from ncvx_imaging.deblurring.blind import drop_small_pieces, kernel_pieces

    k = torch.zeros(9, 9, dtype=D)
    k[4, 1:8] = 0.13  # a connected 7-px line: 0.91 of the mass
    k[0, 0], k[8, 8] = 0.03, 0.01  # two isolated specks
    k[8, 0], k[7, 1] = 0.025, 0.025  # a diagonal pair (one 8-connected piece of 0.05)
    lab, ids, masses = kernel_pieces(k)
    assert len(ids) == 4 and float(masses.sum()) == pytest.approx(1.0)
    assert int((lab > 0).sum()) == 11 and lab[8, 0] == lab[7, 1] != lab[0, 0]
    assert sorted(round(float(m), 3) for m in masses) == [0.01, 0.03, 0.05, 0.91]
    out = drop_small_pieces(k, 0.04)
    assert float(out.sum()) == pytest.approx(1.0) and float(out.min()) >= 0
    assert out[0, 0] == 0 and out[8, 8] == 0 and out[8, 0] > 0 and out[7, 1] > 0
    assert torch.allclose(out[4, 1:8], k[4, 1:8] / 0.96)
    # the heaviest piece stays even when every piece is below the threshold
    two = torch.zeros(5, 5, dtype=D)
    two[0, 0], two[4, 4] = 0.4, 0.6
    assert torch.equal(drop_small_pieces(two, 0.9), (two == 0.6).to(D))
    with pytest.raises(ValueError, match="min_mass"):
        drop_small_pieces(k, 1.0)
    P = make_blur_problem("camera", 16, motion_kernel(3, 0.0), 0.01, boundary="valid")
    with pytest.raises(ValueError, match="min_piece"):
        blind_deblur_am(P.y, 5, 0.01, min_piece=-0.1)


def test_fit_start_falls_back_to_the_full_size_only_for_a_cut_off_kernel(
    monkeypatch, short_am,
) -> None:
    import ncvx_imaging.deblurring.pipeline as pipe_mod

    P = make_blur_problem("camera", 24, motion_kernel(5, 0.0), 0.01, boundary="valid")
    monkeypatch.setattr(pipe_mod, "estimate_support", lambda k: k.shape[0])  # kernels fill it
    monkeypatch.setattr(pipe_mod, "ring_mass", lambda k: 0.5)  # ... with mass on the ring
    sizes = short_am
    stages: dict = {}
    out = blind_deblur_constrained(P.y, 13, P.sigma, warmup_iters=10, outer=1, final_maxit=5,
                                   starts=[("fit", 0)], stages=stages)
    assert sizes == [7, 13]  # half size, cut off -> full size; no refit (extent = support)
    assert stages["small_am_extent"] == 7 and not stages["enlarged"] and not stages["refit"]
    assert out.k.shape == (13, 13) and stages["am"].k.shape == (13, 13)
    # a kernel spanning the half size with little mass on the ring (spread, not cut off) stays
    monkeypatch.setattr(pipe_mod, "ring_mass", lambda k: 0.1)
    sizes.clear()
    stages = {}
    blind_deblur_constrained(P.y, 13, P.sigma, warmup_iters=10, outer=1, final_maxit=5,
                             starts=[("fit", 0)], stages=stages)
    assert sizes == [7] and stages["enlarged"] and stages["am"].k.shape == (7, 7)


def test_fit_start_reruns_with_the_estimated_support(monkeypatch, short_am) -> None:
    import ncvx_imaging.deblurring.pipeline as pipe_mod

    P = make_blur_problem("camera", 24, motion_kernel(5, 0.0), 0.01, boundary="valid")
    monkeypatch.setattr(pipe_mod, "estimate_support", lambda k: 5)  # a 5 x 5 blur found in 7 x 7
    sizes = short_am  # the supports of the alternating stages
    stages: dict = {}
    out = blind_deblur_constrained(P.y, 13, P.sigma, warmup_iters=10, outer=1, final_maxit=5,
                                   starts=[("fit", 0)], stages=stages)
    assert stages["small_size"] == 7 and stages["support_estimate"] == 5
    rings = stages["refit_ring_mass"]
    # alternating at 7 (the half-size kernel fitted) or 13, then the refit at 5, and at 7 when
    # the 5 x 5 kernel came out cut off and 7 is still 2 px below the support in use
    first = sizes[0]
    assert first in (7, 13) and sizes[1] == 5 and len(rings) == len(sizes) - 1
    assert sizes[2:] == ([7] if first == 13 and rings[0] > 0.25 else [])
    assert stages["refit"] == any(r <= 0.25 for r in rings)
    used = stages["refit_size"] if stages["refit"] else first
    assert stages["am"].k.shape == (used, used)
    assert out.k.shape == (13, 13) and out.x.shape == (36, 36) and _on_simplex(out.k, 1e-10)
    ratio = float(((conv_valid(out.x, out.k) - P.y) ** 2).sum()) / (P.sigma**2 * P.y.numel())
    assert ratio == pytest.approx(out.misfit_ratio, rel=1e-9)


@pytest.mark.parametrize(
    ("refit_lengths", "kept", "rejected", "tries"),
    [([5], 5, None, [5]),  # the refit finds the 5-px line again: kept
     ([3], None, "shorter", [5]),  # a shorter kernel: the runs disagree, the first answer stays
     ([7, 5], 7, None, [5, 7]),  # the 5 x 5 refit is cut off (a 7-px line): retried at 7
     ([7, 3], None, "shorter", [5, 7])],  # ... and rejected when the retry comes out shorter
)
def test_refit_support_keeps_only_a_refit_that_agrees(monkeypatch, refit_lengths, kept,
                                                      rejected, tries) -> None:
    from types import SimpleNamespace

    import ncvx_imaging.deblurring.pipeline as pipe_mod
    from ncvx_imaging.deblurring.blind import BlindResult

    def line(length: int, size: int) -> torch.Tensor:
        """A centred horizontal line with faint ends; cut off (flat, ends on the outer ring:
        ring mass 2 / size) when longer than the support."""
        k = torch.zeros(size, size, dtype=D)
        if length > size:
            k[size // 2] = 1.0
        else:
            i = torch.arange(length, dtype=D)
            lo = (size - length) // 2
            k[size // 2, lo:lo + length] = torch.minimum(i + 1, length - i) ** 2
        return k / k.sum()

    y = torch.rand(12, 12, generator=torch.Generator().manual_seed(0), dtype=D)
    lengths = iter(refit_lengths)
    sizes: list[int] = []

    def fake_warm(y_, size, **kw):
        return SimpleNamespace(x=pad_latent(y_, (size, size)), k=line(1, size))

    def fake_am(y_, size, sigma, tau, outer, x0, k0, min_piece=0.0):
        sizes.append(size)
        return BlindResult(x=x0, k=line(next(lengths), size), result=None, seconds=0.0,
                           sigma=sigma, misfit_ratio=1.0)

    monkeypatch.setattr(pipe_mod, "double_dip_naive", fake_warm)
    monkeypatch.setattr(pipe_mod, "blind_deblur_am", fake_am)
    first = BlindResult(x=pad_latent(y, (13, 13)), k=line(5, 13), result=None, seconds=0.0,
                        sigma=0.01, misfit_ratio=1.0)
    info: dict = {}
    size, am = pipe_mod._refit_support(y, 25, 13, first, 0.01, 1.0, 10, 0, 1, None, None, info)
    assert info["support_estimate"] == 5 and sizes == tries
    assert info["refit_extent"] == [pipe_mod.estimate_support(line(n, s))
                                    for n, s in zip(refit_lengths, tries, strict=True)]
    assert info["refit"] == (kept is not None) and info.get("refit_rejected") == rejected
    if kept is None:
        assert size == 13 and am is first
    else:
        assert size == kept and am.k.shape == (kept, kept) and info["first_am"] is first
