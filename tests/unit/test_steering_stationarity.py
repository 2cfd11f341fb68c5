"""Unit tests of ``ncvx.steering`` (direction and mu update) and ``ncvx.stationarity``."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ncvx.errors import QPBackendError
from ncvx.penalty import PenaltyPoint
from ncvx.problem.binding import DictBinding
from ncvx.problem.evaluator import Evaluator
from ncvx.problem.variables import VariableLayout
from ncvx.qp import QPSolver
from ncvx.stationarity import (
    TERMINATION_LOOSE_TOL,
    measure_lower_bound,
    smooth_shortcut,
    stationarity,
)
from ncvx.steering import SteeringSettings, steer

F64 = torch.float64
QP = QPSolver("auto")
SQRT_EPS = math.sqrt(np.finfo(np.float64).eps)


def _spd(n: int, g: torch.Generator) -> torch.Tensor:
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=F64))
    return (Q * (0.3 + 3 * torch.rand(n, generator=g, dtype=F64))) @ Q.T


def _point(fn, x: torch.Tensor, mu: float = 1.0) -> PenaltyPoint:
    layout = VariableLayout.from_shapes({"x": [x.numel()]})
    ev = Evaluator(
        lambda d: fn(d["x"]),
        DictBinding(layout, lambda d: d),
        dtype=F64,
        device=torch.device("cpu"),
    ).evaluate(x, first=True)
    ev.ensure_gradients()
    return PenaltyPoint.create(ev, mu, 1e-6, 1e-6)


def _random_problem(seed: int, n: int, m_i: int, m_e: int):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(m_i, n, generator=g, dtype=F64)
    B = torch.randn(m_e, n, generator=g, dtype=F64)
    w = torch.randn(n, generator=g, dtype=F64)
    b_i = torch.randn(m_i, generator=g, dtype=F64)
    b_e = torch.randn(m_e, generator=g, dtype=F64)

    def fn(x):
        f = w @ x + 0.5 * (x**2).sum() + torch.sin(x).sum()
        ci = A @ x + 0.1 * (x**2).sum() - b_i
        ce = B @ x + 0.1 * torch.cos(x).sum() - b_e
        return f, (ci if m_i else None), (ce if m_e else None)

    return fn, g


def _penalty_grad_at_signs(point: PenaltyPoint, grads: torch.Tensor) -> torch.Tensor:
    """μ∇f + Σ_{ci>=0} ∇ci + Σ sign(ce) ∇ce, with this sample's gradient rows ``(1+m, n)``."""
    ev = point.ev
    m_i = ev.ci.numel()
    w_i = (ev.ci >= 0).to(F64)
    w_e = torch.where(ev.ce >= 0, 1.0, -1.0).to(F64)
    return point.mu * grads[0] + w_i @ grads[1 : 1 + m_i] + w_e @ grads[1 + m_i :]


def _samples_of(point: PenaltyPoint) -> torch.Tensor:
    ev = point.ev
    return torch.cat([ev.grad_f[None], ev.J_i, ev.J_e])[None]


# ---------------------------------------------------------------------------- stationarity


@given(n=st.integers(1, 5), seed=st.integers(0, 10_000))
def test_unconstrained_single_sample_is_length_of_qn_step(n, seed):
    fn, g = _random_problem(seed, n, 0, 0)
    point = _point(fn, torch.randn(n, generator=g, dtype=F64))
    H = _spd(n, g)
    res = stationarity(point, _samples_of(point), lambda v: H @ v, QP)
    expected = H @ point.ev.grad_f
    assert res.n_samples == 1 and res.qp_form == 1
    assert res.value == pytest.approx(float(expected.norm()), rel=1e-7)
    torch.testing.assert_close(res.d, -expected, rtol=1e-7, atol=1e-9)
    inf_norm = stationarity(point, _samples_of(point), lambda v: H @ v, QP, l2=False)
    assert inf_norm.value == pytest.approx(float(expected.abs().max()), rel=1e-7)


