"""PyGRANSO's reproducible examples (SPEC Part B §7) solved by ncvx through the compatible API.

Each test asserts the termination code class, feasibility, and the objective against the known
optimum or the reference implementation's value.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ncvx import pygransoStruct
from ncvx.examples import EXAMPLES

SUCCESS = {0, 2}  # certified: stationary, or target reached
ACCEPTABLE = {0, 2, 6}  # 6: best attainable accuracy on a nonsmooth problem


def _pick(soln):
    return getattr(soln, "best", soln.final)


def test_a1_rosenbrock_reaches_the_kink_optimum() -> None:
    ex = EXAMPLES["rosenbrock"]()
    soln = ex.solve(print_level=0)
    assert soln.termination_code in ACCEPTABLE
    x = _pick(soln).x.reshape(-1)
    assert torch.allclose(x, torch.tensor([2**-0.5, 0.5], dtype=x.dtype), atol=1e-6)
    assert _pick(soln).tv <= 1e-6
    assert math.isclose(_pick(soln).f, ex.f_ref, rel_tol=1e-7)


def test_a1_far_start_hits_maxit_then_warm_restart_converges() -> None:
    ex = EXAMPLES["rosenbrock"](x0=(5.5, 5.5))
    first = ex.solve(print_level=0, maxit=10, mu0=100.0)
    assert first.termination_code == 4 and first.iters == 10
    second = ex.solve(
        print_level=0,
        x0=first.final.x,
        mu0=first.final.mu,
        H0=first.H_final,
        scaleH0=False,
        opt_tol=1e-6,
        maxit=100,
    )
    assert second.termination_code in SUCCESS
    assert second.final.tv <= 1e-6
    # The certificate (stationarity <= opt_tol over gradients sampled within evaldist = 1e-4)
    # places x within ~evaldist of a Clarke stationary point, so f is within about
    # Lipschitz(f) * evaldist ~ 11 * 1e-4 of f*: PyGRANSO's run stops at 0.08580889928.
    assert abs(second.final.f - ex.f_ref) <= 11 * 1e-4


def test_a1_lbfgs_warm_restart() -> None:
    ex = EXAMPLES["rosenbrock"](x0=(5.5, 5.5))
    first = ex.solve(print_level=0, maxit=10, mu0=100.0, limited_mem_size=1)
    assert first.termination_code == 4
    assert set(first.H_final) >= {"S", "Y", "rho", "gamma"}
    second = ex.solve(
        print_level=0,
        x0=first.final.x,
        mu0=first.final.mu,
        limited_mem_size=1,
        limited_mem_warm_start=first.H_final,
        scaleH0=False,
        limited_mem_fixed_scaling=False,
        maxit=200,
        opt_tol=1e-6,
    )
    assert second.termination_code in ACCEPTABLE
    assert _pick(second).tv <= 1e-6
    assert math.isclose(_pick(second).f, ex.f_ref, rel_tol=1e-3)


def test_a2_spectral_abscissa_short_run_makes_progress() -> None:
    ex = EXAMPLES["spectral_abscissa"](maxit=10)
    X0 = pygransoStruct(X=torch.zeros(10, 20, dtype=torch.double))
    f0, ci0, _ = ex.combined_fn(X0)
    phi0 = float(f0) + max(float(ci0.c1), 0.0)
    soln = ex.solve(print_level=0)
    assert soln.termination_code == 4 and soln.iters == 10
    final = soln.final
    assert math.isfinite(final.f) and math.isfinite(final.tv)
    # the exact penalty (with the final mu, which only decreases) went down from x0
    assert final.mu * final.f + final.tvi < final.mu * float(f0) + max(float(ci0.c1), 0.0)
    assert final.mu * final.f + final.tvi < phi0


@pytest.mark.slow
def test_a2_spectral_abscissa_200_iterations_matches_reference() -> None:
    """After 200 iterations (not converged) the best feasible f is within 0.5 % of PyGRANSO's
    11.078, as a median over the documented start and two 1e-9-perturbed ones: the run is
    chaotic, one start measures the luck of one trajectory (session 14, six starts: ncvx 11.17
    … 11.33, median 11.19 with the Lagrangian BFGS pair; PyGRANSO 11.07 … 11.12, median 11.097;
    session 15, ``bfgs_y="auto"`` weighs the violated row fully here: 11.03 … 11.16 over
    sixteen starts, median 11.083, PyGRANSO's 11.108; these three: 11.057, 11.163, 11.035)."""
    ex = EXAMPLES["spectral_abscissa"](maxit=200)
    x0 = ex.options["x0"]
    values = []
    for seed in (0, 1, 2):
        start = x0
        if seed:
            noise = torch.randn(
                x0.shape, generator=torch.Generator().manual_seed(seed), dtype=x0.dtype
            )
            start = x0 + 1e-9 * noise
        res = ex.solve(print_level=0, x0=start)
        # one nonlinear inequality, no bounds, full BFGS: violated rows weigh 1 in the pair
        assert res.result.extra["bfgs_pair"] == "lagrangian+violated"
        best = res.best
        assert best.tv <= 1e-6
        values.append(best.f)
    assert sorted(values)[1] <= ex.f_ref * 1.005  # PyGRANSO: 11.078 after 200 iterations


@pytest.mark.parametrize("explicit", [False, True], ids=["autograd", "explicit-gradients"])
def test_a3_dictionary_learning_recovers_a_basis_vector(explicit: bool) -> None:
    ex = EXAMPLES["dictionary_learning"](explicit_gradients=explicit)
    soln = ex.solve(print_level=0)
    assert soln.termination_code in ACCEPTABLE  # PyGRANSO's CUDA run also ends with 6 here
    assert soln.final.tv <= 1e-6
    assert ex.check(soln) is None
    assert math.isclose(soln.final.f, ex.f_ref, rel_tol=1e-6)


def test_a3_fvalquit_stops_early_with_code_2() -> None:
    ex = EXAMPLES["dictionary_learning"]()
    soln = ex.solve(print_level=0, fvalquit=0.4963)
    assert soln.termination_code == 2
    assert soln.final.f <= 0.4963 and soln.final.tv <= 1e-6


def test_b1_feasibility_point_satisfies_all_constraints() -> None:
    soln = EXAMPLES["feasibility"]().solve(print_level=0)
    assert soln.termination_code == 0
    assert soln.final.tv <= 1e-6
    assert bool((soln.final.ci <= 1e-6).all())


def test_b2_rayleigh_quotient_equals_top_eigenvalue() -> None:
    ex = EXAMPLES["sphere_rayleigh"]()
    soln = ex.solve(print_level=0)
    # code 0 or 6: with PIQP answering the small QPs the last step brackets without a Wolfe
    # point at f equal to the eigenvalue to 1e-15 (the H-weighted measure then is ~3e-6)
    assert soln.termination_code in ACCEPTABLE
    assert soln.final.tv <= 1e-6
    assert math.isclose(soln.final.f, ex.f_ref, rel_tol=1e-7)


@pytest.mark.parametrize("d", [1, 2])
def test_b3_trace_maximization(d: int) -> None:
    """The optimum is minus the sum of the top-d eigenvalues (critical values are sums of any d).

    d = 2 duplicates the off-diagonal equality (LICQ fails). PyGRANSO stops there at f = -3.922,
    which is not a critical value; a Lagrangian BFGS pair without the negative-curvature
    fallback stalled at -2.9347 with a tiny H-weighted measure (code 0).
    """
    ex = EXAMPLES["trace_maximization"](d=d)
    soln = ex.solve(print_level=0)
    assert soln.termination_code in ACCEPTABLE
    assert soln.final.tv <= 1e-6
    assert math.isclose(soln.final.f, ex.f_ref, rel_tol=1e-6), (soln.final.f, ex.f_ref)


def test_c1_robust_pca_matches_the_convex_optimum() -> None:
    ex = EXAMPLES["robust_pca"]()
    soln = ex.solve(print_level=0)
    assert soln.termination_code in ACCEPTABLE
    assert soln.final.tv <= 1e-6
    assert math.isclose(_pick(soln).f, ex.f_ref, rel_tol=1e-4)


def test_c2_total_variation_denoising_matches_reference() -> None:
    ex = EXAMPLES["generalized_lasso"]()
    soln = ex.solve(print_level=0)
    assert soln.termination_code in ACCEPTABLE
    assert math.isclose(soln.final.f, ex.f_ref, rel_tol=1e-7)


def _logistic_reference(C: float) -> float:
    from scipy.optimize import minimize
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    X, y = X[y != 2], y[y != 2]
    X = X / X.max()

    # split w = u - v with u, v >= 0 makes the l1 term smooth
    def fun(z):
        w = z[:4] - z[4:]
        t = -y * (X @ w)
        return np.logaddexp(0, t).sum() + z.sum() / C

    def jac(z):
        w = z[:4] - z[4:]
        t = -y * (X @ w)
        s = 0.5 * (1 + np.tanh(0.5 * t))  # sigmoid(t)
        g = X.T @ (-y * s)
        return np.concatenate([g, -g]) + 1 / C

    res = minimize(
        fun,
        np.zeros(8),
        jac=jac,
        bounds=[(0, None)] * 8,
        method="L-BFGS-B",
        options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 10000},
    )
    return float(res.fun)


@pytest.mark.parametrize("C", [0.10007, 3.0, 1e3])
def test_c3_l1_logistic_regression_against_scipy(C: float) -> None:
    ex = EXAMPLES["logistic_l1_path"](C=C)
    soln = ex.solve(print_level=0, maxit=300)
    assert soln.termination_code in {0, 4, 6}
    assert math.isclose(soln.final.f, _logistic_reference(C), rel_tol=1e-5)
