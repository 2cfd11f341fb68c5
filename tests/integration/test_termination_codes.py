"""One small crafted problem per termination code (SPEC Part B §3.10, Part A).

Every test checks the code and that the points handed back (final / best / most feasible) are
finite and sensible, so a run that stops for any reason still returns usable answers.
"""

from __future__ import annotations

import math
import time

import pytest
import torch

import ncvx
import ncvx._solver as solver_module
import ncvx.qp.registry as qp_registry
import ncvx.qp.solver as qp_solver
from ncvx import Status, pygranso, pygransoStruct
from ncvx.errors import QPBackendError

D = torch.float64


# ---------------------------------------------------------------------------------- helpers


def opts(**kw) -> pygransoStruct:
    o = pygransoStruct(print_level=0)
    for k, v in kw.items():
        setattr(o, k, v)
    return o


def col(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=D).reshape(-1, 1)


def assert_point_ok(pt, n: int, constrained: bool) -> None:
    assert tuple(pt.x.shape) == (n, 1)
    assert bool(torch.isfinite(pt.x).all())
    assert math.isfinite(pt.f)
    if constrained:
        assert bool(torch.isfinite(pt.ci).all()) and bool(torch.isfinite(pt.ce).all())
        assert math.isfinite(pt.tv) and pt.tv >= 0
        assert pt.mu > 0


def assert_soln_ok(soln, n: int, constrained: bool, *, best_expected: bool = True) -> None:
    assert_point_ok(soln.final, n, constrained)
    if best_expected:
        assert_point_ok(soln.best, n, constrained)
    if constrained:
        assert_point_ok(soln.most_feasible, n, constrained)
    assert isinstance(soln.iters, int) and soln.iters >= 0
    assert soln.fn_evals >= 1


def rosenbrock(X):
    x = X.x
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2, None, None


ROSEN_X0 = (-1.2, 1.0)
ROSEN_F0 = 24.2


def nonsmooth(X):
    x = X.x
    return x.abs().sum() + 3 * (x[0] - x[1]).abs(), None, None


def linear_ineq_qp(X):
    """min |x - (1, 2)|^2 s.t. x0 + x1 <= 1: solution (0, 1), f = 2, constraint active."""
    x = X.x
    ci = pygransoStruct(c=x[0] + x[1] - 1)
    return ((x - torch.tensor([1.0, 2.0], dtype=x.dtype)) ** 2).sum(), ci, None


def inactive_ineq_qp(X):
    """min |x - (1, 2)|^2 s.t. x0 <= 5: the constraint is inactive at the solution (1, 2)."""
    x = X.x
    ci = pygransoStruct(c=x[0] - 5)
    return ((x - torch.tensor([1.0, 2.0], dtype=x.dtype)) ** 2).sum(), ci, None


def boundary_start_ineq_qp(X):
    """min |x - (1, 2)|^2 s.t. x1 >= 0: active at the start (0, 0) (so steering needs a QP;
    strongly inactive constraints are left out of it), inactive at the solution (1, 2)."""
    x = X.x
    ci = pygransoStruct(c=-x[1])
    return ((x - torch.tensor([1.0, 2.0], dtype=x.dtype)) ** 2).sum(), ci, None


# ---------------------------------------------------------------------------------- 0, 1, 2


def test_code0_unconstrained_smooth_qp() -> None:
    def fn(X):
        return ((X.x - 1) ** 2).sum(), None, None

    soln = pygranso({"x": [3]}, fn, opts(x0=torch.zeros(3, 1, dtype=D)))
    assert soln.termination_code == 0
    assert_soln_ok(soln, 3, False)
    assert soln.stat_value <= 1e-8
    assert torch.allclose(soln.final.x, torch.ones(3, 1, dtype=D), atol=1e-8)


def test_code0_constrained_smooth_qp() -> None:
    soln = pygranso({"x": [2]}, linear_ineq_qp, opts(x0=col(0.0, 0.0)))
    assert soln.termination_code == 0
    assert_soln_ok(soln, 2, True)
    assert soln.final.feasible_to_tol
    assert soln.final.f == pytest.approx(2.0, abs=1e-7)
    assert torch.allclose(soln.final.x, col(0.0, 1.0), atol=1e-6)


