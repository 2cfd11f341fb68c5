"""Small convex reference problems whose optima come from an LP or QP solver.

* ``lp``: a 4-variable LP with a unique, nondegenerate vertex solution (``scipy.optimize.linprog``).
* ``convex_qp``: a strictly convex QP with 2 equalities and 4 inequalities (SLSQP on the torch
  functions, cross-checked with ``qpsolvers``).
* ``l1_regression``: min ||Ax - b||_1 written with ``torch.abs`` (nonsmooth; LP reformulation).
* ``chebyshev_regression``: min ||Ax - b||_inf written with ``abs().max()`` (nonsmooth; LP).
* ``basis_pursuit``: min ||x||_1 s.t. Ax = b (nonsmooth objective, linear equalities; LP).
  The data are such that BP recovers the 3-sparse generating vector exactly.

Random data come from ``numpy.random.default_rng`` with fixed seeds. ``f_opt`` is stored as a
literal (the solver is scored against it) and the oracle test recomputes it from the data with
the reformulated LP / QP, so a change in the data (or in the generator) shows up there first.

Tolerances: a convex problem has a unique optimal value, so the smooth ones use the default
``f_rtol = 1e-6``. The three nonsmooth ones use ``f_rtol = 1e-4``: BFGS on a nonsmooth objective
converges only R-linearly and stops on a line-search failure (code 6); 1e-4 is the loose end of
the accuracy expected of it (1e-4..1e-6).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.optimize import linprog

from .base import RefProblem, col, make_struct

Tensor = torch.Tensor

#: Relative f tolerance of the nonsmooth problems (see the module docstring).
NONSMOOTH_RTOL = 1e-4

# Optimal values, computed once from the data below and re-derived by the oracle test.
#: KKT solve on the active set {2 equalities, inequalities 2 and 4} (multipliers 3.07, 1.32 > 0);
#: quadprog and daqp agree to 1e-15, clarabel to 6e-10, SLSQP to 1e-14.
QP_F_OPT = -0.7785754536565619
#: HiGHS on the (x, t) LP reformulation.
L1_F_OPT = 13.83452032699553
#: HiGHS on the (x, s) LP reformulation.
CHEB_F_OPT = 1.6027561275179996
#: HiGHS on the (u, v) split; equals ||x_true||_1 (exact recovery).
BP_F_OPT = 2.0973630037170783


def _t(a: np.ndarray) -> Tensor:
    return torch.as_tensor(a, dtype=torch.float64)


def _highs(c: np.ndarray, **kwargs: Any) -> float:
    res = linprog(c, method="highs", **kwargs)
    if res.status != 0:
        raise RuntimeError(f"linprog failed: {res.message}")
    return float(res.fun)


# --------------------------------------------------------------------------------------- LP

LP_C = np.array([-3.0, -2.0, -4.0, -1.0])
LP_A = np.array(
    [[1.0, 1.0, 2.0, 1.0], [2.0, 0.0, 3.0, 1.0], [2.0, 1.0, 3.0, 0.0], [0.0, 1.0, 1.0, 2.0]]
)
LP_B = np.array([4.0, 5.0, 7.0, 6.0])


def lp_reference() -> float:
    """min c'x s.t. A x <= b, x >= 0 by HiGHS."""
    return _highs(LP_C, A_ub=LP_A, b_ub=LP_B, bounds=[(0, None)] * 4)


def lp() -> RefProblem:
    """LP: f* = -10.5 at x* = (2.5, 1.5, 0, 0) (linprog; unique, strictly complementary)."""
    c, A, b = _t(LP_C).reshape(-1, 1), _t(LP_A), _t(LP_B).reshape(-1, 1)

    def comb_fn(X: Any) -> tuple[Tensor, Any, Any]:
        f = (c * X.x).sum()
        ci = make_struct(rows=A @ X.x - b, nonneg=-X.x)
        return f, ci, None

    return RefProblem(
        "lp",
        {"x": [4, 1]},
        comb_fn,
        col([0.5] * 4),
        -10.5,
        col([2.5, 1.5, 0.0, 0.0]),
        oracle="scipy linprog",
        recompute=lp_reference,
        # SLSQP also solves an LP; keep it as a second, solver-independent check.
        slsqp_check=True,
    )


