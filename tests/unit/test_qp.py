"""Unit tests of the QP layer ``ncvx.qp``."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ncvx.errors import QPBackendError
from ncvx.qp import (
    QPProblem,
    QPSolution,
    QPSolver,
    available_backends,
    kkt_residuals,
    registry,
    select_backend,
)
from ncvx.qp.check import best_multiplier
from ncvx.qp.solver import polish, restore_feasibility

BACKENDS = available_backends()
TOL = 1e-9


def _gram(rng: np.random.Generator, n: int, k: int, spread: float = 0.0) -> np.ndarray:
    C = rng.standard_normal((n, k)) * np.logspace(-spread, spread, k)
    return C.T @ C


def _simplex_problem(G: np.ndarray, mu: float = 1.0) -> QPProblem:
    """Min-norm point of conv(columns of G) scaled by mu: weights in [0, mu] summing to mu."""
    k = G.shape[1]
    return QPProblem(G.T @ G, np.zeros(k), np.zeros(k), np.full(k, mu), np.ones((1, k)), [mu])


# --------------------------------------------------------------------------- registry


def test_auto_backend_is_available() -> None:
    assert BACKENDS, "osqp is a hard dependency, so at least one backend must exist"
    assert select_backend("auto") in BACKENDS
    assert select_backend(BACKENDS[-1]) == BACKENDS[-1]


def test_unknown_backend_rejected() -> None:
    with pytest.raises(ValueError, match="unknown QP backend"):
        select_backend("no-such-solver")
    with pytest.raises(ValueError, match="unknown fallback"):
        QPSolver(fallbacks=("no-such-solver",))


def test_capability_flags_cover_every_backend() -> None:
    for name, info in registry.BACKENDS.items():
        assert info.name == name
        assert isinstance(info.needs_pd, bool) and isinstance(info.dense, bool)
    assert set(registry.AUTO_PREFERENCE) <= set(registry.BACKENDS)


def test_import_is_lazy() -> None:
    code = (
        "import sys, ncvx.qp; "
        "bad = [m for m in ('gurobipy', 'qpsolvers', 'osqp', 'daqp') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"P": np.eye(2), "q": np.zeros(3)}, "q must have shape"),
        ({"P": np.ones((2, 3))}, "square"),
        ({"P": np.array([[1.0, 2.0], [0.0, 1.0]])}, "symmetric"),
        ({"P": -np.eye(2)}, "negative diagonal"),
        ({"q": np.array([np.nan, 0.0])}, "NaN"),
        ({"lb": np.array([0.0, 2.0])}, "lb > ub"),
        ({"ub": np.array([np.inf, 1.0])}, "infinite"),
        ({"A": np.ones((1, 2))}, "together"),
        ({"A": np.ones((2, 2)), "b": np.ones(2)}, "one row"),
        ({"A": np.ones((1, 2)), "b": [5.0]}, "infeasible"),
    ],
)
def test_bad_input_rejected(kwargs: dict, match: str) -> None:
    base = {"P": np.eye(2), "q": np.zeros(2), "lb": -np.ones(2), "ub": np.ones(2)}
    base.update(kwargs)
    with pytest.raises(ValueError, match=match):
        QPProblem(**base)


def test_problem_accepts_flat_row_and_scalar_rhs() -> None:
    p = QPProblem(np.eye(3), np.zeros(3), np.zeros(3), np.ones(3), np.ones(3), 1.0)
    assert p.A is not None and p.A.shape == (1, 3)
    assert p.b is not None and p.b.shape == (1,)


# --------------------------------------------------------------------------- closed forms


@pytest.mark.parametrize("backend", BACKENDS)
def test_box_projection(backend: str) -> None:
    z = np.array([2.0, -0.3, -5.0, 0.7, 1.0])
    p = QPProblem(np.eye(5), -z, -np.ones(5), np.ones(5))
    sol = QPSolver(backend, fallbacks=()).solve(p)
    np.testing.assert_allclose(sol.x, np.clip(z, -1, 1), atol=1e-8)
    assert sol.status == "optimal" and sol.kkt <= TOL


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mu", [1.0, 1e-3])
def test_min_norm_three_vectors(backend: str, mu: float) -> None:
    # conv{(1,1), (-1,1), (0,2)}: nearest point to 0 is (0,1) = ½g1 + ½g2.
    G = np.array([[1.0, -1.0, 0.0], [1.0, 1.0, 2.0]])
    sol = QPSolver(backend, fallbacks=()).solve(_simplex_problem(G, mu))
    np.testing.assert_allclose(sol.x / mu, [0.5, 0.5, 0.0], atol=1e-7)
    np.testing.assert_allclose(G @ sol.x / mu, [0.0, 1.0], atol=1e-7)
    assert sol.x.sum() == pytest.approx(mu, rel=1e-14)


@pytest.mark.parametrize("backend", BACKENDS)
def test_min_norm_vertex_and_origin(backend: str) -> None:
    solver = QPSolver(backend, fallbacks=())
    # segment [(1,0), (2,1)]: (1,0)·((2,1)-(1,0)) > 0, so the vertex (1,0) is nearest.
    vertex = solver.solve(_simplex_problem(np.array([[1.0, 2.0], [0.0, 1.0]])))
    np.testing.assert_allclose(vertex.x, [1.0, 0.0], atol=1e-8)
    # conv{(1,0), (-1,1), (-1,-1)} contains 0: weights (½, ¼, ¼).
    G = np.array([[1.0, -1.0, -1.0], [0.0, 1.0, -1.0]])
    inside = solver.solve(_simplex_problem(G))
    assert np.linalg.norm(G @ inside.x) <= 1e-8
    np.testing.assert_allclose(inside.x, [0.5, 0.25, 0.25], atol=1e-7)


# --------------------------------------------------------------------------- agreement


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("with_row", [False, True])
def test_backends_agree_on_rank_deficient_gram(seed: int, with_row: bool) -> None:
    rng = np.random.default_rng(seed)
    k, n = 40, 6
    P = _gram(rng, n, k, spread=1.0)
    q = rng.standard_normal(k)
    if with_row:
        on = np.arange(k) < 10
        p = QPProblem(P, q, np.zeros(k), np.where(on, 0.2, 1.0), on[None, :] * 1.0, [0.2])
    else:
        p = QPProblem(P, q, -np.ones(k), np.ones(k))
    values = {}
    for backend in BACKENDS:
        sol = QPSolver(backend, fallbacks=()).solve(p)
        assert sol.kkt <= 1e-7, (backend, sol.kkt)
        assert kkt_residuals(p, sol.x)["kkt"] == pytest.approx(sol.kkt)
        values[backend] = p.objective(sol.x)
    spread = max(values.values()) - min(values.values())
    assert spread <= 1e-7 * max(1.0, *map(abs, values.values())), values


# --------------------------------------------------------------------------- properties


@st.composite
def _problems(draw: st.DrawFn) -> tuple[QPProblem, np.ndarray]:
    seed = draw(st.integers(0, 2**32 - 1))
    k = draw(st.integers(1, 12))
    n = draw(st.integers(1, 6))
    scale = 10.0 ** draw(st.integers(-4, 4))
    spread = draw(st.sampled_from([0.0, 2.0]))
    rng = np.random.default_rng(seed)
    G = rng.standard_normal((n, k)) * np.logspace(-spread, spread, k) * scale
    kind = draw(st.sampled_from(["steer", "term"]))
    if kind == "steer":
        q = rng.standard_normal(k) * scale**2
        lb = np.where(rng.random(k) < 0.5, -1.0, 0.0)
        return QPProblem(G.T @ G, q, lb, np.ones(k)), G
    mu = 10.0 ** draw(st.integers(-3, 0))
    return _simplex_problem(G, mu), G


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_problems())
def test_solutions_satisfy_kkt(case: tuple[QPProblem, np.ndarray]) -> None:
    problem, G = case
    sol = QPSolver().solve(problem)
    res = kkt_residuals(problem, sol.x)
    assert res["kkt"] <= 1e-8, res
    assert np.all(sol.x >= problem.lb) and np.all(sol.x <= problem.ub)
    if problem.has_equality:
        mu = float(problem.b[0])
        assert abs(sol.x.sum() - mu) <= 1e-12 * max(1.0, mu) * problem.k
        # min-norm value ≤ norm of every single (mu-scaled) generator
        value = np.linalg.norm(G @ sol.x)
        norms = mu * np.linalg.norm(G, axis=0)
        assert np.all(value <= norms * (1 + 1e-7) + 1e-12 * norms.max())


# --------------------------------------------------------------------------- kkt check


def test_kkt_equality_multiplier_estimate() -> None:
    # min ½‖y‖² s.t. y1 + y2 = 1, 0 ≤ y ≤ 1 → y = (½, ½), y + ν·1 = 0 → ν = -½.
    p = QPProblem(np.eye(2), np.zeros(2), np.zeros(2), np.ones(2), np.ones((1, 2)), [1.0])
    res = kkt_residuals(p, np.array([0.5, 0.5]))
    assert res["kkt"] <= 1e-15
    assert res["nu"] == pytest.approx(-0.5)
    assert kkt_residuals(p, np.array([1.0, 0.0]))["kkt"] >= 0.1


def test_kkt_with_backend_duals() -> None:
    # min ½‖y - (2, 0)‖² on [-1, 1]²: y = (1, 0), upper bound of y1 active with z = +1.
    p = QPProblem(np.eye(2), np.array([-2.0, 0.0]), -np.ones(2), np.ones(2))
    good = kkt_residuals(p, np.array([1.0, 0.0]), {"z_box": np.array([1.0, 0.0])})
    assert good["kkt"] == 0.0
    wrong = kkt_residuals(p, np.array([1.0, 0.0]), {"z_box": np.array([0.0, 0.0])})
    assert wrong["dual"] > 0.1
    assert kkt_residuals(p, np.array([2.0, 0.0]))["primal"] == pytest.approx(1.0)
    assert kkt_residuals(p, np.array([np.nan, 0.0]))["kkt"] == np.inf


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_best_multiplier_minimises_natural_residual(seed: int) -> None:
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, 8))
    a = rng.choice([-2.0, 0.0, 1.0, 3.0], size=k)
    lb = -rng.random(k)
    ub = rng.random(k)
    x = lb + (ub - lb) * rng.random(k)
    g = rng.standard_normal(k)

    def resid(nu: float) -> float:
        return float(np.max(np.abs(x - np.clip(x - g - a * nu, lb, ub))))

    nu = best_multiplier(x, g, a, lb, ub)
    grid = np.linspace(-20.0, 20.0, 4001)
    assert resid(nu) <= min(resid(v) for v in grid) + 1e-12


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(20, 400))
def test_best_multiplier_large_rows(seed: int, k: int) -> None:
    # many kinks: the bracketing takes several vectorised rounds before the Newton steps
    rng = np.random.default_rng(seed)
    a = rng.choice([-2.0, 0.0, 0.5, 1.0, 3.0], size=k)
    lb = -rng.random(k)
    ub = rng.random(k)
    x = lb + (ub - lb) * rng.random(k)
    g = rng.standard_normal(k)

    def resid(nu: np.ndarray) -> np.ndarray:
        r = x - np.clip(x - g - a * np.asarray(nu)[..., None], lb, ub)
        return np.max(np.abs(r), axis=-1)

    nu = best_multiplier(x, g, a, lb, ub)
    grid = np.linspace(-15.0, 15.0, 30001)
    assert float(resid(nu)) <= float(resid(grid).min()) + 1e-12


def test_restore_feasibility_keeps_box_and_row() -> None:
    rng = np.random.default_rng(3)
    k = 20
    on = np.arange(k) < 8
    p = QPProblem(
        np.eye(k), np.zeros(k), np.zeros(k), np.where(on, 0.5, 1.0), on[None] * 1.0, [0.5]
    )
    for _ in range(20):
        x = restore_feasibility(p, rng.random(k) * 0.2 - 0.05)
        assert np.all(x >= p.lb) and np.all(x <= p.ub)
        assert x[on].sum() == pytest.approx(0.5, abs=1e-15)


def test_polish_makes_perturbed_solution_exact() -> None:
    # a degenerate bound (z = 1 exactly at ub) approached from inside, as interior-point
    # methods do, plus noise on the free coordinates
    z = np.array([2.0, -0.3, -5.0, 0.7, 1.0])
    p = QPProblem(np.eye(5), -z, -np.ones(5), np.ones(5))
    rough = np.array([0.9999, -0.3001, -0.9999, 0.7002, 0.9998])
    x, kkt = polish(p, rough)
    assert kkt <= 1e-15 < kkt_residuals(p, rough)["kkt"]
    np.testing.assert_allclose(x, np.clip(z, -1, 1), atol=1e-15)


def test_polish_on_singular_face_with_row() -> None:
    # conv{(1,1), (-1,1), (0,2), (0,2)}: duplicated generator makes the face singular
    G = np.array([[1.0, -1.0, 0.0, 0.0], [1.0, 1.0, 2.0, 2.0]])
    p = _simplex_problem(G)
    x, kkt = polish(p, np.full(4, 0.25))
    assert kkt <= 1e-12
    np.testing.assert_allclose(G @ x, [0.0, 1.0], atol=1e-12)


def test_badly_scaled_gram_is_solved_accurately() -> None:
    # Jacobian columns spanning 1e-3..1e3 and an ill-conditioned inverse Hessian, k > n
    rng = np.random.default_rng(5)
    k, n = 60, 8
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    H = (Q * np.logspace(0, -6, n)) @ Q.T
    C = rng.standard_normal((n, k)) * np.logspace(-3, 3, k)[rng.permutation(k)]
    P = C.T @ H @ C
    P = 0.5 * (P + P.T)
    q = 0.1 * C.T @ (H @ rng.standard_normal(n)) - rng.standard_normal(k)
    p = QPProblem(P, q, np.where(np.arange(k) < 15, -1.0, 0.0), np.ones(k))
    sol = QPSolver().solve(p)
    assert sol.status == "optimal" and kkt_residuals(p, sol.x)["kkt"] <= TOL
    values = [p.objective(QPSolver(b).solve(p).x) for b in BACKENDS]
    assert max(values) - min(values) <= 1e-9 * abs(min(values))


# --------------------------------------------------------------------------- ladder


def _patch_runner(monkeypatch: pytest.MonkeyPatch, broken: str, behaviour: str) -> None:
    original = registry.runner

    def runner(name: str):
        if name != broken:
            return original(name)

        def run(P, q, lb, ub, A, b, x0):
            if behaviour == "raise":
                raise RuntimeError("simulated backend crash")
            return np.full(q.shape, 0.5 * (lb[0] + ub[0]) + 0.3)  # feasible but wrong

        return run

    monkeypatch.setattr(registry, "runner", runner)


@pytest.mark.parametrize("behaviour", ["raise", "inaccurate"])
def test_fallback_counts_failure(monkeypatch: pytest.MonkeyPatch, behaviour: str) -> None:
    primary = BACKENDS[0]
    others = tuple(b for b in BACKENDS if b != primary)
    if not others:
        pytest.skip("needs two backends")
    _patch_runner(monkeypatch, primary, behaviour)
    # without polishing, which would repair the wrong point of the "inaccurate" stub
    solver = QPSolver(primary, fallbacks=others[:1], polish=False)
    p = QPProblem(np.eye(3), np.array([-2.0, 0.1, 0.0]), -np.ones(3), np.ones(3))
    sol = solver.solve(p)
    np.testing.assert_allclose(sol.x, [1.0, -0.1, 0.0], atol=1e-8)
    assert sol.backend.startswith(others[0])
    assert (solver.requests, solver.failures, solver.hard_failures) == (1, 1, 0)
    assert solver.failure_rate == pytest.approx(100.0)
    assert sol.attempts >= 2
    solver.solve(p)
    assert solver.failure_rate == pytest.approx(100.0)


def test_keyed_family_starts_at_the_rung_that_answered(monkeypatch: pytest.MonkeyPatch) -> None:
    primary = BACKENDS[0]
    others = tuple(b for b in BACKENDS if b != primary)
    if not others:
        pytest.skip("needs two backends")
    _patch_runner(monkeypatch, primary, "raise")
    solver = QPSolver(primary, fallbacks=others[:1], polish=False)
    p = QPProblem(np.eye(3), np.array([-2.0, 0.1, 0.0]), -np.ones(3), np.ones(3))
    solver.solve(p, key="family")
    assert solver.last_attempts[0].startswith(primary)  # the usual order the first time
    sol = solver.solve(p, key="family")
    assert sol.backend.startswith(others[0])
    assert solver.last_attempts[0].startswith(others[0])  # the rung that answered goes first
    assert len(solver.last_attempts) == 1
    solver.solve(p)  # without the key: the usual order
    assert solver.last_attempts[0].startswith(primary)


def test_keyed_family_that_missed_tol_settles_within_loose_tol(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A family whose last answer was only within ``loose_tol`` stops the next QP's proximal
    steps at its first answer within ``loose_tol``."""
    pd = [b for b in BACKENDS if registry.BACKENDS[b].needs_pd]
    if not pd:
        pytest.skip("needs a backend with proximal steps")
    original = registry.runner
    calls = []

    def runner(name: str):
        run = original(name)

        def counted(P, q, lb, ub, A, b, x0):
            calls.append(name)
            x = np.asarray(run(P, q, lb, ub, A, b, x0), dtype=float)
            return x + 1e-8 * (ub - lb)  # always a little off: within loose_tol, not tol

        return counted

    monkeypatch.setattr(registry, "runner", runner)
    solver = QPSolver(pd[0], fallbacks=(), polish=False, tol=1e-12, loose_tol=1e-4)
    p = QPProblem(np.diag([2.0, 1.0, 3.0]), np.array([-1.0, 0.5, 0.2]), -np.ones(3), np.ones(3))
    first = solver.solve(p, key="family")
    assert first.status == "inaccurate" and len(calls) == solver.prox_steps
    calls.clear()
    second = solver.solve(p, key="family")
    assert second.status == "inaccurate" and len(calls) == 1