def test_code1_rel_tol() -> None:
    soln = pygranso({"x": [2]}, rosenbrock, opts(x0=col(*ROSEN_X0), rel_tol=1e-2))
    assert soln.termination_code == 1
    assert_soln_ok(soln, 2, False)
    assert soln.iters >= 1
    assert soln.final.f < ROSEN_F0


def test_code2_fvalquit_unconstrained() -> None:
    soln = pygranso({"x": [2]}, rosenbrock, opts(x0=col(*ROSEN_X0), fvalquit=1.0))
    assert soln.termination_code == 2
    assert_soln_ok(soln, 2, False)
    assert soln.final.f <= 1.0
    assert soln.best.f <= 1.0


def test_code2_fvalquit_constrained_needs_feasibility() -> None:
    soln = pygranso({"x": [2]}, linear_ineq_qp, opts(x0=col(0.0, 0.0), fvalquit=3.0))
    # the first feasible iterate is the optimum (f = 2 <= 3, stationary): when both hold, the
    # stationarity test comes first (SPEC B §3.10 order), so code 0 is also right here
    assert soln.termination_code in (0, 2)
    assert_soln_ok(soln, 2, True)
    assert soln.final.feasible_to_tol and soln.final.f <= 3.0


# ---------------------------------------------------------------------------------- 3


def test_code3_halt_log_fn() -> None:
    seen: list[int] = []

    def halt(iteration, *_rest):
        seen.append(iteration)
        return iteration == 2

    soln = pygranso({"x": [2]}, rosenbrock, opts(x0=col(*ROSEN_X0), halt_log_fn=halt))
    assert soln.termination_code == 3
    assert soln.iters == 2
    assert seen == [0, 1, 2]
    assert_soln_ok(soln, 2, False)
    assert soln.final.f < ROSEN_F0


def test_code3_halt_log_fn_at_x0() -> None:
    soln = pygranso({"x": [2]}, rosenbrock, opts(x0=col(*ROSEN_X0), halt_log_fn=lambda *a: True))
    assert soln.termination_code == 3
    assert soln.iters == 0
    assert torch.equal(soln.final.x, col(*ROSEN_X0))


def _native_problem(x):
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2, None, None


def test_code3_native_callback_returning_true() -> None:
    calls: list[int] = []

    def cb(record):
        calls.append(record.iteration)
        return record.iteration >= 3

    res = ncvx.solve(_native_problem, torch.tensor(ROSEN_X0, dtype=D), print_level=0, callback=cb)
    assert res.status == Status.USER_HALT and int(res.status) == 3
    assert res.iters == 3 and calls == [0, 1, 2, 3]
    assert bool(torch.isfinite(res.x).all()) and res.fun < ROSEN_F0


def test_code3_native_callback_raising_stop_iteration() -> None:
    def cb(record):
        if record.iteration == 2:
            raise StopIteration

    res = ncvx.solve(_native_problem, torch.tensor(ROSEN_X0, dtype=D), print_level=0, callback=cb)
    assert res.status == Status.USER_HALT
    assert res.iters == 2
    assert res.error is None
    assert bool(torch.isfinite(res.final.x).all())


def test_code3_keyboard_interrupt_in_user_function_keeps_best_point() -> None:
    calls = {"n": 0}

    def fn(X):
        calls["n"] += 1
        if calls["n"] == 20:
            raise KeyboardInterrupt
        return rosenbrock(X)

    soln = pygranso({"x": [2]}, fn, opts(x0=col(*ROSEN_X0)))
    assert soln.termination_code == 3
    assert calls["n"] == 20
    assert soln.iters >= 1
    assert_soln_ok(soln, 2, False)
    assert soln.best.f <= soln.final.f < ROSEN_F0


# ---------------------------------------------------------------------------------- 4, 5


def test_code4_maxit() -> None:
    soln = pygranso({"x": [2]}, rosenbrock, opts(x0=col(*ROSEN_X0), maxit=3))
    assert soln.termination_code == 4
    assert soln.iters == 3
    assert_soln_ok(soln, 2, False)
    assert soln.final.f < ROSEN_F0


