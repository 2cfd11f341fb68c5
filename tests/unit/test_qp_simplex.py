"""``ncvx.qp.simplex``: Wolfe's minimum-norm point on the simplex, and its warm start."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ncvx.qp import QPProblem, QPSolver, kkt_residuals
from ncvx.qp.simplex import min_norm_simplex
from ncvx.stationarity import SimplexWarmStart


def _simplex_qp(points: np.ndarray, total: float = 1.0) -> QPProblem:
    """``min ½‖Σ λ_i p_i‖²`` over ``λ ≥ 0, Σλ = total`` for the rows ``p_i`` of ``points``."""
    k = points.shape[0]
    P = points @ points.T
    return QPProblem(
        P, np.zeros(k), np.zeros(k), np.full(k, total), np.ones((1, k)), np.array([total])
    )


@settings(deadline=None)
@given(
    seed=st.integers(0, 10_000),
    k=st.integers(1, 40),
    d=st.integers(1, 12),
    offset=st.floats(-2.0, 2.0),
    warm=st.booleans(),
)
def test_min_norm_point_is_optimal_and_matches_a_qp_solver(seed, k, d, offset, warm):
    """On random hulls (more points than dimensions included: a singular Gram matrix, and the
    origin inside the hull for small offsets) the answer passes the QP check (1e-9, the
    solver's strict tolerance, up to rounding where the minimum norm is 0: the solver then
    takes the QP ladder's answer) and has the objective of a general QP solver; a warm start
    from any support gives it too."""
    rng = np.random.default_rng(seed)
    points = rng.standard_normal((k, d)) + offset
    problem = _simplex_qp(points)
    support = weights = None
    if warm:
        support = rng.choice(k, size=rng.integers(1, k + 1), replace=False)
        weights = rng.random(support.size) + 0.1
    lam = min_norm_simplex(problem.P, support, weights)
    assert lam is not None
    assert np.all(lam >= 0.0) and lam.sum() == pytest.approx(1.0, abs=1e-12)
    assert kkt_residuals(problem, lam)["kkt"] <= 1e-8
    reference = QPSolver().solve(problem).x
    scale = float(np.max(np.diag(problem.P)))
    assert problem.objective(lam) <= problem.objective(reference) + 1e-12 * scale


def test_duplicate_points_and_the_origin_inside():
    """Duplicated points (identical gradient samples) and a hull around the origin: the
    minimum norm is 0 up to rounding."""
    points = np.array([[1.0, 0.0], [1.0, 0.0], [-1.0, 1.0], [-1.0, -1.0], [0.5, 0.5]])
    lam = min_norm_simplex(points @ points.T)
    assert lam is not None
    assert np.linalg.norm(lam @ points) <= 1e-12


def test_one_point_and_zero_points():
    assert min_norm_simplex(np.array([[4.0]])) == pytest.approx(np.array([1.0]))
    lam = min_norm_simplex(np.zeros((3, 3)))  # every point is the origin
    assert lam is not None and lam.sum() == pytest.approx(1.0)


def test_warm_start_follows_samples_by_stamp_and_refuses_bad_answers(monkeypatch):
    """The remembered support is the previous answer's samples, found again by their stamps
    (columns move as samples come and go); an answer the strict check refuses is not used."""
    rng = np.random.default_rng(3)
    points = rng.standard_normal((12, 5)) + 0.3
    problem = _simplex_qp(points, total=0.5)
    warm = SimplexWarmStart()
    stamps = np.arange(100, 112)
    x, kkt = warm.solve(problem, stamps, 1e-9)
    assert x is not None and kkt <= 1e-9 and warm.used == 1
    warm.remember(stamps, x)
    # the next QP: the newest sample first, the oldest gone, the rest shifted by one column
    shifted = np.vstack([rng.standard_normal((1, 5)), points[:-1]])
    calls = []
    import ncvx.stationarity as stationarity_module

    real = stationarity_module.min_norm_simplex

    def spy(P, support=None, weights=None):
        calls.append(None if support is None else np.asarray(support).copy())
        return real(P, support, weights)

    monkeypatch.setattr(stationarity_module, "min_norm_simplex", spy)
    new_stamps = np.concatenate([[112], stamps[:-1]])
    x2, kkt2 = warm.solve(_simplex_qp(shifted, total=0.5), new_stamps, 1e-9)
    assert x2 is not None and kkt2 <= 1e-9
    expected = {i + 1 for i in np.flatnonzero(x[:-1] > 0)}  # old column i is now column i + 1
    assert calls[-1] is not None and set(calls[-1].tolist()) == expected
    # a wrong answer (a vertex of the simplex) is refused
    monkeypatch.setattr(
        stationarity_module, "min_norm_simplex", lambda P, s=None, w=None: np.eye(len(P))[0]
    )
    bad, kkt_bad = warm.solve(problem, stamps, 1e-9)
    assert bad is None and kkt_bad == np.inf and warm.refused == 1
