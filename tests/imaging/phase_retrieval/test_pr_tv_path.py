"""The lifted TV-discrepancy path (``tv_path``) and its window locator (``energy_window``)."""

import importlib

import pytest
import torch

from ncvx_imaging.phase_retrieval import (
    FarField,
    TVPathResult,
    align_fourier,
    energy_window,
    hio_polish,
    random_start,
    tv_path,
    tv_path_restarts,
)
from ncvx_imaging.phase_retrieval.cdi_baselines import PhasingResult, hio_er
from ncvx_imaging.phase_retrieval.tv_path import (
    distinct_basins,
    grown_window,
    hio_fallback_windows,
)

# the package exports the function ``tv_path``, which shadows the module of that name
tv_path_module = importlib.import_module("ncvx_imaging.phase_retrieval.tv_path")


@pytest.mark.parametrize("cplx", [False, True])
@pytest.mark.parametrize("pos", [(0, 0), (3, 7), (9, 2)])
def test_energy_window_finds_the_block(cplx, pos):
    g = torch.Generator().manual_seed(sum(pos))
    img = 0.01 * torch.rand(16, 16, dtype=torch.float64, generator=g)
    img[pos[0] : pos[0] + 6, pos[1] : pos[1] + 5] += 1.0
    if cplx:
        img = img * torch.exp(1j * torch.rand(16, 16, dtype=torch.float64, generator=g))
    assert energy_window(img, (6, 5)) == pos
    assert energy_window(img, (6, 5), offset=(10, 20)) == (pos[0] + 10, pos[1] + 20)


def test_energy_window_rejects_bad_input():
    with pytest.raises(ValueError, match="does not fit"):
        energy_window(torch.ones(4, 4), (5, 2))
    with pytest.raises(ValueError, match="must be"):
        energy_window(torch.ones(2, 4, 4), (2, 2))


def _object(n: int, real: bool) -> torch.Tensor:
    x = torch.full((n, n), 0.3, dtype=torch.float64)
    x[1:5, 2:4] = 1.0
    x[5:, 4:] = 0.7
    x[2, 5:] = 0.5
    if real:
        return x
    return x * torch.exp(0.5j * torch.linspace(0, 1, n, dtype=torch.float64)[None, :])


def _setup(real: bool):
    n, N, B = 8, 24, 12
    obj = _object(n, real)
    ff = FarField((n, n), (N, N))
    r0 = (N - B) // 2
    loose = torch.zeros(N, N, dtype=torch.bool)
    loose[r0 : r0 + B, r0 : r0 + B] = True
    return obj, ff, ff(obj), (r0, r0, B, B), loose


@pytest.mark.parametrize("real", [True, False])
def test_tv_path_stages_window_and_output(real):
    obj, _, y, box, loose = _setup(real)
    gen = torch.Generator().manual_seed(0)
    start = random_start(loose, y.sqrt(), num=1, real=real, generator=gen)[0]
    res = tv_path(y, box, start, real=real, maxit=15, fit_maxit=15, generator=gen)
    r, c, h, w = res.window
    r0, c0, bh, bw = box
    assert (h, w) == obj.shape  # the autocorrelation gives the object's size
    assert r0 <= r and r + h <= r0 + bh and c0 <= c and c + w <= c0 + bw
    assert res.field.is_complex() != real
    if real:
        assert float(res.field.min()) >= 0
    off = ~FarField((h, w), y.shape, offset=(r, c)).support_mask()
    assert float(res.field.abs()[off].max()) == 0  # nothing outside the tight window
    assert res.loose.is_complex() and float(res.loose.abs()[~loose].max()) == 0
    assert [s[0] for s in res.stages] == ["loose"] * 3 + ["tight"] * 5 + ["fit"]
    assert res.misfit == pytest.approx(res.stages[-1][2])


