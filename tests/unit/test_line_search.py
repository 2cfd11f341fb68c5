"""Unit tests of ``ncvx.line_search``: weak Wolfe bracketing/bisection and backtracking."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from ncvx.line_search import (
    LineSearchSettings,
    LineSearchStatus,
    _cubic_stops_here,
    _model_stops_here,
    _predicted_level,
    weak_wolfe,
)
from ncvx.penalty import PenaltyPoint
from ncvx.problem.binding import DictBinding
from ncvx.problem.evaluator import Evaluator
from ncvx.problem.variables import VariableLayout

F64 = torch.float64
C1, C2 = 1e-4, 0.5


class Penalty:
    """Wraps ``fn(x) -> (f, ci, ce)`` with the real Evaluator; records every trial point."""

    def __init__(self, fn, n: int, mu: float = 1.0) -> None:
        layout = VariableLayout.from_shapes({"x": [n]})
        self.evaluator = Evaluator(
            lambda d: fn(d["x"]),
            DictBinding(layout, lambda d: d),
            dtype=F64,
            device=torch.device("cpu"),
        )
        self.mu = mu
        self.trials: list[PenaltyPoint] = []
        self._first = True

    def point(self, x: torch.Tensor) -> PenaltyPoint:
        ev = self.evaluator.evaluate(x, first=self._first)
        self._first = False
        return PenaltyPoint.create(ev, self.mu, 0.0, 0.0)

    def __call__(self, x: torch.Tensor) -> PenaltyPoint:
        p = self.point(x)
        self.trials.append(p)
        return p


def _search(pen: Penalty, x0: torch.Tensor, d: torch.Tensor, **kw):
    start = pen.point(x0)
    res = weak_wolfe(pen, start, d, LineSearchSettings(c1=C1, c2=C2, **kw))
    return start, res


def _assert_weak_wolfe(start: PenaltyPoint, d: torch.Tensor, res) -> None:
    s0 = float(start.grad_phi @ d)
    assert s0 < 0
    t, p = res.alpha, res.point
    assert t > 0
    torch.testing.assert_close(p.x, start.x + t * d, rtol=1e-15, atol=1e-15)
    assert p.phi < start.phi + C1 * t * s0  # sufficient decrease
    assert float(p.grad_phi @ d) > C2 * s0  # weak curvature


def _quadratic(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=F64))
    A = (Q * torch.exp(2 * torch.rand(n, generator=g, dtype=F64) - 1)) @ Q.T
    b = torch.randn(n, generator=g, dtype=F64)
    return (lambda x: (0.5 * x @ A @ x + b @ x, None, None)), g


def _max_affine(n: int, k: int, seed: int):
    """``max_j a_jᵀx + b_j`` with ``0`` in the convex hull of the ``a_j`` (bounded below)."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(k, n, generator=g, dtype=F64)
    a = torch.cat([a, -a.sum(0, keepdim=True)])
    b = torch.randn(k + 1, generator=g, dtype=F64)
    return (lambda x: ((a @ x + b).max(), None, None)), g


def _descent_direction(start: PenaltyPoint, g: torch.Generator, mode: int) -> torch.Tensor:
    grad = start.grad_phi
    n = grad.numel()
    if mode == 0:
        return -grad
    if mode == 1:  # -M grad with M SPD, random scale
        B = torch.randn(n, n, generator=g, dtype=F64)
        M = B @ B.T + 0.1 * torch.eye(n, dtype=F64)
        return -(M @ grad) * float(torch.exp(4 * torch.rand(1, generator=g, dtype=F64) - 2))
    r = torch.randn(n, generator=g, dtype=F64)
    return r if float(r @ grad) < 0 else -r


@given(n=st.integers(1, 2), seed=st.integers(0, 10_000), mode=st.integers(0, 2))
def test_weak_wolfe_on_convex_quadratics(n, seed, mode):
    fn, g = _quadratic(n, seed)
    pen = Penalty(fn, n)
    x0 = 3 * torch.randn(n, generator=g, dtype=F64)
    start = pen.point(x0)
    d = _descent_direction(start, g, mode)
    assume(float(start.grad_phi @ d) < -1e-8 * float(d.norm() * start.grad_phi.norm()))
    res = weak_wolfe(pen, start, d, LineSearchSettings(c1=C1, c2=C2))
    assert res.status == LineSearchStatus.OK
    assert res.n_evals == len(pen.trials)
    assert res.point is pen.trials[-1]  # the accepted point is the last evaluated one
    _assert_weak_wolfe(start, d, res)


