"""The BFGS pair's automatic choice (``bfgs_y="auto"``, :mod:`ncvx.bfgs_pair`)."""

from __future__ import annotations

import math

import pytest
import torch

import ncvx
from ncvx.bfgs_pair import PAIR_PROBES, VIOLATED_PAIR, GradientChange, PairChoice
from ncvx.penalty import PenaltyPoint
from ncvx.problem.binding import DictBinding
from ncvx.problem.evaluator import Evaluator
from ncvx.problem.variables import VariableLayout

F64 = torch.float64


def test_all_rows_changing_selects_the_violated_row_weights():
    choice = PairChoice("auto", lagrangian_only=False)
    assert choice.kind == "pending"
    J_a = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=F64)
    # the first step changes row 0 only: undecided, the Lagrangian pair meanwhile
    assert choice.observe(J_a, J_a + torch.tensor([[0.5, 0.0], [0.0, 0.0]], dtype=F64)) == "lagrangian"
    assert choice.kind == "pending"
    # the second changes row 1 (row 0 unchanged this time): every row has changed once
    assert choice.observe(J_a, J_a + torch.tensor([[0.0, 0.0], [0.0, 2.0]], dtype=F64)) == VIOLATED_PAIR
    assert choice.kind == VIOLATED_PAIR
    assert choice.observe(J_a, J_a) == VIOLATED_PAIR  # decided for the rest of the run


def test_a_row_that_never_changes_keeps_the_lagrangian_pair():
    choice = PairChoice("auto", lagrangian_only=False)
    J_a = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=F64)
    J_b = J_a.clone()
    J_b[0, 0] += 1.0  # row 1 is linear
    for _ in range(PAIR_PROBES):
        assert choice.observe(J_a, J_b) == "lagrangian"
    assert choice.kind == "lagrangian"
    J_b[1, 1] += 1.0  # too late: decided
    assert choice.observe(J_a, J_b) == "lagrangian"


@pytest.mark.parametrize("option", ["penalty", "lagrangian"])
def test_an_explicit_choice_is_kept(option):
    choice = PairChoice(option, lagrangian_only=False)
    J = torch.eye(2, dtype=F64)
    assert choice.observe(J, 2 * J) == option
    assert choice.kind == option


def test_equalities_or_bounds_keep_the_lagrangian_pair():
    choice = PairChoice("auto", lagrangian_only=True)
    J = torch.eye(2, dtype=F64)
    assert choice.observe(J, 2 * J) == "lagrangian"


def _disk(x):
    """``min x1 + x2`` s.t. ``x1² + x2² <= 1``: ``-√2`` at ``-(1, 1)/√2``."""
    return x.sum(), (x @ x - 1.0).reshape(1), None


def _halfplanes(x):
    """The same objective over the square ``|x_j| <= 1`` as linear rows: ``-2`` at ``(-1, -1)``."""
    return x.sum(), torch.cat([x - 1.0, -x - 1.0]), None


def _circle(x):
    """``min x1 + x2`` s.t. ``x1² + x2² = 1``: ``-√2``."""
    return x.sum(), None, (x @ x - 1.0).reshape(1)


@pytest.mark.parametrize(
    ("fn", "pair", "f_star"),
    [
        (_disk, VIOLATED_PAIR, -math.sqrt(2.0)),
        (_halfplanes, "lagrangian", -2.0),
        (_circle, "lagrangian", -math.sqrt(2.0)),
    ],
)
def test_the_choice_a_solve_makes_and_its_answer(fn, pair, f_star):
    x0 = torch.tensor([0.3, -0.2], dtype=F64)
    res = ncvx.solve(fn, x0, print_level=0, maxit=200, opt_tol=1e-8)
    assert res.extra["bfgs_pair"] == pair
    assert (res.extra["bfgs_pair_from"] == 1) is (pair == VIOLATED_PAIR)  # the first step
    assert res.best is not None
    assert res.best.f == pytest.approx(f_star, abs=1e-6)


def test_a_box_as_simple_bounds_keeps_the_lagrangian_pair():
    res = ncvx.solve(
        _disk, torch.tensor([0.3, -0.2], dtype=F64), print_level=0, bounds=(-0.5, 0.5)
    )
    assert res.extra["bfgs_pair"] == "lagrangian"
    assert res.best is not None
    assert res.best.f == pytest.approx(-1.0, abs=1e-6)