@pytest.mark.parametrize("real", [True, False])
def test_tv_path_keeps_a_translated_solution(real):
    """From the object at an off-centre place in the loose box, without loose stages, the tight
    window lands on it and the fit keeps it (up to the trivial ambiguities)."""
    obj, ff, y, box, _ = _setup(real)
    start = torch.zeros(y.shape, dtype=obj.dtype)
    start[9:17, 7:15] = obj  # inside the 12x12 box at rows/cols 6..17
    gen = torch.Generator().manual_seed(0)
    res = tv_path(
        y,
        box,
        start,
        real=real,
        loose_deltas=(),
        tight_deltas=(),
        fit_maxit=300,
        nudge=1e-2,
        generator=gen,
    )
    assert res.window == (9, 7, 8, 8)
    err = float(align_fourier(res.field, ff.pad(obj).to(res.field.dtype))[1])
    assert err < 1e-5, err
    assert res.misfit < 1e-10


def test_tv_path_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="one shape"):
        tv_path(torch.ones(8, 8), (0, 0, 4, 4), torch.ones(6, 6), real=True)


@pytest.mark.parametrize("real", [True, False])
def test_tv_path_restarts_tries_lowest_tv_first(real):
    """Without a screen, with an acceptance level every candidate reaches, only the lowest-TV
    loose candidate goes on to the tight stages; with none reachable, all go and the lowest
    misfit is kept."""
    _, _, y, box, loose = _setup(real)
    gen = torch.Generator().manual_seed(1)
    start = random_start(loose, y.sqrt(), num=1, real=real, generator=gen)[0]
    kw = dict(real=real, tries=3, screen=(), maxit=10, fit_maxit=10, hio_fallback=0)
    first = tv_path_restarts(
        y, box, start, accept_misfit=float("inf"), generator=torch.Generator().manual_seed(2), **kw
    )
    regs = [t[0][-1] for t in first.tries]
    assert all(len(t[0]) == 3 for t in first.tries) and all(r > 0 for r in regs)
    assert first.chosen == min(range(3), key=regs.__getitem__)
    assert [t[1] is None for t in first.tries].count(True) == 2
    assert first.tries[first.chosen][1] == pytest.approx(first.misfit)
    every = tv_path_restarts(  # the last loose level only (no earlier exits)
        y,
        box,
        start,
        accept_misfit=0.0,
        exits=(2,),
        generator=torch.Generator().manual_seed(2),
        **kw,
    )
    assert [t[0][-1] for t in every.tries] == pytest.approx(regs)  # same draws, same runs
    mis = [t[1] for t in every.tries]
    assert None not in mis
    assert every.chosen == min(range(3), key=mis.__getitem__)
    assert every.misfit == pytest.approx(min(mis))
    assert every.field.is_complex() != real


def test_tv_path_restarts_screen_keeps_the_lowest_tv():
    """``screen = (3, 1)``: all 5 candidates run the first loose level, the 3 lowest-TV ones the
    second, the lowest of those the third and the tight stages; the runs of the survivors are
    the unscreened runs (same draws)."""
    _, _, y, box, loose = _setup(True)
    start = random_start(loose, y.sqrt(), num=1, real=True, generator=torch.Generator())[0]
    kw = dict(
        real=True, tries=5, maxit=8, fit_maxit=5, accept_misfit=0.0, exits=(2,), hio_fallback=0
    )
    res = tv_path_restarts(
        y, box, start, screen=(3, 1), generator=torch.Generator().manual_seed(3), **kw
    )
    full = tv_path_restarts(
        y, box, start, screen=(), generator=torch.Generator().manual_seed(3), **kw
    )
    levels = [len(t[0]) for t in res.tries]
    assert sorted(levels) == [1, 1, 2, 2, 3]
    first = [t[0][0] for t in res.tries]
    assert first == pytest.approx([t[0][0] for t in full.tries])
    second = sorted(range(5), key=first.__getitem__)[:3]
    assert {k for k in range(5) if levels[k] >= 2} == set(second)
    third = min(second, key=lambda k: res.tries[k][0][1])
    assert levels[third] == 3 and res.chosen == third
    assert res.tries[third][0] == pytest.approx(full.tries[third][0])
    assert [t[1] is None for t in res.tries].count(False) == 1


