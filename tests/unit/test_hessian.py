"""Unit tests of ``ncvx.hessian``: dense BFGS, L-BFGS and Powell damping."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ncvx.hessian import LBFGS, BFGSStats, DenseBFGS, damp_pair

F64 = torch.float64

seeds = st.integers(0, 2**31 - 1)
dims = st.integers(1, 6)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _spd(n: int, g: torch.Generator, lo: float = 0.5, hi: float = 4.0) -> torch.Tensor:
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=F64))
    eig = lo + (hi - lo) * torch.rand(n, generator=g, dtype=F64)
    return (Q * eig) @ Q.T


def _pairs(n: int, k: int, g: torch.Generator, allow_bad: bool = False):
    """``k`` pairs ``(s, y)`` from a random SPD curvature, ``sᵀy > 0`` unless ``allow_bad``."""
    A = _spd(n, g)
    out = []
    for j in range(k):
        s = torch.randn(n, generator=g, dtype=F64)
        y = A @ s + 0.2 * torch.randn(n, generator=g, dtype=F64)
        cos = float(s @ y) / float(s.norm() * y.norm())
        if cos < 0.1:  # keep sᵀy comfortably positive
            y = y + (0.1 - cos) * float(y.norm() / s.norm()) * s
        if allow_bad and j % 3 == 2:
            y = -y  # sᵀy < 0 (usually): only usable after damping
        out.append((s, y))
    return out


def _assert_spd(H: torch.Tensor) -> None:
    scale = float(H.abs().max())
    assert float((H - H.T).abs().max()) <= 1e-12 * scale
    assert bool(torch.isfinite(H).all())
    assert int(torch.linalg.cholesky_ex(H)[1]) == 0


def _bfgs_formula(H: torch.Tensor, s: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Textbook inverse BFGS update ``(I - ρ s yᵀ) H (I - ρ y sᵀ) + ρ s sᵀ``."""
    rho = 1.0 / float(s @ y)
    V = torch.eye(len(s), dtype=F64) - rho * torch.outer(y, s)
    return V.T @ H @ V + rho * torch.outer(s, s)


# ----------------------------------------------------------------------------- dense BFGS


@given(n=dims, k=st.integers(1, 8), seed=seeds, damping=st.sampled_from([0.0, 1e-4, 0.2]))
def test_dense_update_keeps_spd_and_secant(n, k, seed, damping):
    g = _gen(seed)
    H0 = _spd(n, g)
    bfgs = DenseBFGS(H0, scale_first=bool(seed % 2), damping=damping)
    applied = 0
    for s, y in _pairs(n, k, g):
        H_before = bfgs.H.clone()
        y_used, was_damped = damp_pair(s, y, H_before @ s, damping)
        assume(float(s @ y_used) > 1e-3 * float(s.norm() * y_used.norm()))
        info = bfgs.update(s, y)
        assert info.damped == was_damped
        assert info.applied
        applied += 1
        _assert_spd(bfgs.H)
        # secant equation with the (possibly damped) y
        resid = float((bfgs.H @ y_used - s).norm())
        assert resid <= 1e-9 * (float(bfgs.H.norm() * y_used.norm()) + float(s.norm()))
    assert bfgs.stats.requests == k and bfgs.stats.updates == applied
    assert bfgs.stats.sty_fails == 0


@given(n=dims, seed=seeds)
def test_dense_skips_nonpositive_curvature_and_counts(n, seed):
    g = _gen(seed)
    bfgs = DenseBFGS(_spd(n, g), scale_first=True, damping=0.0)
    H = bfgs.H.clone()
    s = torch.randn(n, generator=g, dtype=F64)
    for y in (-s, torch.zeros(n, dtype=F64), -2.5 * s):
        info = bfgs.update(s, y)
        assert not info.applied and info.reason == "sty_nonpositive"
    assert torch.equal(bfgs.H, H)
    assert bfgs.stats == BFGSStats(requests=3, sty_fails=3)
    assert bfgs.scale_pending  # the first-update scaling is still pending
    info = bfgs.update(s, s)
    assert info.applied and bfgs.stats.updates == 1 and bfgs.stats.requests == 4