@given(
    n=st.integers(1, 2), k=st.integers(1, 4), seed=st.integers(0, 10_000), mode=st.integers(0, 2)
)
def test_weak_wolfe_on_max_of_affine(n, k, seed, mode):
    fn, g = _max_affine(n, k, seed)
    pen = Penalty(fn, n)
    x0 = 3 * torch.randn(n, generator=g, dtype=F64)
    start = pen.point(x0)
    d = _descent_direction(start, g, mode)
    assume(float(start.grad_phi @ d) < -1e-6 * float(d.norm() * start.grad_phi.norm()))
    res = weak_wolfe(pen, start, d, LineSearchSettings(c1=C1, c2=C2))
    # bounded below along d and piecewise linear: the search terminates (Lewis & Overton)
    assert res.status == LineSearchStatus.OK
    _assert_weak_wolfe(start, d, res)


@given(mu=st.floats(0.01, 10.0), x0=st.floats(-3.0, 3.0), seed=st.integers(0, 1000))
def test_weak_wolfe_on_constrained_penalty(mu, x0, seed):
    """φ(x) = μ (x₁² + x₂²) + max(1 - x₁, 0) + |x₂ - x₁/2|: a nonsmooth exact penalty."""

    def fn(x):
        return (x**2).sum(), (1 - x[0]).reshape(1), (x[1] - 0.5 * x[0]).reshape(1)

    g = torch.Generator().manual_seed(seed)
    pen = Penalty(fn, 2, mu=mu)
    x = torch.tensor([x0, 0.7], dtype=F64)
    start = pen.point(x)
    assume(abs(1 - x0) > 1e-6 and abs(0.7 - 0.5 * x0) > 1e-6)
    d = _descent_direction(start, g, seed % 3)
    assume(float(start.grad_phi @ d) < -1e-6 * float(d.norm() * start.grad_phi.norm()))
    res = weak_wolfe(pen, start, d, LineSearchSettings(c1=C1, c2=C2))
    assert res.status == LineSearchStatus.OK
    _assert_weak_wolfe(start, d, res)


def test_kink_at_the_minimizer_is_accepted():
    pen = Penalty(lambda x: (x.abs().sum(), None, None), 1)
    start, res = _search(pen, torch.tensor([1.3], dtype=F64), torch.tensor([-1.0], dtype=F64))
    assert res.status == LineSearchStatus.OK
    assert res.alpha == 2.0 and res.n_evals == 2  # t=1 not far enough, t=2 passes both
    _assert_weak_wolfe(start, torch.tensor([-1.0], dtype=F64), res)


@pytest.mark.parametrize("n", [1, 2])
def test_no_bracket_on_unbounded_below(n):
    pen = Penalty(lambda x: (-x.sum() + 0.1 * torch.sin(x).sum(), None, None), n)
    x0 = torch.zeros(n, dtype=F64)
    d = torch.ones(n, dtype=F64)
    start, res = _search(pen, x0, d)
    assert res.status == LineSearchStatus.NO_BRACKET
    assert res.alpha > 1e3
    assert res.point.phi < start.phi
    torch.testing.assert_close(res.point.x, x0 + res.alpha * d)
    # doubling only: max(10, round(log2(1e5 / ||d||))) expansions after the first trial
    expected = 1 + max(10, round(math.log2(1e5 / float(d.norm()))))
    assert res.n_evals == expected


def test_nan_is_treated_as_too_far():
    def fn(x):
        v = (x - 3.0) ** 2
        return torch.where(x < 4.0, v, torch.full_like(v, math.nan)).sum(), None, None

    pen = Penalty(fn, 1)
    d = torch.tensor([1.0], dtype=F64)
    start, res = _search(pen, torch.tensor([0.0], dtype=F64), d, init_step=8.0)
    assert math.isnan(pen.trials[0].phi)
    assert res.status == LineSearchStatus.OK
    _assert_weak_wolfe(start, d, res)