def test_tv_path_restarts_exits_try_earlier_levels_only_after_failures():
    """Default exits (2, 1, 0): the tight stages run from the last loose level's survivors, then
    (none accepted) from every candidate that ran the levels before (one per basin, at most
    ``exit_tries``), last first; with an accepting level only the first tight path runs."""
    _, _, y, box, loose = _setup(True)
    start = random_start(loose, y.sqrt(), num=1, real=True, generator=torch.Generator())[0]
    kw = dict(real=True, tries=4, screen=(3, 2), maxit=6, fit_maxit=4, hio_fallback=0)
    fails = tv_path_restarts(
        y, box, start, accept_misfit=0.0, generator=torch.Generator().manual_seed(5), **kw
    )
    assert [(lev, k) for lev, k, _ in fails.tight_runs][:2] == [
        (2, k)
        for k in sorted(
            [k for k, t in enumerate(fails.tries) if len(t[0]) == 3],
            key=lambda k: fails.tries[k][0][2],
        )
    ]
    second = {k for k, t in enumerate(fails.tries) if len(t[0]) >= 2}
    assert len(second) == 3
    assert [lev for lev, _, _ in fails.tight_runs] == [2, 2, 1, 1, 1, 0, 0, 0, 0]
    assert [k for lev, k, _ in fails.tight_runs if lev == 1] == sorted(
        second, key=lambda k: fails.tries[k][0][1]
    )
    assert [k for lev, k, _ in fails.tight_runs if lev == 0] == sorted(
        range(4), key=lambda k: fails.tries[k][0][0]
    )
    capped = tv_path_restarts(
        y,
        box,
        start,
        accept_misfit=0.0,
        exit_tries=1,
        generator=torch.Generator().manual_seed(5),
        **kw,
    )
    assert [r[:2] for r in capped.tight_runs] == [r[:2] for r in fails.tight_runs[:3]] + [
        fails.tight_runs[5][:2]
    ]
    best = min(fails.tight_runs, key=lambda r: r[2])
    assert (fails.exit, fails.chosen, fails.misfit) == (best[0], best[1], pytest.approx(best[2]))
    assert [s[0] for s in fails.stages].count("loose") == fails.exit + 1
    only = tv_path_restarts(
        y,
        box,
        start,
        accept_misfit=0.0,
        exits=(2,),
        generator=torch.Generator().manual_seed(5),
        **kw,
    )
    assert [r[:2] for r in only.tight_runs] == [r[:2] for r in fails.tight_runs[:2]]
    assert [r[2] for r in only.tight_runs] == pytest.approx([r[2] for r in fails.tight_runs[:2]])
    first = tv_path_restarts(
        y,
        box,
        start,
        accept_misfit=float("inf"),
        generator=torch.Generator().manual_seed(5),
        **kw,
    )
    assert len(first.tight_runs) == 1 and first.exit == 2


def test_distinct_basins_keeps_one_per_tv_value():
    ids = [4, 1, 7, 2, 9]
    regs = [0.2577, 0.2570, 0.25702, 0.2582, 0.25701]
    assert distinct_basins(ids, regs, 1e-3) == [1, 4, 2]
    assert distinct_basins(ids, regs, 0.0) == [1, 9, 7, 4, 2]
    assert distinct_basins([], [], 1e-3) == []


def test_tv_path_restarts_rejects_bad_arguments():
    with pytest.raises(ValueError, match="tries"):
        tv_path_restarts(torch.ones(8, 8), (0, 0, 4, 4), torch.ones(8, 8), real=True, tries=0)
    with pytest.raises(ValueError, match="screen"):
        tv_path_restarts(torch.ones(8, 8), (0, 0, 4, 4), torch.ones(8, 8), real=True, screen=(2, 0))
    with pytest.raises(ValueError, match="screen"):
        tv_path_restarts(
            torch.ones(8, 8), (0, 0, 4, 4), torch.ones(8, 8), real=True, screen=(2, 2, 2, 2)
        )
    for bad in ((), (3,), (1, 1)):
        with pytest.raises(ValueError, match="exits"):
            tv_path_restarts(torch.ones(8, 8), (0, 0, 4, 4), torch.ones(8, 8), real=True, exits=bad)
    with pytest.raises(ValueError, match="exit_tries"):
        tv_path_restarts(torch.ones(8, 8), (0, 0, 4, 4), torch.ones(8, 8), real=True, exit_tries=0)