def test_per_call_loose_tolerance(monkeypatch: pytest.MonkeyPatch) -> None:
    """``solve(..., loose_tol=)`` accepts an answer the solver's own ``loose_tol`` rejects, and
    never goes below ``tol``."""
    primary = BACKENDS[0]
    original = registry.runner

    def runner(name: str):
        run = original(name)

        def off(P, q, lb, ub, A, b, x0):
            x = np.asarray(run(P, q, lb, ub, A, b, x0), dtype=float)
            return x + 1e-3 * (ub - lb)  # a relative KKT error of about 1e-3

        return off

    monkeypatch.setattr(registry, "runner", runner)
    solver = QPSolver(primary, fallbacks=(), polish=False, tol=1e-9, loose_tol=1e-6)
    p = QPProblem(np.diag([2.0, 1.0, 3.0]), np.array([-1.0, 0.5, 0.2]), -np.ones(3), np.ones(3))
    with pytest.raises(QPBackendError, match="loose tolerance 1e-06"):
        solver.solve(p)
    sol = solver.solve(p, loose_tol=1e-1)
    assert sol.status == "inaccurate" and 1e-6 < sol.kkt <= 1e-1
    with pytest.raises(QPBackendError, match="loose tolerance 1e-09"):
        solver.solve(p, loose_tol=0.0)  # clipped to tol