# --------------------------------------------------------------------------------------- QP


def _qp_data() -> dict[str, np.ndarray]:
    """min 1/2 x'Px + q'x s.t. Gx <= h, Ax = b with n = 6 (seeded; some inequalities active)."""
    rng = np.random.default_rng(20240611)
    n = 6
    M = rng.standard_normal((n, n))
    P = M.T @ M + 0.5 * np.eye(n)
    q = rng.standard_normal(n) * 3.0
    A = rng.standard_normal((2, n))
    b = rng.standard_normal(2)
    G = rng.standard_normal((4, n))
    h = rng.uniform(0.1, 0.5, 4)
    return {"P": P, "q": q, "A": A, "b": b, "G": G, "h": h}


def convex_qp_reference() -> float:
    """The QP optimum by ``qpsolvers``: an active-set solver (exact) when one is installed."""
    import qpsolvers
    import scipy.sparse as sp

    d = _qp_data()
    preferred = ["quadprog", "daqp", "clarabel", "piqp", "osqp"]
    solver = next(s for s in preferred if s in qpsolvers.available_solvers)
    P, G, A = d["P"], d["G"], d["A"]
    kwargs: dict[str, Any] = {}
    if solver not in qpsolvers.dense_solvers:  # avoid qpsolvers' dense-to-sparse warning
        P, G, A = sp.csc_matrix(P), sp.csc_matrix(G), sp.csc_matrix(A)
    if solver == "osqp":  # first-order method: ask for a polished, high-accuracy answer
        kwargs = {"eps_abs": 1e-12, "eps_rel": 1e-12, "polish": True, "max_iter": 100000}
    x = qpsolvers.solve_qp(P, d["q"], G=G, h=d["h"], A=A, b=d["b"], solver=solver, **kwargs)
    if x is None:
        raise RuntimeError(f"qpsolvers/{solver} found no solution")
    return float(0.5 * x @ d["P"] @ x + d["q"] @ x)


def convex_qp() -> RefProblem:
    """Strictly convex QP, 2 linear equalities and 4 linear inequalities (2 active at x*).

    Oracle: SLSQP on the torch functions from x0 = 0, cross-checked with ``qpsolvers``.
    """
    d = {k: _t(v) for k, v in _qp_data().items()}
    P, q = d["P"], d["q"].reshape(-1, 1)
    A, b = d["A"], d["b"].reshape(-1, 1)
    G, h = d["G"], d["h"].reshape(-1, 1)

    def comb_fn(X: Any) -> tuple[Tensor, Any, Any]:
        x = X.x
        f = 0.5 * (x * (P @ x)).sum() + (q * x).sum()
        ci = make_struct(c=G @ x - h)
        ce = make_struct(c=A @ x - b)
        return f, ci, ce

    return RefProblem(
        "convex_qp",
        {"x": [6, 1]},
        comb_fn,
        col([0.0] * 6),
        QP_F_OPT,
        oracle="scipy SLSQP",
        recompute=convex_qp_reference,
    )


# ------------------------------------------------------------------------------ l1 regression


def _l1_data() -> tuple[np.ndarray, np.ndarray]:
    """A (30 x 5) Gaussian, b = A x_true + Laplace noise (outliers make l1 the right fit)."""
    rng = np.random.default_rng(7)
    A = rng.standard_normal((30, 5))
    x_true = rng.standard_normal(5)
    b = A @ x_true + rng.laplace(scale=0.5, size=30)
    return A, b


def l1_regression_reference() -> float:
    """min 1't s.t. -t <= Ax - b <= t, as an LP in (x, t) by HiGHS."""
    A, b = _l1_data()
    m, n = A.shape
    I = np.eye(m)
    c = np.concatenate([np.zeros(n), np.ones(m)])
    A_ub = np.block([[A, -I], [-A, -I]])
    b_ub = np.concatenate([b, -b])
    return _highs(c, A_ub=A_ub, b_ub=b_ub, bounds=[(None, None)] * n + [(0, None)] * m)