def test_rows_are_compared_in_blocks(monkeypatch):
    """The comparison runs over blocks of rows (bounded temporary memory) with the same answer."""
    import ncvx.bfgs_pair as solver_mod

    monkeypatch.setattr(solver_mod, "_COMPARE_ELEMENTS", 5)  # two rows of 3 entries per block
    g = torch.Generator().manual_seed(0)
    J_a = torch.randn(7, 3, generator=g, dtype=F64)
    J_b = J_a.clone()
    J_b[[0, 3, 6], 1] += 1.0
    choice = PairChoice("auto", lagrangian_only=False)
    choice.observe(J_a, J_b)
    assert choice._changed.tolist() == [True, False, False, True, False, False, True]
    J_c = J_a.clone()
    J_c[[1, 2, 4, 5], 2] -= 1.0
    assert choice.observe(J_a, J_c) == VIOLATED_PAIR


def test_limited_memory_keeps_the_lagrangian_pair():
    """L-BFGS rescales its base operator from every pair: no penalty pair there."""
    res = ncvx.solve(
        _disk, torch.tensor([0.3, -0.2], dtype=F64), print_level=0, limited_mem_size=5
    )
    assert res.extra["bfgs_pair"] == "lagrangian"
    assert res.best is not None
    assert res.best.f == pytest.approx(-math.sqrt(2.0), abs=1e-6)


def test_the_reported_pair():
    """Undecided means the Lagrangian pair was used; without constraints the pair is ∇f's
    change, the penalty gradient's with μ = 1."""
    choice = PairChoice("auto", lagrangian_only=False)
    assert choice.used(constrained=True) == "lagrangian"
    assert choice.used(constrained=False) == "penalty"
    res = ncvx.solve(lambda x: ((x - 1.0).abs().sum(), None, None), torch.zeros(3, dtype=F64),
                     print_level=0)
    assert res.extra["bfgs_pair"] == "penalty"


def _points(mu: float) -> tuple[PenaltyPoint, PenaltyPoint]:
    """Two points of ``f = x1²`` with ``c0 = x1² + x2² - 1`` (violated at both) and
    ``c1 = x2³ + 0.1 x1²`` (violated at the first only)."""

    def fn(v):
        x = v["x"]
        return x[0] ** 2, torch.stack([x[0] ** 2 + x[1] ** 2 - 1.0, x[1] ** 3 + 0.1 * x[0] ** 2]), None

    layout = VariableLayout.from_shapes({"x": [2]})
    ev = Evaluator(fn, DictBinding(layout, lambda d: d), dtype=F64, device=torch.device("cpu"))
    a = ev.evaluate(torch.tensor([2.0, 0.5], dtype=F64), first=True)
    b = ev.evaluate(torch.tensor([1.5, -0.8], dtype=F64))
    return PenaltyPoint.create(a, mu, 0.0, 0.0), PenaltyPoint.create(b, mu, 0.0, 0.0)


@pytest.mark.parametrize("kind", ["lagrangian", VIOLATED_PAIR, "penalty"])
def test_the_pair_weighs_rows_as_its_kind_says(kind):
    """``y = μΔ∇f + Σ w_j Δ∇c_j``: ``w`` the multipliers (Lagrangian), 1 for the row violated at
    both ends (:data:`VIOLATED_PAIR`; the row that changes sign keeps its multiplier), or the
    penalty gradient's change (weights 1 where violated, at each end)."""
    old, new = _points(mu=0.5)
    change = GradientChange("auto", lagrangian_only=False)
    change.choice.kind = kind
    lam = torch.tensor([0.3, 0.6], dtype=F64)
    y = change(old, new, lam, iteration=0)
    d_f = torch.tensor([-1.0, 0.0], dtype=F64)  # ∇f = (2 x1, 0)
    d_c0 = torch.tensor([-1.0, -2.6], dtype=F64)  # ∇c0 = (2 x1, 2 x2)
    d_c1 = torch.tensor([-0.1, 1.17], dtype=F64)  # ∇c1 = (0.2 x1, 3 x2²)
    if kind == "lagrangian":
        expected = 0.5 * d_f + 0.3 * d_c0 + 0.6 * d_c1
    elif kind == VIOLATED_PAIR:
        expected = 0.5 * d_f + 1.0 * d_c0 + 0.6 * d_c1
    else:  # c1 is violated at the old point only: its gradient there drops out
        expected = 0.5 * d_f + d_c0 - torch.tensor([0.4, 0.75], dtype=F64)
    torch.testing.assert_close(y, expected, rtol=1e-12, atol=1e-12)
    assert change.fallbacks == 0
