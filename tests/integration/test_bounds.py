"""Simple bounds handled by the solver (``bounds=``): closed forms, a second solver, validation."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import scipy.optimize
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import ncvx
from ncvx import pygranso, pygransoStruct
from ncvx.bounds import Box, resolve_bounds
from ncvx.errors import OptionsError
from ncvx.problem.variables import VariableLayout

D = torch.float64


def _nnls_problem(m: int, n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(m, n, generator=g, dtype=D)
    b = torch.randn(m, generator=g, dtype=D)
    x_star, rnorm = scipy.optimize.nnls(A.numpy(), b.numpy())

    def fn(x):
        r = A @ x - b
        return 0.5 * (r * r).sum(), None, None

    return fn, torch.from_numpy(x_star), 0.5 * rnorm**2


@pytest.mark.parametrize("memory", [0, 10])
@pytest.mark.parametrize(("m", "n"), [(60, 40), (300, 200)])
def test_nonnegative_least_squares_matches_scipy(m, n, memory):
    fn, x_star, f_star = _nnls_problem(m, n, seed=0)
    seen = []
    res = ncvx.solve(
        fn,
        torch.zeros(n, dtype=D),
        bounds=(0.0, None),
        limited_mem_size=memory,
        maxit=500,
        print_level=0,
        callback=lambda rec: seen.append(float(rec.point.x.min())),
    )
    # certified, or stopped by the line search at f's rounding level (f - f* ~ 1e-14 f*: which
    # of the two depends on the last bits of the L-BFGS products) with the measure at tolerance
    assert res.status == ncvx.Status.STATIONARY or (
        res.status == ncvx.Status.LINESEARCH_BRACKET_FEASIBLE and res.stat_value <= 2e-8
    )
    assert min(seen) >= 0.0  # every iterate in the box
    assert res.final.f == pytest.approx(f_star, rel=1e-12)
    torch.testing.assert_close(res.x, x_star, atol=1e-7, rtol=0)
    assert int((x_star == 0).sum()) > n // 4  # many bounds active at the answer
    assert bool((res.x[x_star == 0] == 0).all())  # exactly on them


def test_nonnegative_least_squares_in_float32():
    fn64, x_star, f_star = _nnls_problem(120, 80, seed=2)

    def fn(x):
        return fn64(x.double())[0].float(), None, None

    res = ncvx.solve(fn, torch.zeros(80), bounds=(0.0, None), limited_mem_size=10,
                     double_precision=False, print_level=0, maxit=500)
    assert res.x.dtype == torch.float32 and float(res.x.min()) >= 0.0
    assert res.final.f == pytest.approx(f_star, rel=1e-5)
    torch.testing.assert_close(res.x.double(), x_star, atol=2e-3, rtol=0)


def test_projection_onto_simplex_with_an_equality():
    # min ½‖x − a‖² s.t. Σx = 1, x ≥ 0: x* = max(a − τ, 0) with τ from the sorted a
    a = torch.tensor([0.9, 0.6, -0.2, 0.3, 0.05, -1.0], dtype=D)
    u = torch.sort(a, descending=True).values
    css = torch.cumsum(u, 0) - 1
    k = int((u - css / torch.arange(1, 7, dtype=D) > 0).nonzero().max()) + 1
    x_star = (a - css[k - 1] / k).clamp_min(0)

    def fn(x):
        return 0.5 * ((x - a) ** 2).sum(), None, x.sum() - 1

    res = ncvx.solve(fn, torch.full((6,), 1 / 6, dtype=D), bounds=(0.0, None), print_level=0)
    assert res.status == ncvx.Status.STATIONARY
    torch.testing.assert_close(res.x, x_star, atol=1e-7, rtol=0)
    assert float(res.x.min()) >= 0.0


def test_nonsmooth_objective_in_a_box():
    # min ‖x − a‖₁ s.t. 0 ≤ x ≤ 1: x* = clip(a, 0, 1); kinks at the answer's free coordinates
    a = torch.tensor([1.7, -0.4, 0.3, 0.8, 2.0, -3.0], dtype=D)

    def fn(x):
        return (x - a).abs().sum(), None, None

    res = ncvx.solve(fn, torch.full((6,), 0.5, dtype=D), bounds=(0.0, 1.0), print_level=0)
    x_star = a.clamp(0, 1)
    # certified by gradient samples within evaldist = 1e-4 of the kinks (as without bounds)
    assert res.status == ncvx.Status.STATIONARY
    assert res.final.f == pytest.approx(float((x_star - a).abs().sum()), abs=1e-4)
    torch.testing.assert_close(res.x, x_star, atol=1e-4, rtol=0)
    assert bool((res.x[[0, 1, 4, 5]] == x_star[[0, 1, 4, 5]]).all())  # exactly on the bounds
    assert float(res.x.min()) >= 0.0 and float(res.x.max()) <= 1.0


def test_named_bounds_on_dict_variables_and_pygranso_options():
    a = {"w": torch.tensor([[2.0], [-1.0], [0.2]], dtype=D), "b": torch.tensor([[3.0]], dtype=D)}

    def comb_fn(X):
        f = ((X.w - a["w"]) ** 2).sum() + ((X.b - a["b"]) ** 2).sum()
        return f, None, None

    opts = pygransoStruct()
    opts.x0 = torch.zeros(4, 1, dtype=D)
    opts.print_level = 0
    opts.bounds = {"w": (torch.tensor([[0.0], [0.0], [-1.0]]), 0.5)}  # b unbounded
    soln = pygranso(var_spec={"w": [3, 1], "b": [1, 1]}, combined_fn=comb_fn, user_opts=opts)
    assert soln.termination_code == 0
    expected = torch.tensor([0.5, 0.0, 0.2, 3.0], dtype=D)
    torch.testing.assert_close(soln.final.x.reshape(-1), expected, atol=1e-7, rtol=0)


def test_start_outside_the_box_is_projected(caplog):
    def fn(x):
        return ((x - 2.0) ** 2).sum(), None, None

    with caplog.at_level(logging.WARNING, logger="ncvx"):
        res = ncvx.solve(fn, torch.tensor([5.0, -3.0], dtype=D), bounds=(-1.0, 1.0), print_level=0)
    assert "outside the bounds" in caplog.text
    torch.testing.assert_close(res.x, torch.tensor([1.0, 1.0], dtype=D))


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 30))
def test_separable_quadratic_equals_clip(seed, n):
    # min Σ w_i (x_i − a_i)² over a box with some infinite sides: x* = clip(a, lb, ub)
    rng = np.random.default_rng(seed)
    a = torch.from_numpy(rng.normal(size=n) * 3)
    w = torch.from_numpy(rng.uniform(0.1, 10.0, size=n))
    lb = torch.from_numpy(np.where(rng.random(n) < 0.3, -np.inf, rng.normal(size=n) - 1))
    ub = torch.from_numpy(np.where(rng.random(n) < 0.3, np.inf, rng.normal(size=n) + 1))
    ub = torch.maximum(ub, lb)

    def fn(x):
        return (w * (x - a) ** 2).sum(), None, None

    res = ncvx.solve(fn, torch.zeros(n, dtype=D), bounds=(lb, ub), print_level=0, maxit=300)
    # the certificate is gradient sampling's: stationarity over samples within evaldist = 1e-4
    # (two iterates 8e-5 apart whose gradients have opposite signs certify; found at seed 12)
    torch.testing.assert_close(res.x, torch.clamp(a, lb, ub), atol=2e-4, rtol=0)
    assert bool((res.x >= lb).all() and (res.x <= ub).all())


def test_bounds_with_an_active_inequality_constraint():
    # min -Σx s.t. ‖x‖² ≤ 1, 0 ≤ x ≤ 0.5 (4 variables): x* = (0.5, 0.5, 0.5, 0.5), on both
    def fn(x):
        return -x.sum(), (x * x).sum() - 1, None

    res = ncvx.solve(fn, torch.zeros(4, dtype=D), bounds=(0.0, 0.5), print_level=0)
    torch.testing.assert_close(res.x, torch.full((4,), 0.5, dtype=D), atol=1e-7, rtol=0)
    assert res.final.f == pytest.approx(-2.0, abs=1e-7)


# ------------------------------------------------------------------------------ validation

LAYOUT = VariableLayout.from_shapes({"w": [3, 1], "b": [1, 1]})


def _resolve(spec):
    return resolve_bounds(spec, LAYOUT, D, torch.device("cpu"))


def test_resolve_bounds_flattens_in_layout_order():
    box = _resolve({"b": (-1.0, None), "w": (0.0, torch.tensor([[1.0], [2.0], [3.0]]))})
    assert isinstance(box, Box)
    assert box.lb.tolist() == [0.0, 0.0, 0.0, -1.0]
    assert box.ub.tolist() == [1.0, 2.0, 3.0, float("inf")]
    assert _resolve((None, None)) is None  # nothing bounded: no box at all


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"v": (0, 1)}, "unknown variable"),
        ({"w": (1.0, 0.0)}, "exceeds its upper bound"),
        ({"w": (torch.zeros(2), 1.0)}, "broadcastable"),
        ({"w": (float("nan"), 1.0)}, "NaN"),
        ({"w": 0.0}, "must be a pair"),
    ],
)
def test_bad_bounds_are_named(spec, message):
    with pytest.raises(OptionsError, match=message):
        _resolve(spec)


def test_bounds_option_rejects_other_types():
    with pytest.raises(OptionsError, match="bounds"):
        ncvx.Options(bounds=3.0)


def test_bounds_on_module_parameters_by_name():
    # least squares y = Xw + c with w in [-1, 1] (the unconstrained fit has w = (3, -0.5, 2)):
    # the answer is the bounded least-squares fit, checked against scipy's lsq_linear
    g = torch.Generator().manual_seed(5)
    X = torch.randn(50, 3, generator=g, dtype=D)
    y = X @ torch.tensor([3.0, -0.5, 2.0], dtype=D) + 0.7
    model = torch.nn.Linear(3, 1).double()

    def fn(m):
        r = m(X).squeeze(1) - y
        return 0.5 * (r * r).sum(), None, None

    res = ncvx.solve_module(model, fn, bounds={"weight": (-1.0, 1.0)}, print_level=0)
    A = torch.cat([X, torch.ones(50, 1, dtype=D)], dim=1).numpy()
    ref = scipy.optimize.lsq_linear(A, y.numpy(), bounds=([-1, -1, -1, -np.inf], [1, 1, 1, np.inf]))
    got = torch.cat([model.weight.detach().reshape(-1), model.bias.detach()])
    assert res.status == ncvx.Status.STATIONARY
    torch.testing.assert_close(got, torch.from_numpy(ref.x), atol=1e-6, rtol=0)
    assert float(model.weight.detach().abs().max()) <= 1.0


def test_bounds_need_named_variables_in_module_mode():
    model = torch.nn.Linear(2, 1).double()
    with pytest.raises(OptionsError, match="unknown variable"):
        ncvx.solve_module(model, lambda m: (m.weight.sum(), None, None), bounds={"w": (0, 1)})


def test_active_constraint_releases_a_variable_its_penalty_gradient_holds():
    # min x1 + 2 x2 s.t. x1 + x2 >= 1, 0 <= x <= 10, from the feasible x0 = (0, 1): the penalty
    # gradient there is ∇f = (1, 2), pushing x1 out of the box, but along the active constraint
    # f decreases by moving x1 up: the answer is (1, 0) with f = 1 (a linear program). From
    # x0 = (0, 2) x2 first comes down onto the constraint with x1 held at 0.
    def fn(x):
        return x[0] + 2 * x[1], 1 - x[0] - x[1], None

    for x0 in ([0.0, 2.0], [0.0, 1.0], [0.0, 5.0]):  # (0, 5): a step overshoots to (0, 0)
        res = ncvx.solve(fn, torch.tensor(x0, dtype=D), bounds=(0.0, 10.0), print_level=0)
        torch.testing.assert_close(res.x, torch.tensor([1.0, 0.0], dtype=D), atol=1e-6, rtol=0)
        assert res.final.f == pytest.approx(1.0, abs=1e-6)