@pytest.mark.parametrize("real", [True, False])
def test_hio_polish_phases_on_the_tight_window(real):
    """From a random field on the object's own window, HIO+ER and the lifted fit recover the
    object up to the trivial ambiguities, and the result is marked as HIO's."""
    obj, ff, y, _, _ = _setup(real)
    r, c = ff.offset
    win = FarField((8, 8), y.shape, offset=(r, c)).support_mask()
    gen = torch.Generator().manual_seed(2)
    start = random_start(win, y.sqrt(), num=1, real=real, generator=gen)[0]
    empty = TVPathResult(
        field=start, loose=start.to(torch.complex128), window=(r, c, 8, 8), misfit=1.0
    )
    res = hio_polish(y, empty, real=real, hio_iters=1000, fit_maxit=100, generator=gen)
    assert res.hio and res.window == (r, c, 8, 8)
    assert res.field.is_complex() != real
    err = float(align_fourier(res.field, ff.pad(obj).to(res.field.dtype))[1])
    assert err < 1e-4, err
    assert res.misfit < 1e-8
    assert res.stages[-1][0] == "hio+fit"


def test_hio_polish_keeps_the_lowest_misfit_run(monkeypatch):
    """Of the batched HIO runs the one with the lowest final misfit goes on to the fit: with a
    stub HIO whose third run is the object and the others garbage, the result is the object."""
    obj, ff, y, _, _ = _setup(True)
    r, c = ff.offset
    truth = ff.pad(obj)
    seen = {}

    def stub(mags, sup, x0, **kw):
        seen["n"] = x0.shape[0]
        x = torch.rand(x0.shape, dtype=torch.float64, generator=torch.Generator()) * sup
        x[2] = truth
        hist = torch.full((1, x0.shape[0]), 0.5, dtype=torch.float64)
        hist[0, 2] = 0.0
        return PhasingResult(x=x, support=sup.expand(x.shape), history=hist)

    monkeypatch.setattr(tv_path_module, "hio_er", stub)
    start = torch.zeros(y.shape, dtype=torch.float64)
    bad = TVPathResult(field=start, loose=start.to(torch.complex128), window=(r, c, 8, 8), misfit=1)
    res = hio_polish(y, bad, real=True, starts=4, fit_maxit=20, generator=torch.Generator())
    assert seen["n"] == 4  # the result's field and 3 random fields
    assert float(align_fourier(res.field, truth)[1]) < 1e-6 and res.misfit < 1e-10
    with pytest.raises(ValueError, match="starts"):
        hio_polish(y, bad, real=True, starts=0)


def test_hio_polish_rounds_go_on_until_accepted(monkeypatch):
    """``rounds``: HIO goes on from the runs' current fields while the fitted answer is above
    ``accept_misfit``; a stub HIO that finds the object only in its second call shows it, and
    no third call is made once the answer is accepted."""
    obj, ff, y, _, _ = _setup(True)
    r, c = ff.offset
    truth = ff.pad(obj)
    calls = []

    def stub(mags, sup, x0, **kw):
        calls.append(x0.clone())
        g = torch.Generator().manual_seed(len(calls))
        x = (torch.rand(x0.shape, dtype=torch.float64, generator=g) + 1) * sup
        if len(calls) == 2:
            x[1] = truth
        hist = torch.full((1, x0.shape[0]), 0.5, dtype=torch.float64)
        hist[0, 1] = 0.1
        return PhasingResult(x=x, support=sup.expand(x.shape), history=hist)

    monkeypatch.setattr(tv_path_module, "hio_er", stub)
    start = torch.zeros(y.shape, dtype=torch.float64)
    bad = TVPathResult(field=start, loose=start.to(torch.complex128), window=(r, c, 8, 8), misfit=1)
    kw = dict(real=True, starts=3, fit_maxit=20, accept_misfit=1e-8)
    one = hio_polish(y, bad, rounds=1, generator=torch.Generator(), **kw)
    assert len(calls) == 1 and one.misfit > 1e-8
    calls.clear()
    res = hio_polish(y, bad, rounds=4, generator=torch.Generator(), **kw)
    assert len(calls) == 2  # accepted after the second round
    assert not torch.equal(calls[1][0], calls[0][0])  # round 2 starts from round 1's fields
    assert float(align_fourier(res.field, truth)[1]) < 1e-6 and res.misfit < 1e-10
    assert [st[0] for st in res.stages] == ["hio+fit"] * 2