@given(n=st.integers(1, 5), seed=st.integers(0, 10_000), identity=st.booleans())
def test_opposite_gradients_give_zero(n, seed, identity):
    g = torch.Generator().manual_seed(seed)
    point = _point(lambda x: ((x**2).sum(), None, None), torch.randn(n, generator=g, dtype=F64))
    grad = point.ev.grad_f
    samples = torch.stack([grad, -3.0 * grad])[:, None, :]  # 0 is in their convex hull
    H = torch.eye(n, dtype=F64) if identity else _spd(n, g)
    res = stationarity(point, samples, lambda v: H @ v, QP)
    assert res.n_samples == 2
    assert res.value <= 1e-7 * float(grad.norm())


@given(
    n=st.integers(1, 4),
    l=st.integers(1, 5),
    seed=st.integers(0, 10_000),
    identity=st.booleans(),
)
def test_unconstrained_value_bounded_by_each_sample(n, l, seed, identity):
    g = torch.Generator().manual_seed(seed)
    fn, _ = _random_problem(seed, n, 0, 0)
    point = _point(fn, torch.randn(n, generator=g, dtype=F64))
    grads = torch.randn(l, n, generator=g, dtype=F64)
    grads[0] = point.ev.grad_f
    H = torch.eye(n, dtype=F64) if identity else _spd(n, g)
    Hinv = torch.linalg.inv(H)
    res = stationarity(point, grads[:, None, :], lambda v: H @ v, QP)
    d = res.d
    for gk in grads:
        if identity:  # ‖d‖ ≤ ‖H g_k‖ = ‖g_k‖
            assert res.value <= float(gk.norm()) * (1 + 1e-6) + 1e-9
        # in general the H⁻¹-norm of d is at most the H-norm of every sampled gradient
        assert float(d @ Hinv @ d) <= float(gk @ H @ gk) * (1 + 1e-6) + 1e-9


@given(
    n=st.integers(1, 4),
    m_i=st.integers(0, 3),
    m_e=st.integers(0, 2),
    seed=st.integers(0, 10_000),
    mu=st.floats(0.05, 2.0),
    identity=st.booleans(),
)
def test_constrained_single_sample_bounded_by_penalty_gradient(n, m_i, m_e, seed, mu, identity):
    fn, g = _random_problem(seed, n, m_i, m_e)
    point = _point(fn, torch.randn(n, generator=g, dtype=F64), mu)
    H = torch.eye(n, dtype=F64) if identity else _spd(n, g)
    res = stationarity(point, _samples_of(point), lambda v: H @ v, QP)
    p = point.grad_phi
    torch.testing.assert_close(p, _penalty_grad_at_signs(point, _samples_of(point)[0]))
    if identity:
        assert res.value <= float(p.norm()) * (1 + 1e-6) + 1e-9
    d = res.d
    assert float(d @ torch.linalg.solve(H, d)) <= float(p @ H @ p) * (1 + 1e-6) + 1e-9


def test_mu_zero_feasible_inactive_point_is_stationary():
    def fn(x):
        return (x**2).sum(), (x - 5.0), None  # strictly satisfied inequalities

    point = _point(fn, torch.tensor([1.0, 2.0], dtype=F64), mu=0.0)
    res = stationarity(point, _samples_of(point), lambda v: v, QP)
    assert res.value <= 1e-9


class _FailingQP:
    """Raises ``QPBackendError`` on the first ``fail`` calls, then delegates."""

    def __init__(self, fail: int) -> None:
        self.fail = fail
        self.calls = 0

    def solve(self, problem, x0=None, **kwargs):
        self.calls += 1
        if self.calls <= self.fail:
            raise QPBackendError("forced failure")
        return QP.solve(problem)


class _LooseQP:
    """Answers QPs asked with a loose tolerance of 1e-5 by a feasible point off the optimum
    (reported with a residual of 5e-6); asked at its own tolerance, it solves them."""

    loose_tol = 1e-6

    def __init__(self) -> None:
        self.asked: list[float | None] = []

    def solve(self, problem, x0=None, *, key=None, loose_tol=None):
        self.asked.append(loose_tol)
        exact = QP.solve(problem)
        if loose_tol is None or loose_tol <= self.loose_tol:
            return exact
        x = 0.5 * exact.x + 0.5 * np.clip(0.0, problem.lb, problem.ub)  # in the box, not optimal
        if problem.A is not None:  # back onto the equality row through the objective weights
            a = problem.A[0]
            x = x + a * (float(problem.b[0]) - float(a @ x)) / float(a @ a)
        return dataclasses.replace(exact, x=x, kkt=5e-6, status="inaccurate")