def test_eval_cap_after_bracket_gives_bracketed_status():
    pen = Penalty(lambda x: ((x**2).sum(), None, None), 1)
    d = torch.tensor([-10.0], dtype=F64)  # t = 1 overshoots: too far
    start, res = _search(pen, torch.tensor([1.0], dtype=F64), d, max_evals=1)
    assert res.status == LineSearchStatus.BRACKETED_NO_WOLFE
    assert res.n_evals == 1 and res.alpha == 0.0 and res.point is start


def test_fvalquit_stops_early():
    pen = Penalty(lambda x: ((x**2).sum(), None, None), 1)
    d = torch.tensor([-1.0], dtype=F64)
    _, res = _search(pen, torch.tensor([2.0], dtype=F64), d, fvalquit=1.5)
    assert res.status == LineSearchStatus.FVALQUIT
    assert res.n_evals == 1 and res.point.f <= 1.5


@given(n=st.integers(1, 2), seed=st.integers(0, 10_000), kind=st.sampled_from(["quad", "max"]))
def test_gradients_only_at_sufficient_decrease_points(n, seed, kind):
    fn, g = _quadratic(n, seed) if kind == "quad" else _max_affine(n, 3, seed)
    pen = Penalty(fn, n)
    start = pen.point(3 * torch.randn(n, generator=g, dtype=F64))
    d = _descent_direction(start, g, 2)
    s0 = float(start.grad_phi @ d)
    assume(s0 < 0)
    assert pen.evaluator.n_gradients == 1
    res = weak_wolfe(pen, start, d, LineSearchSettings(c1=C1, c2=C2))
    passed = [
        p
        for p in pen.trials
        if not math.isnan(p.phi)
        and p.phi < start.phi + C1 * float(torch.linalg.vector_norm(p.x - start.x) / d.norm()) * s0
    ]
    assert pen.evaluator.n_values == 1 + res.n_evals
    assert pen.evaluator.n_gradients == 1 + len(passed)
    passed_ids = {id(p) for p in passed}
    for p in pen.trials:
        assert p.ev.has_gradients == (id(p) in passed_ids)


def test_backtracking_needs_no_trial_gradients():
    pen = Penalty(lambda x: ((x**2).sum(), None, None), 2)
    d = torch.tensor([-8.0, 0.0], dtype=F64)
    _, res = _search(pen, torch.tensor([1.0, 1.0], dtype=F64), d, backtracking=True)
    assert res.status == LineSearchStatus.OK
    # phi0 = 2, s0 = -16: t = 1, 1/2, 1/4 give phi = 50, 10, 2 (no sufficient decrease),
    # t = 1/8 gives phi = 1
    assert [float(p.x[0]) for p in pen.trials] == [-7.0, -3.0, -1.0, 0.0]
    assert res.alpha == 0.125 and res.point is pen.trials[-1]
    assert pen.evaluator.n_gradients == 1


def test_backtracking_failure_is_bracketed_status():
    pen = Penalty(lambda x: ((x**2).sum(), None, None), 1)
    d = torch.tensor([1.0], dtype=F64)  # ascent: no step gives decrease
    start = pen.point(torch.tensor([1.0], dtype=F64))
    res = weak_wolfe(pen, start, d, LineSearchSettings(backtracking=True, max_evals=5))
    assert res.status == LineSearchStatus.BRACKETED_NO_WOLFE and res.n_evals == 5


# -- a guess of where sufficient decrease starts (the previous step, doubled) ----------------


def _convex_case(kind: str, n: int, seed: int, scale: float):
    fn, g = _quadratic(n, seed) if kind == "quad" else _max_affine(n, 3, seed)
    pen = Penalty(fn, n)
    start = pen.point(3 * torch.randn(n, generator=g, dtype=F64))
    return pen, start, -scale * start.grad_phi