def test_grown_window_stays_in_the_box():
    box = (10, 20, 30, 30)
    assert grown_window((15, 25, 20, 16), 0, box) == (15, 25, 20, 16)
    assert grown_window((15, 25, 20, 16), 4, box) == (13, 23, 24, 20)
    assert grown_window((10, 20, 20, 16), 4, box) == (10, 20, 24, 20)  # pushed inside
    assert grown_window((19, 33, 20, 16), 6, box) == (14, 28, 26, 22)  # shifted back in
    assert grown_window((12, 22, 28, 28), 8, box) == box  # clipped to the box


def test_hio_fallback_windows_grows_a_too_small_window():
    """On a window one pixel short of the object, HIO cannot fit the data; the fallback then
    retries on grown windows and phases on the first that holds the object."""
    obj, ff, y, box, _ = _setup(True)
    r, c = ff.offset
    small = torch.zeros(y.shape, dtype=torch.float64)
    res = TVPathResult(field=small, loose=small.to(torch.complex128), window=(r, c, 7, 8), misfit=1)
    kw = dict(real=True, hio_iters=300, starts=4, fit_maxit=50, generator=torch.Generator())
    out = hio_fallback_windows(y, res, box, grow=(0, 2, 4), **kw)
    assert out.window[2:] == (9, 10)  # grown by 2: (7 + 2, 8 + 2)
    err = float(align_fourier(out.field, ff.pad(obj))[1])
    assert err < 1e-4 and out.misfit < 1e-8
    only = hio_fallback_windows(y, res, box, grow=(0,), **{**kw, "generator": torch.Generator()})
    assert only.window == (r, c, 7, 8) and only.misfit > 1e-4
    with pytest.raises(ValueError, match="grow"):
        hio_fallback_windows(y, res, box, grow=(), **kw)


def test_hio_er_rejects_zero_iterations():
    m = torch.ones(8, 8, dtype=torch.float64)
    with pytest.raises(ValueError, match="at least one iteration"):
        hio_er(m, m > 0, m[None], hio_iters=0, er_iters=0)


def test_tv_path_restarts_hio_fallback_only_when_the_path_fails():
    """The fallback (on by default) runs only when no candidate is accepted, and its answer is
    kept only when its data misfit is lower; the ncvx-alone answer is then kept in ``path``."""
    _, _, y, box, loose = _setup(True)
    start = random_start(loose, y.sqrt(), num=1, real=True, generator=torch.Generator())[0]
    kw = dict(real=True, tries=2, screen=(), maxit=5, fit_maxit=5, hio_fallback=50, hio_starts=2)
    never = tv_path_restarts(y, box, start, accept_misfit=float("inf"), **kw)
    assert not never.hio and never.path is None  # the first candidate is accepted
    fails = tv_path_restarts(  # same draws: the fallback draws after the path
        y, box, start, accept_misfit=0.0, generator=torch.Generator().manual_seed(4), **kw
    )
    plain = tv_path_restarts(
        y,
        box,
        start,
        accept_misfit=0.0,
        generator=torch.Generator().manual_seed(4),
        **{**kw, "hio_fallback": 0},
    )
    assert not plain.hio and plain.path is None
    assert fails.misfit <= plain.misfit
    assert fails.hio == (fails.misfit < plain.misfit)
    assert fails.hio  # on this small object HIO phases where 5 iterations of the path do not
    assert fails.path is not None and fails.path.misfit == plain.misfit
    assert torch.allclose(fails.path.field, plain.field)
    assert len(fails.tries) == 2
    with pytest.raises(ValueError, match="hio_starts"):
        tv_path_restarts(y, box, start, real=True, hio_starts=0)
    with pytest.raises(ValueError, match="hio_grow"):
        tv_path_restarts(y, box, start, real=True, hio_grow=(0, -1))