def test_dense_nan_pair_is_skipped():
    bfgs = DenseBFGS(torch.eye(2, dtype=F64), damping=0.0)
    info = bfgs.update(
        torch.tensor([1.0, 0.0], dtype=F64), torch.tensor([math.nan, 1.0], dtype=F64)
    )
    assert not info.applied
    assert torch.equal(bfgs.H, torch.eye(2, dtype=F64))


def test_dense_nonfinite_result_is_rejected():
    bfgs = DenseBFGS(torch.eye(2, dtype=F64), scale_first=False, damping=0.0)
    s = torch.tensor([1e200, 0.0], dtype=F64)
    y = torch.tensor([1e-300, 1e200], dtype=F64)  # sᵀy > 0 but the update overflows
    info = bfgs.update(s, y)
    assert not info.applied and info.reason == "nonfinite"
    assert bfgs.stats.infnan_fails == 1
    assert torch.equal(bfgs.H, torch.eye(2, dtype=F64))


@given(n=dims, seed=seeds, delta=st.floats(1e-4, 0.9))
def test_damping_makes_sty_equal_delta_sHs(n, seed, delta):
    g = _gen(seed)
    H = _spd(n, g)
    s = torch.randn(n, generator=g, dtype=F64)
    y = torch.randn(n, generator=g, dtype=F64)
    Hs = H @ s
    sHs, sty = float(s @ Hs), float(s @ y)
    y_d, damped = damp_pair(s, y, Hs, delta)
    if sty < delta * sHs:
        assert damped
        assert float(s @ y_d) == pytest.approx(delta * sHs, rel=1e-9, abs=1e-12)
        # a convex combination of y and Hs
        theta = (1 - delta) * sHs / (sHs - sty)
        torch.testing.assert_close(y_d, theta * y + (1 - theta) * Hs)
    else:
        assert not damped and y_d is y


def test_damping_disabled_and_triggered_in_update():
    s = torch.tensor([1.0, 0.0], dtype=F64)
    y = torch.tensor([-1.0, 0.0], dtype=F64)
    assert damp_pair(s, y, s, 0.0) == (y, False)
    bfgs = DenseBFGS(torch.eye(2, dtype=F64), scale_first=False, damping=0.25)
    info = bfgs.update(s, y)
    assert info.applied and info.damped
    assert bfgs.stats.damped_requests == 1 and bfgs.stats.damped_updates == 1
    # damped y = (0.25, 0): H₊ y_d = s
    torch.testing.assert_close(bfgs.H @ torch.tensor([0.25, 0.0], dtype=F64), s)


@given(n=dims, seed=seeds)
def test_first_update_scaling(n, seed):
    g = _gen(seed)
    H0 = _spd(n, g)
    (s1, y1), (s2, y2) = _pairs(n, 2, g)
    bfgs = DenseBFGS(H0, scale_first=True, damping=0.0)
    bfgs.update(s1, y1)
    gamma = float(s1 @ y1) / float(y1 @ y1)
    expected = _bfgs_formula(gamma * H0, s1, y1)
    torch.testing.assert_close(bfgs.H, expected, rtol=1e-10, atol=1e-12)
    bfgs.update(s2, y2)  # no second rescaling
    torch.testing.assert_close(bfgs.H, _bfgs_formula(expected, s2, y2), rtol=1e-10, atol=1e-12)

    plain = DenseBFGS(H0, scale_first=False, damping=0.0)
    plain.update(s1, y1)
    torch.testing.assert_close(plain.H, _bfgs_formula(H0, s1, y1), rtol=1e-10, atol=1e-12)


def test_dense_state_is_a_copy():
    bfgs = DenseBFGS(torch.eye(3, dtype=F64))
    st_ = bfgs.state()
    st_[0, 0] = 7.0
    assert bfgs.H[0, 0] == 1.0
    H0 = torch.eye(3, dtype=F64)
    DenseBFGS(H0).update(torch.ones(3, dtype=F64), torch.ones(3, dtype=F64))
    assert torch.equal(H0, torch.eye(3, dtype=F64))  # H0 not modified in place


# ----------------------------------------------------------------------------- L-BFGS


