"""Unit tests of ``ncvx.penalty``: the exact l1 penalty and the violation measures."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from ncvx.penalty import PenaltyPoint, l1_violation_gradient, measure_violation
from ncvx.problem.binding import DictBinding
from ncvx.problem.evaluator import Evaluation, Evaluator
from ncvx.problem.variables import VariableLayout

F64 = torch.float64

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
vectors = st.lists(finite, max_size=6)
mus = st.floats(0.0, 100.0, allow_nan=False)


def _t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=F64).reshape(-1)


def _ev(f, ci, ce, n: int = 2) -> Evaluation:
    return Evaluation(
        x=torch.zeros(n, dtype=F64), f=torch.tensor(f, dtype=F64), ci=_t(ci), ce=_t(ce)
    )


@given(f=finite, ci=vectors, ce=vectors, mu=mus)
def test_phi_is_mu_f_plus_l1_violation(f, ci, ce, mu):
    p = PenaltyPoint.create(_ev(f, ci, ce), mu, 1e-6, 1e-6)
    l1 = math.fsum(max(c, 0.0) for c in ci) + math.fsum(abs(c) for c in ce)
    assert p.f == f and p.mu == mu
    assert p.viol.tv_l1 == pytest.approx(l1, rel=1e-12, abs=1e-9)
    assert p.phi == pytest.approx(mu * f + l1, rel=1e-12, abs=1e-9)


@given(ci=vectors, ce=vectors)
def test_linf_measures(ci, ce):
    v = measure_violation(_t(ci), _t(ce), 1e-6, 1e-6)
    tvi = max([max(c, 0.0) for c in ci], default=0.0)
    tve = max([abs(c) for c in ce], default=0.0)
    assert v.tvi == tvi and v.tve == tve and v.tv == max(tvi, tve)
    assert isinstance(v.tvi, float) and isinstance(v.tv_l1, float)


@given(ci=vectors, ce=vectors)
def test_tv_zero_iff_feasible_with_zero_tolerance(ci, ce):
    v = measure_violation(_t(ci), _t(ce), 0.0, 0.0)
    assert (v.tv == 0.0) == v.feasible
    assert v.feasible == (all(c <= 0 for c in ci) and all(c == 0 for c in ce))


@given(ci=vectors, ce=vectors, ti=st.floats(0, 10), te=st.floats(0, 10))
def test_feasible_to_tolerance_is_per_kind(ci, ce, ti, te):
    v = measure_violation(_t(ci), _t(ce), ti, te)
    assert v.feasible == (v.tvi <= ti and v.tve <= te)


def test_no_constraints_is_feasible():
    v = measure_violation(_t([]), _t([]), 0.0, 0.0)
    assert (v.tvi, v.tve, v.tv, v.tv_l1, v.feasible) == (0.0, 0.0, 0.0, 0.0, True)


def test_inequality_at_zero_is_satisfied_but_active_in_gradient():
    ev = _ev(0.0, [0.0, -1.0, 2.0], [0.0, -3.0], n=2)
    ev.grad_f = torch.zeros(2, dtype=F64)
    ev.J_i = _t([1.0, 0.0, 10.0, 10.0, 0.0, 1.0]).reshape(3, 2)
    ev.J_e = _t([100.0, 0.0, 0.0, 100.0]).reshape(2, 2)
    v = measure_violation(ev.ci, ev.ce, 0.0, 0.0)
    assert v.tvi == 2.0 and v.tve == 3.0 and v.tv_l1 == 5.0 and not v.feasible
    # ci = 0 counts as active (+grad), ce = 0 counts with sign +, negative ce with sign -
    assert l1_violation_gradient(ev).tolist() == [1.0 + 0.0 + 100.0, 1.0 - 100.0]


@pytest.mark.parametrize("ci", [[], [0.0], [-1.0, -2.0]])
def test_nan_equality_is_not_feasible(ci):
    v = measure_violation(_t(ci), _t([math.nan]), 1e-6, 1e-6)
    assert not v.feasible
    assert math.isinf(v.tve) and math.isinf(v.tv)


def test_nan_inequality_is_not_feasible():
    v = measure_violation(_t([math.nan, -1.0]), _t([0.0]), 1e-6, 1e-6)
    assert not v.feasible and math.isinf(v.tv)


def test_nonfinite_objective_gives_nan_phi():
    assert math.isnan(PenaltyPoint.create(_ev(math.nan, [], []), 1.0, 0, 0).phi)


# ------------------------------------------------------------------------ with real gradients


def _smooth_problem(seed: int, n: int = 3, m_i: int = 3, m_e: int = 2):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(m_i, n, generator=g, dtype=F64)
    B = torch.randn(m_e, n, generator=g, dtype=F64)
    w = torch.randn(n, generator=g, dtype=F64)
    b_i = torch.randn(m_i, generator=g, dtype=F64)
    b_e = torch.randn(m_e, generator=g, dtype=F64)

    def parts(x):
        f = torch.sin(w @ x) + 0.5 * (x**2).sum()
        ci = torch.tanh(A @ x) + 0.3 * x[0] * x[-1] - 0.5 * b_i
        ce = B @ x + 0.2 * torch.cos(x).sum() - b_e
        return f, ci, ce

    layout = VariableLayout.from_shapes({"x": [n]})
    evaluator = Evaluator(
        lambda d: parts(d["x"]),
        DictBinding(layout, lambda d: d),
        dtype=F64,
        device=torch.device("cpu"),
    )
    return parts, evaluator


def _phi(parts, x, mu):
    f, ci, ce = parts(x)
    return mu * f + ci.clamp(min=0).sum() + ce.abs().sum()


@given(seed=st.integers(0, 10_000), mu=st.floats(0.0, 10.0))
def test_penalty_gradient_matches_finite_differences(seed, mu):
    parts, evaluator = _smooth_problem(seed)
    x = torch.randn(3, generator=torch.Generator().manual_seed(seed + 7), dtype=F64)
    _, ci, ce = parts(x)
    # only where every constraint is strictly active or inactive (phi smooth nearby)
    assume(bool((ci.abs() > 1e-3).all() and (ce.abs() > 1e-3).all()))
    p = PenaltyPoint.create(evaluator.evaluate(x, first=True), mu, 1e-6, 1e-6)
    assert p.phi == pytest.approx(float(_phi(parts, x, mu)), rel=1e-12, abs=1e-12)
    h = 1e-6
    fd = torch.stack(
        [
            (_phi(parts, x + h * e, mu) - _phi(parts, x - h * e, mu)) / (2 * h)
            for e in torch.eye(3, dtype=F64)
        ]
    )
    torch.testing.assert_close(p.grad_phi, fd, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(p.grad_phi, mu * p.grad_f + p.grad_viol, rtol=0, atol=0)


@given(seed=st.integers(0, 1000), mu=st.floats(0.0, 10.0), mu2=st.floats(0.0, 10.0))
def test_with_mu(seed, mu, mu2):
    _, evaluator = _smooth_problem(seed)
    x = torch.randn(3, generator=torch.Generator().manual_seed(seed), dtype=F64)
    p = PenaltyPoint.create(evaluator.evaluate(x, first=True), mu, 1e-6, 1e-6)
    same = p.with_mu(mu)
    assert same.phi == p.phi and same.mu == p.mu and same.viol == p.viol and same.f == p.f
    assert same.x is p.x
    g = p.grad_phi
    assert evaluator.n_gradients == 1
    q = p.with_mu(mu2)
    assert q.mu == mu2 and q.viol is p.viol and q.ev is p.ev
    assert q.phi == pytest.approx(mu2 * p.f + p.viol.tv_l1, rel=1e-15, abs=1e-15)
    torch.testing.assert_close(q.grad_phi, mu2 * p.grad_f + p.grad_viol, rtol=0, atol=0)
    torch.testing.assert_close(q.with_mu(mu).grad_phi, g, rtol=1e-15, atol=1e-15)
    assert evaluator.n_values == 1 and evaluator.n_gradients == 1  # no re-evaluation
    assert p.mu == mu  # the original is untouched


def test_values_do_not_need_gradients():
    _, evaluator = _smooth_problem(0)
    p = PenaltyPoint.create(evaluator.evaluate(torch.zeros(3, dtype=F64), first=True), 1.0, 0, 0)
    _ = (p.phi, p.viol, p.feasible, p.with_mu(0.5).phi)
    assert evaluator.n_gradients == 0
    _ = p.grad_phi
    assert evaluator.n_gradients == 1


def test_penalty_gradient_before_the_jacobian_uses_weighted_passes():
    """With many constraints a trial point's ∇φ comes from two reverse passes (no Jacobian),
    and equals the Jacobian-based value."""
    import ncvx.problem.evaluator as evaluator_mod

    g = torch.Generator().manual_seed(0)
    A = torch.randn(300, 5, generator=g, dtype=torch.float64)

    def fn(X):
        x = X["x"]
        return (x**2).sum() + x.abs().sum(), A @ x - 0.1, (x[:2] ** 2 - 0.5)

    layout = VariableLayout.from_shapes({"x": (5,)})
    ev_maker = Evaluator(
        fn, DictBinding(layout, lambda d: d), dtype=torch.float64, device=torch.device("cpu")
    )
    x = torch.randn(5, generator=g, dtype=torch.float64)
    assert evaluator_mod.WEIGHTED_MIN_ROWS <= 302
    p = PenaltyPoint.create(ev_maker.evaluate(x, first=True), 0.7, 1e-6, 1e-6)
    fast = p.grad_phi.clone()
    assert not p.ev.has_gradients  # no Jacobian was formed
    q = PenaltyPoint.create(ev_maker.evaluate(x), 0.7, 1e-6, 1e-6)
    q.ev.ensure_gradients()
    torch.testing.assert_close(fast, q.grad_phi, rtol=1e-12, atol=1e-12)