def test_all_attempts_fail_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    primary = BACKENDS[0]
    _patch_runner(monkeypatch, primary, "raise")
    solver = QPSolver(primary, fallbacks=())
    p = QPProblem(np.eye(2), np.ones(2), -np.ones(2), np.ones(2))
    with pytest.raises(QPBackendError, match=rf"{primary}.*simulated backend crash"):
        solver.solve(p)
    assert (solver.requests, solver.failures, solver.hard_failures) == (1, 1, 1)


def test_bogus_registered_backend_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    bogus = registry.BackendInfo(
        "bogus", "numpy", dense=True, needs_pd=False, returns_duals=False, warm_start=False
    )
    monkeypatch.setitem(registry.BACKENDS, "bogus", bogus)
    solver = QPSolver("bogus", fallbacks=(BACKENDS[0],))
    sol = solver.solve(QPProblem(np.eye(2), np.ones(2), -np.ones(2), np.ones(2)))
    np.testing.assert_allclose(sol.x, [-1.0, -1.0], atol=1e-9)
    assert solver.failures == 1 and solver.hard_failures == 0
    assert any("bogus" in line for line in solver.last_attempts)


def test_pd_backend_on_singular_matrix() -> None:
    needs_pd = [b for b in BACKENDS if registry.BACKENDS[b].needs_pd]
    if not needs_pd:
        pytest.skip("no backend needing a positive definite P")
    p = QPProblem(np.zeros((3, 3)), np.array([1.0, -1.0, 0.0]), -np.ones(3), np.ones(3))
    for backend in needs_pd:
        sol = QPSolver(backend, fallbacks=()).solve(p)
        np.testing.assert_allclose(sol.x[:2], [-1.0, 1.0], atol=1e-8)