@given(
    n=dims,
    k=st.integers(1, 7),
    extra_memory=st.integers(0, 3),
    seed=seeds,
    scaling=st.booleans(),
    damping=st.sampled_from([0.0, 1e-4, 0.3]),
    identity_H0=st.booleans(),
)
def test_lbfgs_with_enough_memory_equals_dense(
    n, k, extra_memory, seed, scaling, damping, identity_H0
):
    g = _gen(seed)
    H0 = torch.eye(n, dtype=F64) if identity_H0 else _spd(n, g)
    dense = DenseBFGS(H0, scale_first=scaling, damping=damping)
    lbfgs = LBFGS(
        n,
        k + extra_memory,
        H0=None if identity_H0 else H0,
        scaling=scaling,
        fixed_scaling=True,
        damping=damping,
    )
    for s, y in _pairs(n, k, g, allow_bad=True):
        a, b = dense.update(s, y), lbfgs.update(s, y)
        assert (a.applied, a.damped) == (b.applied, b.damped)
    assert dense.stats == lbfgs.stats
    torch.testing.assert_close(lbfgs.as_matrix(), dense.H, rtol=1e-8, atol=1e-10)
    v = torch.randn(n, generator=g, dtype=F64)
    torch.testing.assert_close(lbfgs.apply(v), dense.apply(v), rtol=1e-8, atol=1e-10)


@given(n=dims, r=st.integers(1, 5), k=st.integers(0, 6), memory=st.integers(1, 4), seed=seeds)
def test_lbfgs_matrix_apply_equals_columns(n, r, k, memory, seed):
    g = _gen(seed)
    lbfgs = LBFGS(n, memory, H0=_spd(n, g) if seed % 2 else None)
    for s, y in _pairs(n, k, g):
        lbfgs.update(s, y)
    V = torch.randn(n, r, generator=g, dtype=F64)
    V_before = V.clone()
    HV = lbfgs.apply(V)
    assert HV.shape == (n, r)
    cols = torch.stack([lbfgs.apply(V[:, j]) for j in range(r)], dim=1)
    torch.testing.assert_close(HV, cols, rtol=1e-12, atol=1e-12)
    assert torch.equal(V, V_before)  # input not modified
    # and H is symmetric positive definite
    _assert_spd(0.5 * (lbfgs.as_matrix() + lbfgs.as_matrix().T))
    H = lbfgs.as_matrix()
    torch.testing.assert_close(H, H.T, rtol=1e-10, atol=1e-10)


@given(n=dims, k=st.integers(1, 9), memory=st.integers(1, 4), seed=seeds)
def test_lbfgs_memory_truncation_keeps_newest(n, k, memory, seed):
    g = _gen(seed)
    pairs = _pairs(n, k, g)
    lbfgs = LBFGS(n, memory, damping=0.0)
    for s, y in pairs:
        assert lbfgs.update(s, y).applied
    kept = pairs[-memory:]
    assert lbfgs.S.shape == (n, len(kept)) and lbfgs.rho.shape == (len(kept),)
    for j, (s, y) in enumerate(kept):
        assert torch.equal(lbfgs.S[:, j], s) and torch.equal(lbfgs.Y[:, j], y)
        assert float(lbfgs.rho[j]) == pytest.approx(1.0 / float(s @ y), rel=1e-15)
    # gamma fixed at the first update
    s1, y1 = pairs[0]
    assert lbfgs.gamma == pytest.approx(float(s1 @ y1) / float(y1 @ y1), rel=1e-15)


@given(n=dims, k=st.integers(1, 5), seed=seeds)
def test_lbfgs_unfixed_scaling_uses_latest_pair(n, k, seed):
    g = _gen(seed)
    lbfgs = LBFGS(n, 3, fixed_scaling=False, damping=0.0)
    pairs = _pairs(n, k, g)
    for s, y in pairs:
        lbfgs.update(s, y)
    s, y = pairs[-1]
    assert lbfgs.gamma == pytest.approx(float(s @ y) / float(y @ y), rel=1e-15)


def test_lbfgs_skips_and_counts():
    lbfgs = LBFGS(2, 3, damping=0.0)
    s = torch.tensor([1.0, 0.0], dtype=F64)
    assert lbfgs.update(s, -s).reason == "sty_nonpositive"
    assert lbfgs.update(s, torch.tensor([math.inf, 0.0], dtype=F64)).reason == "nonfinite"
    assert lbfgs.update(torch.tensor([math.nan, 0.0], dtype=F64), s).reason == "nonfinite"
    assert lbfgs.S.shape == (2, 0) and lbfgs.gamma == 1.0
    assert lbfgs.stats == BFGSStats(requests=3, sty_fails=1, infnan_fails=2)
    torch.testing.assert_close(lbfgs.as_matrix(), torch.eye(2, dtype=F64))


