"""Soft-margin linear SVM on a seeded two-class Gaussian blob (the example of the talk).

    minimize_{w, b, zeta}  1/2 ||w||^2 + C sum_i zeta_i
    subject to             1 - zeta_i - y_i (w' x_i + b) <= 0,   -zeta_i <= 0.

This is a convex QP with a positive semidefinite (singular in b and zeta) Hessian; the classes
overlap, so a good part of the 2N inequalities are active at the solution. ``f_opt`` is the QP
optimum from ``qpsolvers`` (interior point), certified in the oracle test by a primal-dual gap and
cross-checked with SLSQP on the torch functions.

Tolerance: the problem is smooth, but it is degenerate (``N`` constraints active, zero curvature
in ``zeta``), so in the exact-penalty landscape the solver works on, the minimizer sits on a
kink in ~N directions, like a nonsmooth problem; it is scored at ``f_rtol = 1e-4``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .base import RefProblem, make_struct

Tensor = torch.Tensor

SVM_N = 200  #: samples (100 per class)
SVM_D = 3  #: features
SVM_C = 1.0  #: hinge-loss weight
SVM_SEED = 2024

#: Optimal value for the default data: SLSQP's feasible point (violation 2e-13) gives
#: 56.848524206893; clarabel's gives 56.848524208603 with a certified dual bound of
#: 56.848524027078 (gap 1.8e-7, i.e. 3e-9 relative).
SVM_F_OPT = 56.848524206893


def svm_data(n: int = SVM_N, d: int = SVM_D, seed: int = SVM_SEED) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)``: ``n`` points in ``R^d``, half around ``+mu`` (y = +1), half around ``-mu``.

    ``mu`` has norm 1.2 and the clouds have unit covariance, so the classes overlap.
    """
    rng = np.random.default_rng(seed)
    direction = rng.standard_normal(d)
    mu = 1.2 * direction / np.linalg.norm(direction)
    half = n // 2
    y = np.concatenate([np.ones(half), -np.ones(n - half)])
    X = rng.standard_normal((n, d)) + y[:, None] * mu[None, :]
    return X, y


def svm_qp_matrices(
    X: np.ndarray, y: np.ndarray, C: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(P, q, G, h)`` of the primal QP in ``z = (w, b, zeta)``: min 1/2 z'Pz + q'z, Gz <= h."""
    n, d = X.shape
    nz = d + 1 + n
    P = np.zeros((nz, nz))
    P[:d, :d] = np.eye(d)
    q = np.concatenate([np.zeros(d + 1), C * np.ones(n)])
    margin = np.hstack([-y[:, None] * X, -y[:, None], -np.eye(n)])
    nonneg = np.hstack([np.zeros((n, d + 1)), -np.eye(n)])
    G = np.vstack([margin, nonneg])
    h = np.concatenate([-np.ones(n), np.zeros(n)])
    return P, q, G, h


def svm_primal_value(X: np.ndarray, y: np.ndarray, C: float, w: np.ndarray, b: float) -> float:
    """Objective at ``(w, b)`` with the optimal slacks ``zeta = max(0, 1 - y(Xw + b))``."""
    zeta = np.maximum(0.0, 1.0 - y * (X @ w + b))
    return float(0.5 * w @ w + C * zeta.sum())


def svm_dual_value(X: np.ndarray, y: np.ndarray, C: float, alpha: np.ndarray) -> float:
    """Dual objective ``sum(alpha) - 1/2 ||X'(alpha*y)||^2`` (a lower bound when
    ``0 <= alpha <= C`` and ``y'alpha = 0``)."""
    v = X.T @ (alpha * y)
    return float(alpha.sum() - 0.5 * v @ v)


def svm_qp_reference(
    X: np.ndarray, y: np.ndarray, C: float
) -> tuple[float, np.ndarray, float, np.ndarray]:
    """Solve the primal QP with ``qpsolvers``; return ``(f_opt, w, b, alpha)``.

    ``alpha`` are the multipliers of the margin constraints, made dual feasible (clipped to
    ``[0, C]`` and projected onto ``y'alpha = 0``), so ``svm_dual_value(alpha)`` is a valid
    lower bound on the optimum and ``f_opt - dual`` a certified gap.
    """
    import qpsolvers
    import scipy.sparse as sp

    n, d = X.shape
    P, q, G, h = svm_qp_matrices(X, y, C)
    preferred = ["clarabel", "piqp", "osqp"]  # P is singular: no quadprog / daqp
    solver = next(s for s in preferred if s in qpsolvers.available_solvers)
    kwargs: dict[str, Any] = {}
    if solver == "osqp":
        kwargs = {"eps_abs": 1e-10, "eps_rel": 1e-10, "polish": True, "max_iter": 200000}
    problem = qpsolvers.Problem(sp.csc_matrix(P), q, G=sp.csc_matrix(G), h=h)
    solution = qpsolvers.solve_problem(problem, solver=solver, **kwargs)
    if not solution.found or solution.x is None:
        raise RuntimeError(f"qpsolvers/{solver} found no SVM solution")
    z = solution.x
    w, b = z[:d], float(z[d])
    alpha = np.clip(solution.z[:n], 0.0, C)
    # Project onto y'alpha = 0 by shifting the free multipliers (0 < alpha < C) equally.
    for _ in range(50):
        resid = float(y @ alpha)
        if abs(resid) < 1e-14:
            break
        free = (alpha > 0) & (alpha < C)
        if not free.any():
            break
        alpha[free] -= resid * y[free] / free.sum()
        alpha = np.clip(alpha, 0.0, C)
    return svm_primal_value(X, y, C, w, b), w, b, alpha


def svm(n: int = SVM_N, d: int = SVM_D, C: float = SVM_C, seed: int = SVM_SEED) -> RefProblem:
    """The soft-margin SVM as a PyGRANSO problem; x0 = (w = 0, b = 0, zeta = 1) is feasible."""
    X_np, y_np = svm_data(n, d, seed)
    X, y = torch.as_tensor(X_np), torch.as_tensor(y_np).reshape(-1, 1)

    def comb_fn(V: Any) -> tuple[Tensor, Any, Any]:
        f = 0.5 * (V.w**2).sum() + C * V.zeta.sum()
        ci = make_struct(margin=1 - V.zeta - y * (X @ V.w + V.b), nonneg=-V.zeta)
        return f, ci, None

    x0 = torch.cat([torch.zeros(d + 1, 1), torch.ones(n, 1)]).to(torch.float64)
    default = (n, d, C, seed) == (SVM_N, SVM_D, SVM_C, SVM_SEED)
    return RefProblem(
        f"svm_n{n}_d{d}",
        {"w": [d, 1], "b": [1, 1], "zeta": [n, 1]},
        comb_fn,
        x0,
        SVM_F_OPT if default else svm_qp_reference(X_np, y_np, C)[0],
        f_rtol=1e-4,  # degenerate QP, see the module docstring
        opts={"maxit": 3000},
        oracle="qpsolvers QP (clarabel), dual-gap certified",
        recompute=lambda: svm_qp_reference(X_np, y_np, C)[0],
        slsqp_check=True,
        slow=False,  # ~3 s since the termination QP merges the samples of linear constraints
    )


def svm_problems() -> list[RefProblem]:
    """The SVM of the talk (N = 200, d = 3) and a small instance (N = 40, d = 2) whose f_opt is
    computed by the QP at build time."""
    return [svm(), svm(n=40, d=2)]