def test_solution_fields_and_warm_start() -> None:
    rng = np.random.default_rng(7)
    P = _gram(rng, 4, 10)
    p = QPProblem(P, rng.standard_normal(10), -np.ones(10), np.ones(10))
    solver = QPSolver()
    sol = solver.solve(p)
    assert isinstance(sol, QPSolution) and sol.seconds >= 0.0 and sol.attempts >= 1
    again = solver.solve(p, x0=sol.x)
    assert again.kkt <= TOL
    np.testing.assert_allclose(P @ again.x, P @ sol.x, atol=1e-7)


@pytest.mark.parametrize("backend", BACKENDS)
def test_solve_many_matches_solve(backend: str) -> None:
    rng = np.random.default_rng(11)
    k = 15
    C = rng.standard_normal((5, k))
    P = C.T @ C
    c0, c1 = rng.standard_normal(k), rng.standard_normal(k)
    qs = [c0 + mu * c1 for mu in (1.0, 0.5, 0.25, 0.0)]
    lb = np.where(np.arange(k) < 4, -1.0, 0.0)
    solver = QPSolver(backend)
    many = solver.solve_many(P, qs, lb, np.ones(k))
    assert solver.requests == len(qs)
    for q, sol in zip(qs, many, strict=True):
        single = QPSolver(backend).solve(QPProblem(P, q, lb, np.ones(k)))
        assert sol.kkt <= TOL
        assert QPProblem(P, q, lb, np.ones(k)).objective(sol.x) == pytest.approx(
            QPProblem(P, q, lb, np.ones(k)).objective(single.x), rel=1e-8, abs=1e-10
        )
    assert solver.solve_many(P, [], lb, np.ones(k)) == []