@given(n=dims, k=st.integers(0, 6), memory=st.integers(1, 4), seed=seeds)
def test_lbfgs_state_round_trip(n, k, memory, seed):
    g = _gen(seed)
    pairs = _pairs(n, k + 3, g)
    a = LBFGS(n, memory)
    for s, y in pairs[:k]:
        a.update(s, y)
    state = a.state()
    kk = a.S.shape[1]
    assert state["S"].shape == (n, kk) and state["Y"].shape == (n, kk)
    assert state["rho"].shape == (1, kk)
    assert isinstance(state["gamma"], float)
    b = LBFGS(n, memory)
    b.load_state(state)
    # the same operator; the pairs may sit in other ring slots, so sums run in another order
    torch.testing.assert_close(b.as_matrix(), a.as_matrix(), rtol=1e-13, atol=1e-14)
    assert b.gamma == a.gamma
    if k > 0:  # gamma was fixed in a; it stays fixed after the warm start
        for s, y in pairs[k:]:
            a.update(s, y)
            b.update(s, y)
        torch.testing.assert_close(b.as_matrix(), a.as_matrix(), rtol=1e-12, atol=1e-12)


def test_lbfgs_state_returns_copies():
    a = LBFGS(2, 2)
    a.update(torch.tensor([1.0, 0.0], dtype=F64), torch.tensor([2.0, 0.5], dtype=F64))
    H = a.as_matrix().clone()
    state = a.state()
    for key in ("S", "Y", "rho"):
        state[key].mul_(3.0)
    torch.testing.assert_close(a.as_matrix(), H, rtol=0, atol=0)


def test_lbfgs_load_state_copies_its_input():
    a = LBFGS(2, 2)
    a.update(torch.tensor([1.0, 0.0], dtype=F64), torch.tensor([2.0, 0.5], dtype=F64))
    state = a.state()
    b = LBFGS(2, 2)
    b.load_state(state)
    H = b.as_matrix().clone()
    state["S"].mul_(3.0)
    torch.testing.assert_close(b.as_matrix(), H, rtol=0, atol=0)


@given(n=dims, k=st.integers(2, 8), memory=st.integers(1, 4), seed=seeds)
def test_lbfgs_load_state_truncates_to_newest(n, k, memory, seed):
    g = _gen(seed)
    long = LBFGS(n, k, damping=0.0)
    for s, y in _pairs(n, k, g):
        long.update(s, y)
    short = LBFGS(n, memory)
    short.load_state(long.state())
    keep = min(k, memory)
    assert torch.equal(short.S, long.S[:, k - keep :])
    assert torch.equal(short.Y, long.Y[:, k - keep :])
    assert torch.equal(short.rho, long.rho[k - keep :])
    assert short.gamma == long.gamma