def test_a_loose_termination_answer_does_not_certify():
    """Answers accepted at ``TERMINATION_LOOSE_TOL`` set the measure unless they would stop the
    run (``decide_below``): then the QP is solved again at the solver's own tolerance."""
    point = _point(lambda x: ((x**2).sum(), None, None), torch.tensor([1.0, -2.0], dtype=F64))
    H = torch.eye(2, dtype=F64)
    grad = point.ev.grad_f
    samples = torch.stack([grad, -0.5 * grad, 0.8 * grad])[:, None, :]  # 0 in their hull
    exact = stationarity(point, samples, lambda v: H @ v, QP)
    assert exact.value < 1e-10
    far = _LooseQP()
    loose = stationarity(point, samples, lambda v: H @ v, far)
    assert far.asked == [TERMINATION_LOOSE_TOL] and loose.value > 1e-3  # the loose answer
    near = _LooseQP()
    res = stationarity(point, samples, lambda v: H @ v, near, decide_below=1.0)
    assert near.asked == [TERMINATION_LOOSE_TOL, None]
    assert res.value == pytest.approx(exact.value, abs=1e-12)
    not_decisive = _LooseQP()
    stationarity(point, samples, lambda v: H @ v, not_decisive, decide_below=1e-6)
    assert not_decisive.asked == [TERMINATION_LOOSE_TOL]


def test_stationarity_qp_fallbacks():
    point = _point(lambda x: ((x**2).sum(), None, None), torch.tensor([1.0, -2.0], dtype=F64))
    H = 4.0 * torch.eye(2, dtype=F64)
    grad = point.ev.grad_f
    # two samples g and 2g (one alone needs no QP): the shortest combination is g itself
    samples = torch.stack([grad, 2.0 * grad])[:, None, :]
    ok = stationarity(point, samples, lambda v: H @ v, _FailingQP(0))
    assert ok.qp_form == 1 and ok.value == pytest.approx(4 * math.sqrt(20), rel=1e-7)
    with_identity = stationarity(point, samples, lambda v: H @ v, _FailingQP(1))
    assert with_identity.qp_form == 2
    assert with_identity.value == pytest.approx(math.sqrt(20), rel=1e-7)
    # every QP fails: sample 0's value needs none (d = -H∇f), so it is the measure
    failed = stationarity(point, samples, lambda v: H @ v, _FailingQP(2))
    assert failed.qp_form == 1 and failed.value == pytest.approx(4 * math.sqrt(20), rel=1e-12)
    # with a constraint (and no steering QP shared) nothing is left: inf
    cpoint = _point(
        lambda x: ((x**2).sum(), x.sum(0, keepdim=True) - 5.0, None),
        torch.tensor([1.0, -2.0], dtype=F64),
    )
    rows = torch.cat([cpoint.ev.grad_f[None], cpoint.ev.J_i])
    csamples = torch.stack([rows, 2.0 * rows])
    failed = stationarity(cpoint, csamples, lambda v: H @ v, _FailingQP(2))
    assert failed.qp_form == -1 and math.isinf(failed.value) and failed.d is None


def test_smooth_shortcut():
    point = _point(lambda x: ((x**2).sum(), None, None), torch.tensor([3e-9, -4e-9], dtype=F64))
    res = smooth_shortcut(point, 1e-8)
    assert res is not None and res.qp_form == 0 and res.n_samples == 1
    assert res.value == pytest.approx(1e-8, rel=1e-9)
    assert smooth_shortcut(point, 9e-9) is None


# ---------------------------------------------------------------------------- steering


def _predicted(point: PenaltyPoint, d: torch.Tensor, l1: bool = True) -> float:
    ev = point.ev
    lin_i = ev.ci + ev.J_i @ d
    lin_e = ev.ce + ev.J_e @ d
    if l1:
        return point.viol.tv_l1 - float(lin_i.clamp(min=0).sum()) - float(lin_e.abs().sum())
    vi = max(float(lin_i.max()), 0.0) if lin_i.numel() else 0.0
    ve = float(lin_e.abs().max()) if lin_e.numel() else 0.0
    return point.viol.tv - vi - ve