@given(
    kind=st.sampled_from(["quad", "max"]),
    n=st.integers(1, 3),
    seed=st.integers(0, 10_000),
    log_scale=st.floats(-3.0, 12.0),
    log_guess=st.one_of(st.none(), st.floats(-14.0, 1.0)),
    guess_first=st.booleans(),
    predict=st.booleans(),
)
def test_guess_gives_the_same_step_on_convex_functions(
    kind, n, seed, log_scale, log_guess, guess_first, predict
):
    """Along a convex φ sufficient decrease holds on an interval (0, t̄): started from any guess,
    the search ends where the plain search from t = 1 ends, with the same point; with the steps
    predicted by the quadratic model too where that model is exact (a quadratic φ). On a
    piecewise-linear φ the model can stop one grid step short of the plain search's step: still
    a weak-Wolfe step, never a longer one."""
    pen, start, d = _convex_case(kind, n, seed, 2.0**log_scale)
    assume(float(start.grad_phi @ d) < 0)
    settings = LineSearchSettings(c1=C1, c2=C2)
    plain = weak_wolfe(pen, start, d, settings)
    guess = None if log_guess is None else 2.0**log_guess
    warm = weak_wolfe(pen, start, d, settings, guess, guess_first=guess_first, predict=predict)
    assert warm.status == plain.status
    if predict and kind == "max":
        assert warm.alpha <= plain.alpha
    else:
        assert warm.alpha == plain.alpha
        torch.testing.assert_close(warm.point.x, plain.point.x, rtol=0, atol=0)
    if warm.status == LineSearchStatus.OK:
        _assert_weak_wolfe(start, d, warm)


@pytest.mark.parametrize("guess_first", [False, True])
def test_a_good_guess_saves_the_halvings(guess_first):
    """d = -2^10·∇φ on a quadratic: the plain search halves ten times; with the last step as the
    guess, it takes three evaluations (two with guess_first)."""
    pen, start, d = _convex_case("quad", 3, 7, 2.0**10)
    settings = LineSearchSettings(c1=C1, c2=C2)
    plain = weak_wolfe(pen, start, d, settings)
    assert plain.status == LineSearchStatus.OK and plain.n_evals >= 8
    warm = weak_wolfe(pen, start, d, settings, 2 * plain.alpha, guess_first=guess_first)
    assert warm.alpha == plain.alpha
    assert warm.n_evals <= (2 if guess_first else 3)


def test_the_predicted_step_saves_the_halvings():
    """On a quadratic the model through the failed first step is exact: with no guess at all,
    the search tries t = 1 and the predicted step, which the model (exact here) says is the
    largest with sufficient decrease, so the grid step above it is not tried."""
    pen, start, d = _convex_case("quad", 3, 7, 2.0**10)
    settings = LineSearchSettings(c1=C1, c2=C2)
    plain = weak_wolfe(pen, start, d, settings)
    assert plain.status == LineSearchStatus.OK and plain.n_evals >= 8
    pen.trials.clear()
    res = weak_wolfe(pen, start, d, settings, predict=True)
    assert res.alpha == plain.alpha
    assert res.n_evals == len(pen.trials) == 2


@pytest.mark.parametrize("predict", [False, True])
def test_a_weak_wolfe_guess_the_model_stops_at_takes_one_evaluation(predict):
    """Started at the plain search's own step (``guess_first``), the quadratic model (exact
    here) says the next grid step has no sufficient decrease: with ``predict`` that step is not
    tried, one evaluation instead of two, and the same point."""
    pen, start, d = _convex_case("quad", 3, 7, 2.0**10)
    settings = LineSearchSettings(c1=C1, c2=C2)
    plain = weak_wolfe(pen, start, d, settings)
    assert plain.status == LineSearchStatus.OK and plain.alpha < 0.25
    pen.trials.clear()
    warm = weak_wolfe(pen, start, d, settings, plain.alpha, guess_first=True, predict=predict)
    assert warm.alpha == plain.alpha and warm.status == LineSearchStatus.OK
    torch.testing.assert_close(warm.point.x, plain.point.x, rtol=0, atol=0)
    assert warm.n_evals == len(pen.trials) == (1 if predict else 2)


@pytest.mark.parametrize("scale", [1.0, 3.0, 1e3])
def test_predicted_level_of_an_exact_quadratic(scale):
    """φ(t) = φ(0) + s0 t + h t²/2 has sufficient decrease exactly below
    t̄ = 2 (1 - c1)(-s0)/h: the level is the largest t·2^k below t̄."""
    s0, h, t = -2.0 * scale, 5.0, 1.0
    rise = s0 * t + 0.5 * h * t * t
    bound = 2 * (1 - C1) * (-s0) / h
    k = _predicted_level(t, rise, s0, C1)
    assert math.ldexp(t, k) <= bound < math.ldexp(t, k + 1)
    assert _predicted_level(t, s0 * t, s0, C1) is None  # no curvature: nothing to go by
    assert _predicted_level(t, math.nan, s0, C1) is None