def test_code4_maxit_zero_returns_x0() -> None:
    soln = pygranso({"x": [2]}, linear_ineq_qp, opts(x0=col(3.0, 3.0), maxit=0))
    assert soln.termination_code == 4
    assert soln.iters == 0
    assert torch.equal(soln.final.x, col(3.0, 3.0))
    assert_soln_ok(soln, 2, True, best_expected=False)


def test_code5_maxclocktime() -> None:
    def slow(X):
        time.sleep(0.02)
        return rosenbrock(X)

    soln = pygranso({"x": [2]}, slow, opts(x0=col(*ROSEN_X0), maxclocktime=0.05))
    assert soln.termination_code == 5
    # every evaluation sleeps 20 ms, so the 50 ms budget is spent within 3 iterations however
    # loaded the machine is (counting iterations, not seconds: no wall-clock assertion)
    assert 1 <= soln.iters <= 3
    assert_soln_ok(soln, 2, False)


# ---------------------------------------------------------------------------------- 6, 7


def test_code6_linesearch_bracket_failure_at_feasible_point() -> None:
    # d = -grad at x0 = (1, 2) overshoots the kink: the only allowed trial point is too far
    soln = pygranso({"x": [2]}, nonsmooth, opts(x0=col(1.0, 2.0), linesearch_maxit=1))
    assert soln.termination_code == 6
    assert_soln_ok(soln, 2, False)
    assert torch.equal(soln.final.x, col(1.0, 2.0))  # rolled back to the last accepted point


def test_code6_after_fallbacks_when_not_halting_on_bracket() -> None:
    soln = pygranso(
        {"x": [2]},
        nonsmooth,
        opts(x0=col(1.0, 2.0), linesearch_maxit=1, halt_on_linesearch_bracket=False),
    )
    assert soln.termination_code == 6
    assert soln.fn_evals == 3  # x0, one QN trial, one GD trial
    assert_soln_ok(soln, 2, False)


def test_code6_after_some_progress() -> None:
    soln = pygranso({"x": [2]}, nonsmooth, opts(x0=col(1.0, 2.0), linesearch_maxit=3))
    assert soln.termination_code == 6
    assert soln.iters >= 1
    assert_soln_ok(soln, 2, False)
    assert soln.final.f < 6.0  # f(x0) = 6


def test_code7_linesearch_failure_at_infeasible_point() -> None:
    def fn(X):
        x = X.x
        ci = pygransoStruct(c=1 - x[0])  # x >= 1; x0 = 0 is infeasible
        return 1000 * ((x + 1) ** 2).sum(), ci, None

    soln = pygranso({"x": [1]}, fn, opts(x0=col(0.0), linesearch_maxit=1))
    assert soln.termination_code == 7
    assert_soln_ok(soln, 1, True, best_expected=False)
    assert not soln.final.feasible_to_tol
    assert not hasattr(soln, "best")  # no point feasible to tolerance was seen
    assert soln.most_feasible.tv <= soln.final.tv


# ---------------------------------------------------------------------------------- 8, 9


def test_code8_unbounded_unconstrained() -> None:
    def fn(X):
        return X.x.sum(), None, None

    soln = pygranso({"x": [2]}, fn, opts(x0=col(0.0, 0.0)))
    assert soln.termination_code == 8
    assert_soln_ok(soln, 2, False)
    assert soln.best.f < -1e3  # the trial points ran off towards -inf


def test_code8_unbounded_constrained_sets_mu_lowest() -> None:
    def fn(X):
        x = X.x
        ci = pygransoStruct(c=x[1] - 1)
        return x[0] + x[1], ci, None

    soln = pygranso({"x": [2]}, fn, opts(x0=col(0.0, 0.0), mu0=1.0))
    assert soln.termination_code == 8
    assert_soln_ok(soln, 2, True)
    # default linesearch_reattempts_x0 = 10 halvings of mu (linesearch_c_mu_x0 = 0.5)
    assert soln.mu_lowest == pytest.approx(0.5**10)
    assert soln.best.feasible_to_tol and soln.best.f < -1e3