def _primal(point: PenaltyPoint, Hinv: torch.Tensor, d: torch.Tensor) -> float:
    """μ gᵀd + ½ dᵀH⁻¹d + Σ max(ci + J_i d, 0) + Σ |ce + J_e d| (the model steering minimizes)."""
    ev = point.ev
    return (
        point.mu * float(ev.grad_f @ d)
        + 0.5 * float(d @ Hinv @ d)
        + float((ev.ci + ev.J_i @ d).clamp(min=0).sum())
        + float((ev.ce + ev.J_e @ d).abs().sum())
    )


@settings(max_examples=30)
@given(
    n=st.integers(1, 4),
    m_i=st.integers(0, 3),
    m_e=st.integers(0, 2),
    seed=st.integers(0, 10_000),
    mu=st.floats(0.1, 100.0),
    identity=st.booleans(),
    l1=st.booleans(),
    maxit=st.integers(0, 10),
)
def test_steering_test_holds_or_mu_exhausted(n, m_i, m_e, seed, mu, identity, l1, maxit):
    assume(m_i + m_e > 0)
    fn, g = _random_problem(seed, n, m_i, m_e)
    point = _point(fn, 2 * torch.randn(n, generator=g, dtype=F64), mu)
    H = torch.eye(n, dtype=F64) if identity else _spd(n, g)
    settings = SteeringSettings(l1_model=l1, maxit=maxit, ineq_margin=math.inf)
    res = steer(point, lambda v: H @ v, QP, settings)

    # mu = mu0 * c_mu**j for some j in [0, maxit]
    j = round(math.log(res.mu / mu) / math.log(settings.c_mu)) if res.mu != mu else 0
    assert 0 <= j <= maxit
    assert res.mu == pytest.approx(mu * settings.c_mu**j, rel=1e-12)
    assert res.n_qps == (1 if j == 0 and res.n_qps == 1 else 2 + j)

    # the direction minimizes the linearized penalty model with the chosen mu
    chosen = point.with_mu(res.mu)
    Hinv = torch.linalg.inv(H)
    best = _primal(chosen, Hinv, res.d)
    for _ in range(8):
        pert = res.d + 1e-3 * torch.randn(n, generator=g, dtype=F64) * (1 + float(res.d.norm()))
        assert best <= _primal(chosen, Hinv, pert) + 1e-7 * (1 + abs(best))

    # the steering test (predicted violation reduction vs the mu = 0 direction)
    v = point.viol.tv_l1 if l1 else point.viol.tv
    tau = SQRT_EPS * max(v, 1.0)
    ref_settings = SteeringSettings(l1_model=l1, maxit=0, ineq_margin=math.inf)
    ref = steer(point.with_mu(0.0), lambda v_: H @ v_, QP, ref_settings)
    assert ref.mu == 0.0
    delta, delta_ref = _predicted(point, res.d, l1), _predicted(point, ref.d, l1)
    slack = 1e-6 * (1 + v)  # QP accuracy
    if l1:  # d(0) minimizes the l1 model, so it never predicts more l1 violation than d = 0
        assert delta_ref >= -slack
    passed = delta >= settings.c_viol * delta_ref - tau - slack
    assert passed or j == maxit


def test_no_steering_with_inactive_inequalities_and_margin():
    def fn(x):
        return (x**2).sum() - 2 * x[0], torch.stack([x[0] - 1.5, x[1] - 3.0]), None

    point = _point(fn, torch.tensor([0.0, 0.0], dtype=F64), mu=1.0)
    assert point.viol.tv == 0.0
    res = steer(point, lambda v: v, QP, SteeringSettings())
    assert res.mu == 1.0 and res.n_qps == 1
    # the QN step d = (2, 0) would cross x0 <= 1.5; the l1 model's minimizer stops at the kink
    torch.testing.assert_close(res.d, torch.tensor([1.5, 0.0], dtype=F64), rtol=1e-6, atol=1e-8)


@given(seed=st.integers(0, 10_000), mu=st.floats(0.01, 10.0))
def test_mu_unchanged_far_inside_inequalities(seed, mu):
    fn, g = _random_problem(seed, 3, 3, 0)
    point = _point(fn, 0.1 * torch.randn(3, generator=g, dtype=F64), mu)
    assume(bool((point.ev.ci < -1e-6).all()))
    res = steer(point, lambda v: v, QP, SteeringSettings())
    assert res.mu == mu and res.n_qps == 1