def l1_regression() -> RefProblem:
    """Unconstrained nonsmooth min ||Ax - b||_1 (LP oracle)."""
    A_np, b_np = _l1_data()
    A, b = _t(A_np), _t(b_np).reshape(-1, 1)

    def comb_fn(X: Any) -> tuple[Tensor, Any, Any]:
        return (A @ X.x - b).abs().sum(), None, None

    return RefProblem(
        "l1_regression",
        {"x": [5, 1]},
        comb_fn,
        col([0.0] * 5),
        L1_F_OPT,
        f_rtol=NONSMOOTH_RTOL,  # nonsmooth objective
        oracle="scipy linprog",
        smooth=False,
        recompute=l1_regression_reference,
        slsqp_check=False,
    )


# ------------------------------------------------------------------------ Chebyshev regression


def _cheb_data() -> tuple[np.ndarray, np.ndarray]:
    """A (25 x 4) Gaussian, b Gaussian."""
    rng = np.random.default_rng(11)
    return rng.standard_normal((25, 4)), rng.standard_normal(25)


def chebyshev_reference() -> float:
    """min s s.t. -s <= Ax - b <= s, as an LP in (x, s) by HiGHS."""
    A, b = _cheb_data()
    m, n = A.shape
    c = np.concatenate([np.zeros(n), [1.0]])
    ones = np.ones((m, 1))
    A_ub = np.block([[A, -ones], [-A, -ones]])
    b_ub = np.concatenate([b, -b])
    return _highs(c, A_ub=A_ub, b_ub=b_ub, bounds=[(None, None)] * n + [(0, None)])


def chebyshev_regression() -> RefProblem:
    """Unconstrained nonsmooth min ||Ax - b||_inf (LP oracle)."""
    A_np, b_np = _cheb_data()
    A, b = _t(A_np), _t(b_np).reshape(-1, 1)

    def comb_fn(X: Any) -> tuple[Tensor, Any, Any]:
        return (A @ X.x - b).abs().max(), None, None

    return RefProblem(
        "chebyshev_regression",
        {"x": [4, 1]},
        comb_fn,
        col([0.0] * 4),
        CHEB_F_OPT,
        f_rtol=NONSMOOTH_RTOL,  # nonsmooth objective (max of 50 affine pieces)
        oracle="scipy linprog",
        smooth=False,
        recompute=chebyshev_reference,
        slsqp_check=False,
    )


# ------------------------------------------------------------------------------ basis pursuit


def _bp_data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A (10 x 20) Gaussian, b = A x_true with x_true 3-sparse (recovered exactly by BP)."""
    rng = np.random.default_rng(3)
    A = rng.standard_normal((10, 20))
    x_true = np.zeros(20)
    x_true[rng.choice(20, size=3, replace=False)] = rng.standard_normal(3)
    return A, A @ x_true, x_true


def basis_pursuit_reference() -> float:
    """min 1'(u + v) s.t. A(u - v) = b, u, v >= 0 by HiGHS."""
    A, b, _ = _bp_data()
    n = A.shape[1]
    return _highs(np.ones(2 * n), A_eq=np.hstack([A, -A]), b_eq=b, bounds=[(0, None)] * (2 * n))


def basis_pursuit() -> RefProblem:
    """min ||x||_1 s.t. Ax = b, nonsmooth objective with 10 linear equalities (LP oracle).

    The LP solution is x_true itself (exact sparse recovery), so x_opt = x_true.
    """
    A_np, b_np, x_true = _bp_data()
    A, b = _t(A_np), _t(b_np).reshape(-1, 1)

    def comb_fn(X: Any) -> tuple[Tensor, Any, Any]:
        return X.x.abs().sum(), None, make_struct(c=A @ X.x - b)

    return RefProblem(
        "basis_pursuit",
        {"x": [20, 1]},
        comb_fn,
        col([0.0] * 20),
        BP_F_OPT,
        col(x_true),
        f_rtol=NONSMOOTH_RTOL,  # nonsmooth objective, 17 of 20 coordinates zero at x*
        oracle="scipy linprog",
        smooth=False,
        recompute=basis_pursuit_reference,
        slsqp_check=False,
    )


def convex_problems() -> list[RefProblem]:
    """All convex reference problems."""
    return [lp(), convex_qp(), l1_regression(), chebyshev_regression(), basis_pursuit()]