def test_code9_no_descent_direction() -> None:
    # grad phi = 0 at x0 = 0 but ce = x^2 + 1 can never be satisfied: no direction descends
    def fn(X):
        x = X.x
        ce = pygransoStruct(c=x[0] ** 2 + 1)
        return (x**2).sum(), None, ce

    for max_level in (3, 4):
        soln = pygranso({"x": [1]}, fn, opts(x0=col(0.0), max_fallback_level=max_level))
        assert soln.termination_code == 9
        assert soln.iters == 0
        assert_soln_ok(soln, 1, True, best_expected=False)


# ---------------------------------------------------------------------------------- 11


def test_code11_user_function_raises_mid_run() -> None:
    calls = {"n": 0}
    err = ZeroDivisionError("boom on evaluation 20")

    def fn(X):
        calls["n"] += 1
        if calls["n"] == 20:
            raise err
        return rosenbrock(X)

    soln = pygranso({"x": [2]}, fn, opts(x0=col(*ROSEN_X0)))
    assert soln.termination_code == 11
    assert soln.error is err
    assert soln.iters >= 1
    assert_soln_ok(soln, 2, False)
    assert soln.best.f <= soln.final.f < ROSEN_F0


def test_code11_native_api_keeps_points() -> None:
    calls = {"n": 0}

    def fn(x):
        calls["n"] += 1
        if calls["n"] == 5:
            raise ValueError("bad region")
        ci = x[0] + x[1] - 1
        return ((x - torch.tensor([1.0, 2.0], dtype=x.dtype)) ** 2).sum(), ci, None

    res = ncvx.solve(fn, torch.zeros(2, dtype=D), print_level=0)
    assert res.status == Status.USER_FUNCTION_ERROR
    assert isinstance(res.error, ValueError) and "bad region" in str(res.error)
    assert not res.success
    assert bool(torch.isfinite(res.final.x).all()) and math.isfinite(res.final.f)
    assert bool(torch.isfinite(res.most_feasible.x).all())


# ---------------------------------------------------------------------------------- 12


def _failing_steering_runner(active: dict):
    """Wrap the QP backend runners: QPs without an equality row (the steering QPs) fail
    while ``active["on"]``; termination QPs (with the row sum y_f = mu) still work.
    (Callers also switch off the closed form of one-variable QPs, which calls no backend.)"""
    real = qp_registry.runner

    def runner(name):
        run = real(name)

        def wrapped(P, q, lb, ub, A, b, x0):
            if A is None and active["on"]:
                raise RuntimeError("injected steering QP failure")
            return run(P, q, lb, ub, A, b, x0)

        return wrapped

    return runner


def test_code12_steering_qp_failure_without_fallback(monkeypatch) -> None:
    monkeypatch.setattr(qp_solver, "ONE_VARIABLE_CLOSED_FORM", False)
    monkeypatch.setattr(qp_registry, "runner", _failing_steering_runner({"on": True}))
    soln = pygranso({"x": [2]}, linear_ineq_qp, opts(x0=col(0.0, 0.0), max_fallback_level=0))
    assert soln.termination_code == 12
    assert isinstance(soln.error, QPBackendError)
    assert soln.quadprog_failure_rate > 0
    assert soln.iters == 0
    assert_soln_ok(soln, 2, True)
    assert torch.equal(soln.final.x, col(0.0, 0.0))


def test_code12_not_reached_with_default_fallbacks(monkeypatch) -> None:
    # steering always fails: the ladder falls back to QN (level 2) and still converges
    monkeypatch.setattr(qp_solver, "ONE_VARIABLE_CLOSED_FORM", False)
    monkeypatch.setattr(qp_registry, "runner", _failing_steering_runner({"on": True}))
    soln = pygranso({"x": [2]}, boundary_start_ineq_qp, opts(x0=col(0.0, 0.0)))
    assert soln.termination_code == 0
    assert soln.quadprog_failure_rate > 0
    assert soln.error is None
    assert torch.allclose(soln.final.x, col(1.0, 2.0), atol=1e-6)