def test_backend_output_is_silenced(capfd: pytest.CaptureFixture[str]) -> None:
    if "osqp" not in BACKENDS:
        pytest.skip("osqp missing")
    # P = 0, q = 0: OSQP's C code prints "Polishing not needed" when nothing is active.
    QPSolver("osqp", fallbacks=()).solve(
        QPProblem(np.zeros((3, 3)), np.zeros(3), -np.ones(3), np.ones(3))
    )
    out, err = capfd.readouterr()
    assert out == "" and err == ""


@pytest.mark.gurobi
def test_gurobi_backend() -> None:
    pytest.importorskip("gurobipy")
    if not registry.is_available("gurobi"):
        pytest.skip("gurobipy present but not licensed")
    G = np.array([[1.0, -1.0, 0.0], [1.0, 1.0, 2.0]])
    sol = QPSolver("gurobi", fallbacks=()).solve(_simplex_problem(G))
    np.testing.assert_allclose(sol.x, [0.5, 0.5, 0.0], atol=1e-6)
    assert sol.kkt <= 1e-6


@settings(max_examples=60, deadline=None)
@given(
    p=st.one_of(st.just(0.0), st.floats(1e-8, 1e4)),
    q=st.floats(-1e3, 1e3),
    lo=st.floats(-5.0, 5.0),
    width=st.floats(0.0, 10.0),
)
def test_one_variable_qp_closed_form(p, q, lo, width):
    """k = 1 without an equality row is answered in closed form: the box minimiser."""
    problem = QPProblem(np.array([[p]]), np.array([q]), np.array([lo]), np.array([lo + width]))
    sol = QPSolver().solve(problem)
    assert sol.backend == "closed-form" and sol.status == "optimal"
    grid = np.linspace(lo, lo + width, 2001)
    values = 0.5 * p * grid**2 + q * grid
    best = float(values.min())
    x = float(sol.x[0])
    assert lo <= x <= lo + width
    assert 0.5 * p * x**2 + q * x <= best + 1e-9 * (1.0 + abs(best))