@pytest.mark.parametrize("slope, j", [(2.0, 8), (100.0, 10)])
def test_steering_reduces_mu_when_objective_opposes_feasibility(slope, j):
    """f = -slope·x pushes x up; the equality x = 0 is violated at x = 1 (H = I).

    d(mu) = slope·mu - 1 and the predicted reduction is 1 - |slope·mu|, the reference
    (mu = 0) reduction is 1: mu must drop to <= 0.9/slope. With slope 2 that takes 8 cuts;
    with slope 100 the 10 allowed cuts are not enough and the last mu is returned.
    """

    def fn(x):
        return -slope * x.sum(), None, x.reshape(1)

    point = _point(fn, torch.tensor([1.0], dtype=F64), mu=1.0)
    res = steer(point, lambda v: v, QP, SteeringSettings())
    assert res.mu == pytest.approx(0.9**j, rel=1e-12)
    assert res.n_qps == 2 + j
    assert float(res.d[0]) == pytest.approx(slope * 0.9**j - 1.0, rel=1e-6)
    assert (_predicted(point, res.d) >= 0.1 - 1e-8) == (j < 10)


def _full_termination_qp(point: PenaltyPoint, samples: torch.Tensor, H: torch.Tensor) -> float:
    """The termination QP written out in full (one column per sample and piece), as a reference
    for the merged / screened form of :func:`stationarity`."""
    from ncvx.steering import make_qp

    ev = point.ev
    m_i, m_e = ev.ci.numel(), ev.ce.numel()
    l, _, n = samples.shape
    Gt = torch.cat(
        [
            samples[:, 1 + m_i :, :].reshape(-1, n),
            samples[:, 0, :],
            samples[:, 1 : 1 + m_i, :].reshape(-1, n),
        ]
    )
    b = -np.concatenate(
        [np.tile(ev.ce.numpy(), l), np.full(l, float(ev.f)), np.tile(ev.ci.numpy(), l)]
    )
    k = Gt.shape[0]
    lb, ub = np.zeros(k), np.ones(k)
    lb[: l * m_e] = -1.0
    ub[l * m_e : l * m_e + l] = point.mu
    A = np.zeros((1, k))
    A[0, l * m_e : l * m_e + l] = 1.0
    gram = (Gt @ H @ Gt.T).numpy()
    # the full QP has duplicated columns (degenerate): the active-set backend solves it exactly
    sol = QPSolver("daqp").solve(
        make_qp(P=0.5 * (gram + gram.T), q=b, lb=lb, ub=ub, A=A, b=np.array([point.mu]))
    )
    return float(torch.linalg.vector_norm(H @ Gt.T @ torch.as_tensor(sol.x)))


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(2, 5),
    l=st.integers(1, 6),
    seed=st.integers(0, 10_000),
    mu=st.floats(0.05, 2.0),
    shift=st.floats(-3.0, 0.5),
)
def test_merged_and_screened_qp_equals_the_full_qp(n, l, seed, mu, shift):
    """Linear constraints (identical rows in every sample), nonlinear ones, and inequalities
    far from active: the reduced QP has the value of the full one."""
    g = torch.Generator().manual_seed(seed)
    A_lin = torch.randn(3, n, generator=g, dtype=F64)
    B_lin = torch.randn(1, n, generator=g, dtype=F64)
    c0 = torch.randn(3, generator=g, dtype=F64)

    def fn(x):
        f = (x**2).sum() + torch.sin(3 * x).sum()
        ci = torch.cat([A_lin @ x + c0 + shift, (x**2).sum(0, keepdim=True) - 1.0 + shift])
        ce = torch.cat([B_lin @ x, x[:1] * x[1:2] - 0.2])
        return f, ci, ce

    x = 0.5 * torch.randn(n, generator=g, dtype=F64)
    point = _point(fn, x, mu)
    rows = [_samples_of(point)[0]]
    for _ in range(l - 1):  # nearby samples: linear rows come out identical, the rest differ
        other = _point(fn, x + 1e-2 * torch.randn(n, generator=g, dtype=F64), mu)
        rows.append(_samples_of(other)[0])
    samples = torch.stack(rows)
    H = _spd(n, g)
    # both forms by the exact active-set backend: this checks the reduction, not PIQP's digits
    res = stationarity(point, samples, lambda v: H @ v, QPSolver("daqp"))
    full = _full_termination_qp(point, samples, H)
    assert res.qp_form == 1
    assert res.value == pytest.approx(full, rel=1e-5, abs=1e-8)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(2, 6),
    m_i=st.integers(1, 12),
    seed=st.integers(0, 10_000),
    mu=st.floats(0.1, 10.0),
    spread=st.floats(0.0, 5.0),
)
def test_steering_working_set_gives_the_full_qp_direction(n, m_i, seed, mu, spread):
    """Inequalities far from active start outside the steering QP's working set; the direction
    must still minimise the full model (every constraint's linearisation accounted for)."""
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(m_i, n, generator=g, dtype=F64)
    offset = -spread * torch.rand(m_i, generator=g, dtype=F64)  # many strongly inactive
    w = torch.randn(n, generator=g, dtype=F64)

    def fn(x):
        return 5 * w @ x + 0.5 * (x**2).sum(), A @ x + offset, None

    point = _point(fn, 0.1 * torch.randn(n, generator=g, dtype=F64), mu)
    H = _spd(n, g)
    res = steer(point, lambda v: H @ v, QP, SteeringSettings(maxit=0, ineq_margin=math.inf))
    at = point if res.mu == point.mu else point.with_mu(res.mu)
    Hinv = torch.linalg.inv(H)
    model = _primal(at, Hinv, res.d)
    # the exact minimiser of the (convex, piecewise-quadratic) model, by the full dual QP
    from ncvx.steering import make_qp

    C, c = point.ev.J_i, point.ev.ci
    gram = (C @ H @ C.T).numpy()
    q = (res.mu * C @ H @ point.ev.grad_f - c).numpy()
    y = QP.solve(
        make_qp(P=0.5 * (gram + gram.T), q=q, lb=np.zeros(m_i), ub=np.ones(m_i))
    ).x
    d_full = -res.mu * H @ point.ev.grad_f - H @ C.T @ torch.as_tensor(y)
    assert model <= _primal(at, Hinv, d_full) + 1e-8 * (1 + abs(model))
    torch.testing.assert_close(res.d, d_full, rtol=1e-5, atol=1e-7)