def test_lbfgs_load_state_rejects_bad_shapes():
    lbfgs = LBFGS(3, 2)
    with pytest.raises(ValueError, match="S and Y"):
        lbfgs.load_state({"S": torch.zeros(2, 1), "Y": torch.zeros(2, 1), "rho": torch.ones(1)})
    with pytest.raises(ValueError, match="S and Y"):
        lbfgs.load_state({"S": torch.zeros(3, 2), "Y": torch.zeros(3, 1), "rho": torch.ones(2)})


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(2, 30),
    memory=st.integers(1, 8),
    pairs=st.integers(1, 12),
    r=st.integers(2, 6),
    seed=st.integers(0, 10_000),
    fixed=st.booleans(),
)
def test_lbfgs_compact_form_equals_the_recursion(n, memory, pairs, r, seed, fixed):
    """The compact form over the ring buffers (vectors and blocks) is the two-loop recursion
    over the kept pairs, oldest first (written out here), and the recursion ``apply`` uses with
    a base operator ``H0``."""
    g = torch.Generator().manual_seed(seed)
    # no damping: the stored pairs are the given ones
    L = LBFGS(n, memory, fixed_scaling=fixed, damping=0.0)
    H0 = torch.eye(n, dtype=torch.float64)
    L_h0 = LBFGS(n, memory, fixed_scaling=fixed, H0=H0, damping=0.0)
    kept = []
    for _ in range(pairs):
        s = torch.randn(n, generator=g, dtype=torch.float64)
        y = s + 0.5 * torch.randn(n, generator=g, dtype=torch.float64)
        if L.update(s, y).applied:  # pairs with sᵀy ≤ 0 are skipped
            kept = [*kept, (s, y)][-memory:]
        L_h0.update(s, y)
    V = torch.randn(n, r, generator=g, dtype=torch.float64)

    def two_loop(v: torch.Tensor) -> torch.Tensor:
        q, alphas = v.clone(), []
        for s, y in reversed(kept):
            a = float(s @ q) / float(s @ y)
            q = q - a * y
            alphas.append(a)
        out = L.gamma * q
        for (s, y), a in zip(kept, reversed(alphas), strict=True):
            out = out + (a - float(y @ out) / float(s @ y)) * s
        return out

    reference = torch.stack([two_loop(V[:, j]) for j in range(r)], dim=1)
    one_by_one = torch.stack([L.apply(V[:, j]) for j in range(r)], dim=1)
    scale = 1.0 + float(reference.abs().max())
    torch.testing.assert_close(one_by_one, reference, rtol=0, atol=1e-10 * scale)
    torch.testing.assert_close(L.apply(V), reference, rtol=0, atol=1e-10 * scale)
    torch.testing.assert_close(L_h0.apply(V), reference, rtol=0, atol=1e-10 * scale)
    # a warm start invalidates the cached compact form
    L2 = LBFGS(n, memory)
    L2.apply(V)
    L2.load_state(L.state())
    torch.testing.assert_close(L2.apply(V), one_by_one, rtol=0, atol=1e-10 * scale)


def test_in_place_and_explicit_dense_updates_agree(monkeypatch):
    from ncvx.hessian import bfgs as bfgs_mod

    g = torch.Generator().manual_seed(4)
    pairs = []
    for _ in range(6):
        s = torch.randn(30, generator=g, dtype=torch.float64)
        pairs.append((s, 2.0 * s + 0.3 * torch.randn(30, generator=g, dtype=torch.float64)))
    out = []
    for threshold in (0, 10**9):
        monkeypatch.setattr(bfgs_mod, "INPLACE_MIN_N", threshold)
        H0 = torch.eye(30, dtype=torch.float64)
        H = DenseBFGS(H0)
        for s, y in pairs:
            H.update(s, y)
        assert torch.equal(H0, torch.eye(30, dtype=torch.float64))  # the caller's H0: untouched
        out.append(H.H)
    torch.testing.assert_close(out[0], out[1], rtol=1e-12, atol=1e-12)


def test_in_place_update_leaves_h_alone_when_rejected(monkeypatch):
    """A pair whose update would overflow is rejected before a large H is touched."""
    from ncvx.hessian import bfgs as bfgs_mod

    monkeypatch.setattr(bfgs_mod, "INPLACE_MIN_N", 0)
    H = DenseBFGS(torch.eye(4, dtype=torch.float64), scale_first=False, damping=0.0)
    before = H.H.clone()
    s = torch.tensor([1e200, 0.0, 0.0, 0.0], dtype=torch.float64)
    y = torch.tensor([1e-150, 0.0, 0.0, 0.0], dtype=torch.float64)  # sᵀy = 1e50 > 0
    info = H.update(s, y)
    assert not info.applied and info.reason == "nonfinite"
    assert torch.equal(H.H, before)
    assert H.state() is not H.H and torch.equal(H.state(), H.H)


@pytest.mark.cuda
def test_lbfgs_ring_buffers_on_cuda():
    """Ring buffers and the compact form on a CUDA device: the CPU's operator."""
    g = torch.Generator().manual_seed(5)
    cpu, gpu = LBFGS(300, 5), LBFGS(300, 5, device="cuda")
    for _ in range(12):  # wraps the ring twice
        s = torch.randn(300, generator=g, dtype=torch.float64)
        y = s + 0.3 * torch.randn(300, generator=g, dtype=torch.float64)
        cpu.update(s, y)
        gpu.update(s.cuda(), y.cuda())
    V = torch.randn(300, 4, generator=g, dtype=torch.float64)
    torch.testing.assert_close(gpu.apply(V.cuda()).cpu(), cpu.apply(V), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(gpu.apply(V[:, 0].cuda()).cpu(), cpu.apply(V[:, 0]))
    torch.testing.assert_close(gpu.state()["S"].cpu(), cpu.state()["S"])