def test_steering_failure_in_first_iteration_falls_back_then_steers(monkeypatch) -> None:
    # steering fails during iteration 1 only (S and SI fail, QN is used), then works again
    active = {"on": True}
    monkeypatch.setattr(qp_solver, "ONE_VARIABLE_CLOSED_FORM", False)
    monkeypatch.setattr(qp_registry, "runner", _failing_steering_runner(active))
    levels: list[int] = []

    def log(iteration, *args):
        levels.append(args[-1])
        if iteration >= 1:
            active["on"] = False

    soln = pygranso({"x": [2]}, linear_ineq_qp, opts(x0=col(0.0, 0.0), halt_log_fn=log))
    assert levels[1] == 2  # iteration 1 used the QN fallback
    assert 0 in levels[2:]  # later iterations steer again
    assert soln.termination_code == 0
    assert soln.quadprog_failure_rate > 0
    assert soln.final.f == pytest.approx(2.0, abs=1e-6)


# ---------------------------------------------------------------------------------- 13


def test_code13_internal_error_keeps_points(monkeypatch) -> None:
    real = solver_module.weak_wolfe
    calls = {"n": 0}
    boom = RuntimeError("injected internal failure")

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise boom
        return real(*args, **kwargs)

    monkeypatch.setattr(solver_module, "weak_wolfe", flaky)
    soln = pygranso({"x": [2]}, linear_ineq_qp, opts(x0=col(0.0, 0.0)))
    assert soln.termination_code == 13
    assert soln.error is boom
    assert soln.iters == 2
    assert_soln_ok(soln, 2, True)
    assert soln.final.f < 5.0  # f(x0) = 5; two steps were accepted


def test_code13_internal_error_in_bfgs_update(monkeypatch) -> None:
    from ncvx.hessian import DenseBFGS

    real = DenseBFGS.update
    calls = {"n": 0}

    def flaky(self, s, y):
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("update exploded")
        return real(self, s, y)

    monkeypatch.setattr(DenseBFGS, "update", flaky)
    soln = pygranso({"x": [2]}, rosenbrock, opts(x0=col(*ROSEN_X0)))
    assert soln.termination_code == 13
    assert "update exploded" in str(soln.error)
    assert_soln_ok(soln, 2, False)
    assert soln.best.f < ROSEN_F0


# ---------------------------------------------------------------------------------- NaN


def test_nan_objective_at_trial_points_is_too_far() -> None:
    target = torch.tensor([-2.9, 0.0], dtype=D)
    nan_calls = {"n": 0}

    def fn(X):
        x = X.x
        f = ((x - target.to(x.dtype)) ** 2).sum()
        if float(x.detach().norm()) > 3.0:  # undefined outside the disk of radius 3
            nan_calls["n"] += 1
            f = f * float("nan")
        return f, None, None

    soln = pygranso({"x": [2]}, fn, opts(x0=col(2.5, 0.0)))
    assert nan_calls["n"] >= 1  # the first quasi-Newton trial leaves the disk
    assert soln.termination_code == 0
    assert_soln_ok(soln, 2, False)
    assert torch.allclose(soln.best.x.reshape(-1), target, atol=1e-6)


def test_nan_constraint_at_trial_points_is_too_far() -> None:
    nan_calls = {"n": 0}

    def fn(X):
        x = X.x
        nan_calls["n"] += int(float(x[0].detach()) < 0)
        # sqrt(x0) is NaN for x0 < 0; the unconstrained minimiser of f is at x0 = -3
        ci = pygransoStruct(c=1 - torch.sqrt(x[0]))  # x0 >= 1
        return (x[0] + 3) ** 2 + (x[1] - 1) ** 2, ci, None

    soln = pygranso({"x": [2]}, fn, opts(x0=col(4.0, 0.0)))
    assert nan_calls["n"] >= 1
    assert soln.termination_code in (0, 6)
    assert_soln_ok(soln, 2, True)
    for pt in (soln.final, soln.best, soln.most_feasible):
        assert not math.isnan(pt.f) and not math.isnan(pt.tv)
    assert soln.best.x[0, 0] == pytest.approx(1.0, abs=1e-5)
    assert soln.best.f == pytest.approx(16.0, abs=1e-4)
