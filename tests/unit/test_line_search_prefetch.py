"""Batched values in the line search's halving phase (``ncvx.line_search.Prefetch``): the search
takes the same steps with and without them, and the solver's use of them changes nothing but the
number of calls of the user's function."""

from __future__ import annotations

import pytest
import torch

import ncvx
from ncvx import _solver
from ncvx.line_search import LineSearchSettings, Prefetch, weak_wolfe
from ncvx.penalty import PenaltyPoint
from ncvx.problem.binding import DictBinding
from ncvx.problem.evaluator import Evaluator
from ncvx.problem.variables import VariableLayout

F64 = torch.float64


def _evaluator(fn, n: int) -> Evaluator:
    layout = VariableLayout.from_shapes({"x": [n]})
    return Evaluator(
        lambda v: fn(v["x"]),
        DictBinding(layout, lambda v: v),
        dtype=F64,
        device=torch.device("cpu"),
    )


def _nonsmooth(x: torch.Tensor):
    """Steep and nonsmooth along the test direction: the search halves many times."""
    return 50.0 * x.abs().sum() + (x**2).sum(), x[:2] - 3.0, None


@pytest.mark.parametrize("size", [2, 3, 5, 16])
def test_prefetched_values_give_the_same_search(size: int) -> None:
    ev = _evaluator(_nonsmooth, 4)
    x0 = torch.tensor([0.01, -0.02, 0.03, 0.005], dtype=F64)
    start = PenaltyPoint.create(ev.evaluate(x0, first=True), 1.0, 0.0, 0.0)
    d = -100.0 * start.grad_phi
    settings = LineSearchSettings()

    def evaluate(x):
        return PenaltyPoint.create(ev.evaluate(x), 1.0, 0.0, 0.0)

    plain = weak_wolfe(evaluate, start, d, settings)
    assert plain.backtracks >= 5  # the case the prefetch is for
    consumed: list[PenaltyPoint] = []
    asked: list[list[float]] = []

    def values(ts):
        asked.append(ts)
        evs = ev.values_batched(x0 + torch.tensor(ts, dtype=F64)[:, None] * d)
        return [PenaltyPoint.create(e, 1.0, 0.0, 0.0) for e in evs]

    fetched = weak_wolfe(evaluate, start, d, settings, Prefetch(values, consumed.append, size))
    assert fetched.alpha == plain.alpha
    assert torch.equal(fetched.point.x, plain.point.x)
    assert fetched.point.phi == plain.point.phi
    assert (fetched.n_evals, fetched.backtracks) == (plain.n_evals, plain.backtracks)
    assert fetched.prefetched == len(consumed) > 0
    assert all(len(ts) == size for ts in asked)
    # every used value is one the search would have found too far, at the step it would try
    for p in consumed:
        t = float((p.x - x0) @ d / (d @ d))
        assert p.phi >= start.phi + settings.c1 * t * float(start.grad_phi @ d)


def test_values_batched_match_one_point_evaluations() -> None:
    ev = _evaluator(lambda x: ((x**3).sum(), {"a": x[:2], "b": x.reshape(2, 2)}, x.sum()), 4)
    ev.evaluate(torch.zeros(4, dtype=F64), first=True)
    xs = torch.randn(5, 4, dtype=F64, generator=torch.Generator().manual_seed(0))
    batched = ev.values_batched(xs)
    assert batched is not None and ev.n_batched_values == 5 and ev.n_values == 1
    for x, b in zip(xs, batched):
        one = ev.evaluate(x)
        torch.testing.assert_close(b.f, one.f, rtol=1e-14, atol=0)
        torch.testing.assert_close(b.ci, one.ci, rtol=1e-14, atol=0)
        torch.testing.assert_close(b.ce, one.ce, rtol=1e-14, atol=0)


def test_a_function_that_cannot_be_batched_is_evaluated_one_point_at_a_time() -> None:
    def branchy(x):
        if bool(x.sum() > 0):  # a Python branch on a value: not batchable
            return x.abs().sum(), None, None
        return (2 * x).abs().sum(), None, None

    ev = _evaluator(branchy, 3)
    ev.evaluate(torch.ones(3, dtype=F64), first=True)
    assert ev.values_batched(torch.ones(2, 3, dtype=F64)) is None
    assert not ev.can_batch_values
    assert ev.values_batched(torch.ones(2, 3, dtype=F64)) is None  # not tried again


def _dictionary_learning(n: int = 12, m: int = 600):
    """min ‖Yᵀq‖₁/m s.t. qᵀq = 1 (SPEC example A3's form): nonsmooth, its searches backtrack."""
    gen = torch.Generator().manual_seed(3)
    Y = torch.randn(n, m, dtype=F64, generator=gen) * (torch.rand(n, m, generator=gen) < 0.3)
    q0 = torch.randn(n, 1, dtype=F64, generator=gen)
    q0 = q0 / q0.norm()
    return Y, q0, lambda v: ((v["q"].T @ Y).abs().sum() / m, None, v["q"].T @ v["q"] - 1)


def _solve(fn, q0, monkeypatch, prefetch: bool):
    monkeypatch.setattr(_solver, "_PREFETCH_MIN_SECONDS", 0.0 if prefetch else float("inf"))
    monkeypatch.setattr(_solver, "_PREFETCH_STRIKES", 10**9)  # tiny problem: batches never pay
    calls = [0]

    def counted(v):
        calls[0] += 1
        return fn(v)

    res = ncvx.solve(counted, {"q": q0.clone()}, maxit=60, print_level=0)
    return res, calls[0]


def test_the_solver_takes_the_same_steps_with_prefetched_values(monkeypatch) -> None:
    _, q0, fn = _dictionary_learning()
    plain, plain_calls = _solve(fn, q0, monkeypatch, prefetch=False)
    fetched, fetched_calls = _solve(fn, q0, monkeypatch, prefetch=True)
    assert torch.equal(fetched.final.x, plain.final.x)
    assert (fetched.iters, fetched.status) == (plain.iters, plain.status)
    assert fetched.fn_evals == plain.fn_evals  # the evaluations the search used, either way
    assert plain_calls == plain.fn_evals
    assert fetched_calls < plain_calls  # batches replaced one-point calls
    assert fetched.best is not None and plain.best is not None
    assert fetched.best.f == pytest.approx(plain.best.f, rel=1e-13)