@given(
    s0=st.floats(-1e3, -1e-3),
    h=st.floats(1e-3, 1e3),
    t=st.floats(1e-3, 1e3),
)
def test_the_cubic_stop_is_the_quadratic_stop_on_a_quadratic(s0, h, t):
    """On ``φ(τ) = φ(0) + s0 τ + h τ²/2`` the cubic through both ends' values and slopes is
    the quadratic itself: the verified stop agrees with the quadratic's (away from the
    boundary, where rounding decides)."""
    rise, slope = s0 * t + 0.5 * h * t * t, s0 + h * t
    boundary = 2 * (1 - C1) * (-s0) / h  # sufficient decrease exactly below it
    assume(abs(boundary / (2 * t) - 1) > 1e-6)
    assert _cubic_stops_here(t, rise, s0, slope, C1) == _model_stops_here(t, rise, s0, C1)
    assert _cubic_stops_here(t, rise, s0, slope, C1) == (2 * t >= boundary)


@pytest.mark.parametrize("verify", [False, True])
def test_a_kink_inside_the_step_vetoes_the_model_stop(verify):
    """``φ(x) = max(-x, -0.4x - 0.06, 0.5x - 1.5)`` from 0 along +1, started at the guess
    t = 1: the quadratic through ``φ(0)``, ``φ'(0) = -1`` and ``φ(1) = -0.46`` predicts no
    sufficient decrease at t = 2, but the slope at 1 (-0.4, past the kink at 0.1) is not the
    quadratic's (+0.08): the cubic through it predicts decrease, and φ(2) = -0.5 has it. The
    verified stop goes on to the plain search's step 2; the quadratic's stops at 1."""
    pen = Penalty(lambda x: (torch.stack([-x, -0.4 * x - 0.06, 0.5 * x - 1.5]).max(), None, None), 1)
    start, d = pen.point(torch.zeros(1, dtype=F64)), torch.ones(1, dtype=F64)
    plain = weak_wolfe(pen, start, d, LineSearchSettings(c1=C1, c2=C2, init_step=4.0))
    settings = LineSearchSettings(c1=C1, c2=C2, init_step=4.0, verify_stop=verify)
    res = weak_wolfe(pen, start, d, settings, 1.0, guess_first=True, predict=True)
    _assert_weak_wolfe(start, d, res)
    assert plain.alpha == 2.0
    assert res.alpha == (2.0 if verify else 1.0)


@given(max_evals=st.integers(1, 4), guess_first=st.booleans(), predict=st.booleans())
def test_guess_respects_the_evaluation_cap(max_evals, guess_first, predict):
    pen, start, d = _convex_case("quad", 2, 3, 2.0**12)
    settings = LineSearchSettings(c1=C1, c2=C2, max_evals=max_evals)
    res = weak_wolfe(pen, start, d, settings, 2.0**-6, guess_first=guess_first, predict=predict)
    assert res.n_evals <= max_evals
    assert res.n_evals == len(pen.trials)


@given(
    seed=st.integers(0, 10_000),
    log_guess=st.floats(-12.0, 0.0),
    guess_first=st.booleans(),
    predict=st.booleans(),
)
def test_guess_on_nonconvex_functions_still_gives_a_weak_wolfe_step(
    seed, log_guess, guess_first, predict
):
    """Where sufficient decrease is not monotone along d (here a wavy, nonsmooth function) the
    step may differ from the plain search's, but it is still a weak-Wolfe step."""
    g = torch.Generator().manual_seed(seed)
    a = 0.5 + torch.rand(1, generator=g, dtype=F64)

    def fn(x):
        return (x**2).sum() + a * torch.sin(7 * x).abs().sum(), None, None

    pen = Penalty(fn, 1)
    start = pen.point(3 * torch.randn(1, generator=g, dtype=F64))
    d = -start.grad_phi * float(torch.exp(6 * torch.rand(1, generator=g, dtype=F64)))
    assume(float(start.grad_phi @ d) < -1e-8)
    settings = LineSearchSettings(c1=C1, c2=C2)
    res = weak_wolfe(pen, start, d, settings, 2.0**log_guess, guess_first, predict=predict)
    if res.status == LineSearchStatus.OK:
        _assert_weak_wolfe(start, d, res)
    else:
        assert res.status == LineSearchStatus.BRACKETED_NO_WOLFE
