"""The condition-number cap on H used inside the QPs (``regularize_threshold``)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ncvx import pygranso, pygransoStruct
from ncvx.gram import dense_matrix, low_rank_of
from ncvx.hessian import LBFGS, DenseBFGS
from ncvx.hessian.conditioning import (
    ConditionCap,
    capped_dense,
    capped_low_rank,
    spectral_low_rank,
)

F64 = torch.float64


def _quadratic_pairs(n: int, updates: int, log_cond: float, seed: int):
    """Pairs ``(s, A s)`` of a random SPD ``A`` with condition number ``10**log_cond``."""
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=F64))
    A = (Q * torch.logspace(-log_cond, 0, n, dtype=F64)) @ Q.T
    for _ in range(updates):
        s = torch.randn(n, generator=g, dtype=F64)
        yield s, A @ s


def _trained(kind: str, n: int = 40, updates: int = 12, seed: int = 0) -> DenseBFGS | LBFGS:
    h: DenseBFGS | LBFGS
    h = DenseBFGS(torch.eye(n, dtype=F64)) if kind == "dense" else LBFGS(n, 8)
    for s, y in _quadratic_pairs(n, updates, 6.0, seed):
        h.update(s, y)
    return h


def _cond(H: torch.Tensor) -> float:
    lam = torch.linalg.eigvalsh(H)
    return float(lam.max() / lam.min())


@pytest.mark.parametrize("kind", ["dense", "lbfgs"])
@pytest.mark.parametrize("lower_max", [False, True])
def test_capped_operator_matches_the_dense_eigendecomposition(kind: str, lower_max: bool) -> None:
    h = _trained(kind)
    H = h.as_matrix()
    threshold = _cond(H) / 50  # the cap must bite
    expected = capped_dense(H, threshold, lower_max)
    assert expected is not None
    cap = ConditionCap(h, threshold, lower_max)
    assert cap.active
    got = cap.matrix()
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10 * float(H.abs().max()))
    assert _cond(got) <= threshold * (1 + 1e-8)
    # the QPs see it as βI + W M Wᵀ (structured Gram matrices stay available)
    form = low_rank_of(cap)
    assert form is not None
    beta, W, M = form
    as_form = beta * torch.eye(h.n, dtype=F64) + W @ M @ W.T
    torch.testing.assert_close(as_form, expected, rtol=1e-10, atol=1e-10 * float(H.abs().max()))
    assert dense_matrix(cap) is None  # no dense shortcut past the cap
    # raising the smallest keeps the largest eigenvalue, lowering the largest keeps the smallest
    lam, lam_cap = torch.linalg.eigvalsh(H), torch.linalg.eigvalsh(got)
    kept = (lam.min(), lam_cap.min()) if lower_max else (lam.max(), lam_cap.max())
    assert math.isclose(float(kept[0]), float(kept[1]), rel_tol=1e-9)


@pytest.mark.parametrize("kind", ["dense", "lbfgs"])
def test_a_cap_that_holds_is_the_hessians_own_operator(kind: str) -> None:
    h = _trained(kind)
    cap = ConditionCap(h, 10 * _cond(h.as_matrix()), False)
    assert not cap.active
    assert cap.current() == h.apply
    v = torch.randn(h.n, 3, dtype=F64)
    assert torch.equal(cap(v), h.apply(v))
    if kind == "dense":
        assert dense_matrix(cap) is h.H  # the sparse-product shortcut stays
    form, own = low_rank_of(cap), low_rank_of(h.apply)
    assert form is not None and own is not None
    assert form[0] == own[0] and torch.equal(form[1], own[1]) and torch.equal(form[2], own[2])


def test_the_cap_follows_updates_of_h() -> None:
    h = DenseBFGS(torch.eye(30, dtype=F64))
    cap = ConditionCap(h, 100.0, False)
    assert not cap.active  # H = I
    for s, y in _quadratic_pairs(30, 10, 6.0, 1):
        h.update(s, y)
    assert cap.active and cap.times_capped == 1
    assert _cond(cap.matrix()) <= 100.0 * (1 + 1e-8)
    version = h.version
    cap.matrix()
    assert cap.times_capped == 1 and h.version == version  # cached until H changes


def test_without_a_low_rank_form_the_dense_matrix_is_capped() -> None:
    g = torch.Generator().manual_seed(3)
    B = torch.randn(20, 20, generator=g, dtype=F64)
    H0 = B @ B.T + 1e-3 * torch.eye(20, dtype=F64)  # not a multiple of I: no tracked form
    h = DenseBFGS(H0)
    assert h.low_rank() is None
    cap = ConditionCap(h, 50.0, False)
    expected = capped_dense(H0, 50.0, False)
    assert expected is not None and cap.active
    torch.testing.assert_close(cap.matrix(), expected)
    assert low_rank_of(cap) is None


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(3, 25),
    p=st.integers(1, 30),
    beta=st.floats(1e-3, 1e3),
    log_threshold=st.floats(0.5, 8.0),
    lower_max=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_low_rank_cap_equals_clipping_the_spectrum(
    n: int, p: int, beta: float, log_threshold: float, lower_max: bool, seed: int
) -> None:
    """Any ``βI + W M Wᵀ`` that is positive definite (``p`` may exceed ``n``)."""
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(n, p, generator=g, dtype=F64)
    C = torch.randn(p, p, generator=g, dtype=F64)
    M = (C @ C.T) * torch.logspace(-3, 3, p, dtype=F64)[None, :].sqrt()
    M = 0.5 * (M + M.T) + p * torch.eye(p, dtype=F64)  # PSD-ish, kept PSD below
    M = M @ M.T / float(torch.linalg.matrix_norm(M))
    H = beta * torch.eye(n, dtype=F64) + W @ M @ W.T
    threshold = 10.0**log_threshold
    expected = capped_dense(H, threshold, lower_max)
    got = capped_low_rank((beta, W, M), threshold, lower_max)
    if expected is None:
        assert got is None
        return
    assert got is not None
    b, V, D = got
    as_matrix = b * torch.eye(n, dtype=F64) + V @ D @ V.T
    scale = float(torch.linalg.eigvalsh(H).max())
    torch.testing.assert_close(as_matrix, expected, rtol=0, atol=1e-9 * scale)


def _problem():
    """min ½‖w‖² + Σ t  s.t. 1 − w₀ − w₁ ≤ t, t ≥ 0 (t linear: H grows along it)."""

    def comb(X):
        w, t = X.w, X.t
        ci = pygransoStruct()
        ci.margin = 1 - w.sum() - t
        ci.t = -t
        return 0.5 * (w * w).sum() + 3 * t.sum(), ci, None

    return {"w": [2, 1], "t": [1, 1]}, comb


@pytest.mark.parametrize("limited", [False, True])
def test_a_capped_run_reaches_the_optimum(limited: bool) -> None:
    var, comb = _problem()
    opts = pygransoStruct(print_level=0, regularize_threshold=10.0, opt_tol=1e-8)
    if limited:
        opts.limited_mem_size = 5
    soln = pygranso(var_spec=var, combined_fn=comb, user_opts=opts)
    assert soln.termination_code == 0
    assert abs(float(soln.final.f) - 0.25) < 1e-6  # w = (½, ½), t = 0


def test_a_cap_that_never_bites_leaves_the_run_unchanged() -> None:
    var, comb = _problem()
    runs = []
    for thr in (math.inf, 1e300):
        opts = pygransoStruct(print_level=0, regularize_threshold=thr, opt_tol=1e-8)
        soln = pygranso(var_spec=var, combined_fn=comb, user_opts=opts)
        runs.append((soln.iters, float(soln.final.f), soln.final.x.clone()))
    assert runs[0][:2] == runs[1][:2]
    assert torch.equal(runs[0][2], runs[1][2])


def test_halt_log_fn_receives_the_capped_matrix() -> None:
    var, comb = _problem()
    seen: list[object] = []

    def halt_log(*args):
        seen.append(args[5])
        return False

    opts = pygransoStruct(print_level=0, regularize_threshold=1.0001, halt_log_fn=halt_log)
    pygranso(var_spec=var, combined_fn=comb, user_opts=opts)
    capped = [H for H in seen if H is not None]
    assert capped, "the cap (condition number ≤ 1.0001) must change H after an update"
    for H in capped:
        assert isinstance(H, torch.Tensor) and H.shape == (3, 3)
        assert _cond(H) <= 1.0001 * (1 + 1e-8)


def test_a_form_with_more_columns_than_variables_is_capped_densely() -> None:
    h = _trained("dense", n=10, updates=8)  # 16 tracked columns > 10 variables
    form = h.low_rank()
    assert form is not None and form[1].shape[1] > h.n
    threshold = _cond(h.as_matrix()) / 20
    cap = ConditionCap(h, threshold, False)
    expected = capped_dense(h.as_matrix(), threshold, False)
    assert expected is not None and cap.active
    torch.testing.assert_close(cap.matrix(), expected)


def _trigger_state(user_threshold: float = math.inf):
    import collections
    import types

    from ncvx._solver import DAMPED_WINDOW

    h = _trained("dense")
    opts = types.SimpleNamespace(
        regularize_threshold=user_threshold, regularize_damped_threshold=1e6
    )
    return types.SimpleNamespace(
        opts=opts,
        apply_H_qp=ConditionCap(h, user_threshold, False),
        _damped=collections.deque(maxlen=DAMPED_WINDOW),
        damped_cap_from=None,
        iters=0,
    )


def test_the_automatic_cap_starts_once_updates_are_mostly_damped() -> None:
    from ncvx._solver import BFGSSQP, DAMPED_SHARE, DAMPED_WINDOW
    from ncvx.hessian import UpdateInfo

    state = _trigger_state()
    damped, plain = UpdateInfo(True, True), UpdateInfo(True, False)
    undamped = DAMPED_WINDOW - math.ceil(DAMPED_SHARE * DAMPED_WINDOW)  # still enough damped
    pattern = [plain] * undamped + [damped] * (DAMPED_WINDOW - undamped - 1)
    for info in pattern:
        BFGSSQP._note_update(state, info)  # type: ignore[arg-type]
        state.iters += 1
    assert state.damped_cap_from is None and state.apply_H_qp.threshold == math.inf
    BFGSSQP._note_update(state, UpdateInfo(False, True, "sty_nonpositive"))  # not applied
    assert state.damped_cap_from is None
    BFGSSQP._note_update(state, damped)  # the window is full, the share reached
    assert state.damped_cap_from == DAMPED_WINDOW
    assert state.apply_H_qp.threshold == 1e6
    for _ in range(DAMPED_WINDOW):  # sticky
        BFGSSQP._note_update(state, plain)
    assert state.apply_H_qp.threshold == 1e6


def test_the_automatic_cap_leaves_a_users_cap_alone() -> None:
    from ncvx._solver import BFGSSQP, DAMPED_WINDOW
    from ncvx.hessian import UpdateInfo

    state = _trigger_state(user_threshold=50.0)
    for _ in range(2 * DAMPED_WINDOW):
        BFGSSQP._note_update(state, UpdateInfo(True, True))  # type: ignore[arg-type]
    assert state.damped_cap_from is None and state.apply_H_qp.threshold == 50.0


def test_an_infinite_cap_is_the_hessians_own_operator_and_costs_nothing() -> None:
    h = _trained("dense")
    cap = ConditionCap(h, math.inf, False)
    assert not cap.active and cap.current() == h.apply and cap.times_capped == 0
    assert dense_matrix(cap) is h.H
    cap.set_threshold(_cond(h.as_matrix()) / 10)
    assert cap.active and cap.times_capped == 1


def test_eigenvalues_raised_to_the_floor_leave_the_low_rank_part() -> None:
    h = _trained("dense", n=40, updates=15)  # 30 tracked columns
    form = h.low_rank()
    assert form is not None
    threshold = 2.0  # the floor is half the largest eigenvalue: most are raised to it
    capped = capped_low_rank(form, threshold, False)
    assert capped is not None
    beta, V, D = capped
    floor = float(torch.linalg.eigvalsh(h.as_matrix()).max()) / threshold
    assert math.isclose(beta, floor, rel_tol=1e-9)  # β itself was below the floor
    assert V.shape[1] < form[1].shape[1]  # the raised eigenvalues add nothing to β'I
    assert bool((D.diagonal() > 0).all())


def test_spectral_low_rank_replaces_a_cancelling_form() -> None:
    """Two nearly equal columns with weights ±1e14 represent ``βI + L δδᵀ`` of size ~1: the
    QPs get the same ``H`` with orthonormal columns and the size of ``H``."""
    n = 20
    g = torch.Generator().manual_seed(0)
    u = torch.randn(n, generator=g, dtype=F64)
    W = torch.stack([u, u + 1e-7 * torch.randn(n, generator=g, dtype=F64)], dim=1)
    d = W[:, 1] - W[:, 0]  # exact (Sterbenz)
    L = 1e14
    M = L * torch.tensor([[1.0, -1.0], [-1.0, 1.0]], dtype=F64)
    beta, V, Lam = spectral_low_rank((0.5, W, M))
    H = 0.5 * torch.eye(n, dtype=F64) + L * torch.outer(d, d)
    assert beta == 0.5 and V.shape[1] <= 2
    assert torch.allclose(V.T @ V, torch.eye(V.shape[1], dtype=F64), atol=1e-12)
    spectral = beta * torch.eye(n, dtype=F64) + V @ Lam @ V.T
    assert float((spectral - H).norm() / H.norm()) < 1e-4  # the form's own rounding: 1e14·ε·|u|²
    assert float(((V.abs() @ Lam.abs() @ V.abs().T).diagonal() / H.diagonal()).max()) < 1.0 + 1e-9


def test_spectral_low_rank_clips_a_rounding_negative_eigenvalue() -> None:
    """``H = I - (1 + 1e-13) e₁e₁ᵀ`` (an eigenvalue of -1e-13: rounding) becomes positive
    semidefinite, as the QPs' Gram matrices must be; a sound form is handed on unchanged."""
    n = 5
    W = torch.eye(n, dtype=F64)[:, :1]
    beta, V, Lam = spectral_low_rank((1.0, W, torch.tensor([[-1.0 - 1e-13]], dtype=F64)))
    H = beta * torch.eye(n, dtype=F64) + V @ Lam @ V.T
    assert float(torch.linalg.eigvalsh(H).min()) >= 0.0
    sound = (1.0, W, torch.tensor([[3.0]], dtype=F64))
    assert spectral_low_rank(sound) is sound


@pytest.mark.parametrize("kind", ["dense", "lbfgs"])
def test_the_hessians_hand_the_qps_their_spectral_form_once_per_version(kind: str) -> None:
    h = _trained(kind, n=30, updates=6)
    form = h.spectral_low_rank()
    assert form is h.spectral_low_rank()
    assert low_rank_of(h.apply) is form
    s = torch.randn(30, dtype=F64)
    h.update(s, 2.0 * s)
    assert h.spectral_low_rank() is not form
