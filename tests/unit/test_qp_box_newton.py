"""``ncvx.qp.solver.box_newton``: the active-set guess tried first on large box-only QPs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ncvx.qp import QPProblem, QPSolver, kkt_residuals
from ncvx.qp import solver as qp_solver
from ncvx.qp.solver import box_newton


def _pd(rng: np.random.Generator, k: int, cond: float = 1e3) -> np.ndarray:
    Q, _ = np.linalg.qr(rng.standard_normal((k, k)))
    return (Q * np.logspace(0, np.log10(cond), k)) @ Q.T


def _kkt_holds(P, q, lb, ub, x, tol=1e-9) -> bool:
    g = P @ x + q
    scale = 1.0 + np.abs(g).max()
    inside = np.all(x >= lb) and np.all(x <= ub)
    at_lb, at_ub = x <= lb, x >= ub
    free = ~(at_lb | at_ub)
    return bool(
        inside
        and np.all(np.abs(g[free]) <= tol * scale)
        and np.all(g[at_lb] >= -tol * scale)
        and np.all(g[at_ub] <= tol * scale)
    )


def test_interior_answer_in_one_factorization() -> None:
    rng = np.random.default_rng(0)
    P = _pd(rng, 300)
    x_star = rng.uniform(0.1, 0.9, 300)
    x = box_newton(P, -P @ x_star, np.zeros(300), np.ones(300))
    assert x is not None
    np.testing.assert_allclose(x, x_star, atol=1e-10)


def test_few_active_bounds_match_a_backend() -> None:
    rng = np.random.default_rng(1)
    k = 400
    P = _pd(rng, k, cond=1e4)
    x_star = rng.uniform(0.05, 0.95, k)
    x_star[:20], x_star[20:30] = 0.0, 1.0  # 30 active bounds
    g_star = np.zeros(k)
    g_star[:20], g_star[20:30] = rng.uniform(0.1, 1.0, 20), -rng.uniform(0.1, 1.0, 10)
    q = g_star - P @ x_star  # so that P x* + q = g*: the KKT point is x*
    lb, ub = np.zeros(k), np.ones(k)
    x = box_newton(P, q, lb, ub)
    assert x is not None
    np.testing.assert_allclose(x, x_star, atol=1e-9)
    assert _kkt_holds(P, q, lb, ub, x)


def test_singular_matrix_is_left_to_the_backends() -> None:
    rng = np.random.default_rng(2)
    C = rng.standard_normal((50, 300))
    P = C.T @ C  # rank 50 < 300
    assert box_newton(P, rng.standard_normal(300), -np.ones(300), np.ones(300)) is None


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    k=st.integers(2, 40),
    shift=st.floats(-2.0, 2.0),
)
def test_any_returned_point_is_the_box_minimiser(seed: int, k: int, shift: float) -> None:
    """Whatever the active set, a returned point satisfies the KKT conditions (or it returns
    None and the backends take over)."""
    rng = np.random.default_rng(seed)
    P = _pd(rng, k, cond=1e2)
    q = rng.standard_normal(k) + shift
    lb = -rng.uniform(0.0, 1.0, k)
    ub = rng.uniform(0.0, 1.0, k)
    x = box_newton(P, q, lb, ub)
    if x is not None:
        assert _kkt_holds(P, q, lb, ub, x)


def test_the_solver_answers_large_box_qps_with_it(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    k = qp_solver.NEWTON_MIN_SIZE
    P = _pd(rng, k, cond=1e3)
    x_star = rng.uniform(0.1, 0.9, k)
    x_star[:5] = 1.0
    q = -P @ x_star
    q[:5] -= 0.5  # pushes the first five against their upper bound
    problem = QPProblem(P, q, np.zeros(k), np.ones(k))
    fast = QPSolver().solve(problem)
    assert fast.backend == "box-newton" and fast.status == "optimal"
    monkeypatch.setattr(qp_solver, "NEWTON_MIN_SIZE", 10**9)
    ladder = QPSolver().solve(problem)
    assert ladder.backend != "box-newton"
    np.testing.assert_allclose(fast.x, ladder.x, atol=1e-7)
    assert kkt_residuals(problem, fast.x)["kkt"] <= kkt_residuals(problem, ladder.x)["kkt"] + 1e-12