def test_unconstrained_single_sample_needs_no_qp():
    """One objective column: y = mu is forced, so no QP is solved (a QP that always fails
    must not be called)."""
    g = torch.Generator().manual_seed(3)
    fn, _ = _random_problem(3, 4, 0, 0)
    point = _point(fn, torch.randn(4, generator=g, dtype=F64), mu=0.7)
    H = _spd(4, g)
    res = stationarity(point, _samples_of(point), lambda v: H @ v, _FailingQP(10**9))
    assert res.qp_form == 1
    torch.testing.assert_close(res.d, -0.7 * H @ point.ev.grad_f)


# ---------------------------------------------------------------------------- skipping the QP


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 5),
    l=st.integers(1, 5),
    m_i=st.integers(0, 3),
    m_e=st.integers(0, 2),
    seed=st.integers(0, 10_000),
    mu=st.floats(0.05, 2.0),
    l2=st.booleans(),
)
def test_lower_bound_never_exceeds_the_measure(n, l, m_i, m_e, seed, mu, l2):
    """The bound holds for any direction u, whatever the QP's linear term and the samples."""
    fn, g = _random_problem(seed, n, m_i, m_e)
    x = torch.randn(n, generator=g, dtype=F64)
    point = _point(fn, x, mu)
    rows = [_samples_of(point)[0]]
    for _ in range(l - 1):
        rows.append(_samples_of(_point(fn, x + 0.3 * torch.randn(n, generator=g, dtype=F64)))[0])
    samples = torch.stack(rows)
    H = _spd(n, g)
    exact = stationarity(point, samples, lambda v: H @ v, QPSolver("daqp"), l2=l2)
    assert exact.qp_form == 1
    for u in (H @ point.grad_phi, torch.randn(n, generator=g, dtype=F64), exact.d):
        bound = measure_lower_bound(point, samples, u, lambda v: H @ v, l2=l2)
        assert bound <= exact.value * (1 + 1e-9) + 1e-12


