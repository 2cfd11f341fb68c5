"""The consensus kernel of several blind estimates (session 9): alignment by integer shifts
inside the support, the medoid reference, the entrywise median, and the pipeline hook that runs
the extra seeds (stand-in stages, instantaneous)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from ncvx_imaging.deblurring import motion_kernel, pad_kernel
from ncvx_imaging.deblurring.blind import BlindResult, pad_latent
from ncvx_imaging.deblurring.consensus import (
    align_kernel,
    consensus_kernel,
    kernel_correlation,
)

D = torch.float64


def _moved(k: torch.Tensor, dr: int, dc: int) -> torch.Tensor:
    return torch.roll(k, (dr, dc), (0, 1))  # used only where nothing wraps around


def test_align_kernel_undoes_a_translation_and_keeps_the_mass_inside() -> None:
    k = pad_kernel(motion_kernel(5.0, 30.0, dtype=D), (11, 11))
    a, b = _moved(k, 2, -1), _moved(k, -3, 1)
    moved, shift = align_kernel(a, b)
    assert shift == (-5, 2) and torch.equal(moved, b)
    assert kernel_correlation(a, b) == pytest.approx(1.0, abs=1e-12)
    # a reference outside the reach of any shift: the kernel moves only as far as its support
    # allows (no entry leaves it) and keeps its mass
    edge = torch.zeros(11, 11, dtype=D)
    edge[0, 0] = 1.0
    far, (dr, dc) = align_kernel(b, edge)
    rows, cols = torch.nonzero(b.sum(1)).flatten(), torch.nonzero(b.sum(0)).flatten()
    assert (dr, dc) == (-int(rows[0]), -int(cols[0]))
    assert float(far.sum()) == pytest.approx(float(b.sum()))
    with pytest.raises(ValueError, match="one shape"):
        align_kernel(k, k[:-1])
    with pytest.raises(ValueError, match="nonzero"):
        align_kernel(torch.zeros(5, 5, dtype=D), torch.ones(5, 5, dtype=D))


def test_consensus_kernel_is_the_median_of_the_aligned_estimates() -> None:
    k = pad_kernel(motion_kernel(5.0, 30.0, dtype=D), (11, 11))
    speck = torch.zeros(11, 11, dtype=D)
    speck[0, 10], speck[10, 0] = 0.05, 0.03  # stray entries of one start only
    noisy = _moved(k, -1, 2) + speck
    ests = [_moved(k, 2, -1), noisy / noisy.sum(), _moved(k, 0, 1)]
    out, ref = consensus_kernel(ests)
    # every pair of clean estimates correlates fully: the medoid is a clean one, and the median
    # removes the specks (present in one of three) and returns the blur in the medoid's position
    assert ref in (0, 2)
    torch.testing.assert_close(out, ests[ref], rtol=0, atol=1e-15)
    assert float(out.min()) >= 0 and float(out.sum()) == pytest.approx(1.0, abs=1e-12)
    one, r1 = consensus_kernel([2 * k])
    assert r1 == 0 and torch.allclose(one, k)
    with pytest.raises(ValueError, match="one shape"):
        consensus_kernel([k, k[:-1, :-1]])
    with pytest.raises(ValueError, match="at least one"):
        consensus_kernel([])


def test_pipeline_consensus_runs_the_extra_seeds_at_the_chosen_support(monkeypatch) -> None:
    import ncvx_imaging.deblurring.pipeline as pipe_mod

    y = torch.rand(12, 12, generator=torch.Generator().manual_seed(0), dtype=D)
    line = pad_kernel(motion_kernel(5.0, 0.0, dtype=D), (9, 9))
    # seed 1 finds the blur 1 px lower, seed 2 a different (diagonal) blur
    kernels = {1: _moved(line, 1, 0), 2: pad_kernel(motion_kernel(5.0, 45.0, dtype=D), (9, 9))}
    calls: list[tuple[int, int]] = []

    def fake_warm(y_, size, iters, seed, **kw):
        calls.append((seed, size))
        return SimpleNamespace(x=pad_latent(y_, (size, size)) + seed, k=kernels[seed])

    def fake_am(y_, size, sigma, tau, outer, x0, k0, min_piece=0.0):
        return BlindResult(x=x0, k=k0, result=None, seconds=0.0, sigma=sigma, misfit_ratio=1.0)

    monkeypatch.setattr(pipe_mod, "double_dip_naive", fake_warm)
    monkeypatch.setattr(pipe_mod, "blind_deblur_am", fake_am)
    first = BlindResult(x=pad_latent(y, (9, 9)), k=line, result=None, seconds=0.0, sigma=0.01,
                        misfit_ratio=1.0)
    info: dict = {}
    am = pipe_mod._kernel_consensus(y, 25, 9, first, 0.01, 1.0, 10, 0, 1, None, None, info, 3,
                                    min_piece=0.05)
    assert calls == [(1, 9), (2, 9)]
    # two of three runs found the horizontal line: the consensus is that line, in the position
    # of the medoid run (one of the two), paired with that run's image
    ref = info["consensus_medoid"]
    assert ref in (0, 1) and len(info["consensus_kernels"]) == 3
    torch.testing.assert_close(am.k, [line, kernels[1]][ref], rtol=0, atol=1e-15)
    assert torch.equal(am.x, first.x if ref == 0 else pad_latent(y, (9, 9)) + 1)
    ratio = float(((pipe_mod.conv_valid(am.x, am.k) - y) ** 2).sum()) / (0.01**2 * y.numel())
    assert am.misfit_ratio == pytest.approx(ratio, rel=1e-12)
