"""Choosing among seeds at the chosen support (session 10, options): by the formulation's
objective (stage 3 for every seed, the answer with the lowest ||grad x||_1 / ||grad x||_2) or by
the whitest alternating-stage residual (stand-in stages, instantaneous)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from ncvx_imaging.deblurring import motion_kernel, pad_kernel
from ncvx_imaging.deblurring.blind import BlindResult, crop_latent, pad_latent
from ncvx_imaging.deblurring.regularizers import l1_over_l2

D = torch.float64


def _result(x: torch.Tensor, k: torch.Tensor) -> BlindResult:
    return BlindResult(x=x, k=k, result=None, seconds=0.0, sigma=0.01, misfit_ratio=1.0)


def test_objective_choice_keeps_the_sparsest_gradient_image(monkeypatch) -> None:
    import ncvx_imaging.deblurring.pipeline as pipe_mod

    k = pad_kernel(motion_kernel(3.0, 0.0, dtype=D), (5, 5))
    sharp = torch.zeros(20, 20, dtype=D)
    sharp[:, 10:] = 1.0  # one step edge: the gradient lives on one column
    smooth = F.avg_pool2d(sharp[None, None], 5, 1, 2, count_include_pad=False)[0, 0]
    noise = torch.rand(20, 20, generator=torch.Generator().manual_seed(0), dtype=D)
    noisy = 0.8 * sharp + 0.1 * noise
    objs = [float(l1_over_l2(crop_latent(x, (5, 5)))) for x in (smooth, sharp, noisy)]
    assert objs[1] < min(objs[0], objs[2])  # the premise: the clean edge is the sparsest
    finals: list[torch.Tensor] = []

    def fake_final(y_, k_, sigma, tau, boundary, x0, maxit, box):
        assert boundary == "valid" and box == "fold" and maxit == 7
        finals.append(x0)
        return SimpleNamespace(x=x0, misfit_ratio=1.0)

    monkeypatch.setattr(pipe_mod, "deconv_tv_discrepancy", fake_final)
    y = torch.zeros(16, 16, dtype=D)
    runs = [_result(smooth, k), _result(sharp, 2 * k), _result(noisy, 3 * k)]
    info: dict = {}
    am, final = pipe_mod._objective_choice(y, runs, 0.01, 1.0, 7, "fold", info)
    assert len(finals) == 3  # stage 3 ran once per seed
    assert info["seed_chosen"] == 1 and am is runs[1] and torch.equal(final.x, sharp)
    assert info["seed_objectives"] == pytest.approx(objs, rel=1e-12)
    assert len(info["consensus_kernels"]) == 3
    # ties go to the start's own seed (the first run)
    info = {}
    am, _ = pipe_mod._objective_choice(y, [_result(sharp, k), _result(sharp.clone(), 2 * k)],
                                       0.01, 1.0, 7, "fold", info)
    assert info["seed_chosen"] == 0 and am.k is k


def test_seed_runs_rerun_stages_one_and_two_at_the_chosen_support(monkeypatch) -> None:
    import ncvx_imaging.deblurring.pipeline as pipe_mod

    y = torch.rand(12, 12, generator=torch.Generator().manual_seed(1), dtype=D)
    calls: list[tuple[int, int]] = []

    def fake_warm(y_, size, iters, seed, **kw):
        calls.append((seed, size))
        k = torch.zeros(size, size, dtype=D)
        k[size // 2, size // 2] = 2.0  # not normalised: the pipeline normalises it
        return SimpleNamespace(x=pad_latent(y_, (size, size)) + seed, k=k)

    def fake_am(y_, size, sigma, tau, outer, x0, k0, min_piece=0.0):
        assert min_piece == 0.05 and float(k0.sum()) == pytest.approx(1.0)
        return _result(x0, k0)

    monkeypatch.setattr(pipe_mod, "double_dip_naive", fake_warm)
    monkeypatch.setattr(pipe_mod, "blind_deblur_am", fake_am)
    first = _result(pad_latent(y, (7, 7)), torch.ones(7, 7, dtype=D) / 49)
    runs = pipe_mod._seed_runs(y, 25, 7, first, 0.01, 1.0, 10, 4, 1, None, None, 3,
                               min_piece=0.05)
    assert calls == [(5, 7), (6, 7)] and runs[0] is first and len(runs) == 3
    assert torch.equal(runs[2].x, (pad_latent(y, (7, 7)) + 6).clamp(0, 1))


def test_whiteness_choice_keeps_the_whitest_residual() -> None:
    from ncvx_imaging.deblurring.operators import conv_valid
    from ncvx_imaging.deblurring.pipeline import _whiteness_choice

    g = torch.Generator().manual_seed(2)
    k = torch.zeros(3, 3, dtype=D)
    k[1, 1] = 1.0  # identity blur: the residual is y - the image under y
    y = torch.rand(24, 24, generator=g, dtype=D)
    white = 0.01 * torch.randn(24, 24, generator=g, dtype=D)
    smooth = F.avg_pool2d(white[None, None], 5, 1, 2)[0, 0]
    runs = [_result(pad_latent(y - r, (3, 3)), k) for r in (smooth, white, 3 * smooth)]
    assert torch.allclose(y - conv_valid(runs[1].x, k), white)
    info: dict = {}
    assert _whiteness_choice(y, runs, info) is runs[1]
    assert info["seed_chosen"] == 1 and len(info["seed_whiteness"]) == 3
    # scale-free: the two smooth residuals score alike; an exact tie goes to the first run
    info = {}
    _whiteness_choice(y, [runs[0], runs[2]], info)
    assert info["seed_whiteness"][0] == pytest.approx(info["seed_whiteness"][1])
    twin = _result(runs[0].x.clone(), k)
    assert _whiteness_choice(y, [runs[0], twin], {}) is runs[0]


def test_seed_choice_is_checked() -> None:
    from ncvx_imaging.deblurring.pipeline import blind_deblur_constrained

    with pytest.raises(ValueError, match="seed_choice"):
        blind_deblur_constrained(torch.zeros(16, 16, dtype=D), 5, 0.01, seed_choice="tv")