def test_lower_bound_is_tight_for_one_smooth_sample():
    """One sample, no constraints: u = H∇φ gives the measure itself (up to the margin)."""
    fn, g = _random_problem(3, 4, 0, 0)
    point = _point(fn, torch.randn(4, generator=g, dtype=F64))
    H = _spd(4, g)
    bound = measure_lower_bound(point, _samples_of(point), H @ point.grad_phi, lambda v: H @ v)
    value = float((H @ point.grad_phi).norm())
    assert value * 0.98 <= bound <= value


def test_skip_reports_the_bound_only_when_it_rules_out_certification():
    fn, g = _random_problem(5, 3, 1, 0)
    point = _point(fn, torch.randn(3, generator=g, dtype=F64))
    samples = _samples_of(point)
    H = _spd(3, g)
    exact = stationarity(point, samples, lambda v: H @ v, QP)
    skipped = stationarity(point, samples, lambda v: H @ v, QP, certify_below=1e-8)
    assert skipped.qp_form == 3 and skipped.d is None
    assert 1e-8 < skipped.value <= exact.value * (1 + 1e-9)
    # a threshold above the measure: the bound cannot rule it out, the QP is solved
    solved = stationarity(point, samples, lambda v: H @ v, QP, certify_below=2 * exact.value)
    assert solved.qp_form == 1 and solved.value == pytest.approx(exact.value, rel=1e-9)
    always = stationarity(point, samples, lambda v: H @ v, QP, certify_below=-math.inf)
    assert always.qp_form == 3


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 5),
    m_i=st.integers(0, 4),
    m_e=st.integers(0, 2),
    seed=st.integers(0, 10_000),
    mu=st.floats(0.05, 10.0),
)
def test_one_sample_termination_qp_is_the_steering_qp(n, m_i, m_e, seed, mu):
    """Shared between the two: the same multipliers and direction, and steering given them
    returns what it computes itself."""
    assume(m_i + m_e > 0)
    fn, g = _random_problem(seed, n, m_i, m_e)
    point = _point(fn, 2 * torch.randn(n, generator=g, dtype=F64), mu)
    H = _spd(n, g)
    stat = stationarity(point, _samples_of(point), lambda v: H @ v, QPSolver("daqp"), share=True)
    assert stat.multipliers is not None and stat.multipliers.shape == (m_e + m_i,)
    settings = SteeringSettings(ineq_margin=math.inf)
    own = steer(point, lambda v: H @ v, QPSolver("daqp"), settings)
    reused = steer(point, lambda v: H @ v, QPSolver("daqp"), settings, (stat.multipliers, stat.d))
    scale = 1.0 + float(own.d.norm())
    torch.testing.assert_close(stat.d, own.d if own.mu == mu else stat.d, atol=1e-7 * scale, rtol=0)
    assert reused.mu == own.mu
    torch.testing.assert_close(reused.d, own.d, atol=1e-7 * scale, rtol=0)
    assert reused.n_qps == own.n_qps - 1


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 5),
    l=st.integers(2, 5),
    m_i=st.integers(0, 3),
    m_e=st.integers(0, 2),
    seed=st.integers(0, 10_000),
    mu=st.floats(0.05, 2.0),
)
def test_measure_never_above_sample_zeros(n, l, m_i, m_e, seed, mu):
    """More samples never give a larger measure than the current sample alone."""
    fn, g = _random_problem(seed, n, m_i, m_e)
    x = torch.randn(n, generator=g, dtype=F64)
    point = _point(fn, x, mu)
    rows = [_samples_of(point)[0]]
    for _ in range(l - 1):
        rows.append(_samples_of(_point(fn, x + 1e-3 * torch.randn(n, generator=g, dtype=F64)))[0])
    H = _spd(n, g)
    share = m_i + m_e > 0
    alone = stationarity(point, _samples_of(point), lambda v: H @ v, QP, share=share)
    full = stationarity(point, torch.stack(rows), lambda v: H @ v, QP, share=share)
    assert full.value <= alone.value * (1 + 1e-12)
    if share:  # the steering answer at mu comes with it, whichever value was reported
        assert full.steering is not None
        torch.testing.assert_close(full.steering[1], alone.d, rtol=0, atol=1e-9)
