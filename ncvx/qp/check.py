"""Backend-independent accuracy check of a QP answer.

Scaling (all residuals are dimensionless, so one tolerance fits every problem):

* ``sx = max(max|lb|, max|ub|)`` — size of the box, the natural unit of ``x``;
* ``sg = max(max|q - c·a|, max|P| · sx)`` — size of the gradient ``g = Px + q`` over the box
  (for a PSD ``P``, ``max|P|`` is its largest diagonal entry). ``c·a`` is the part of ``q``
  along the equality row (see :func:`reduced_linear_term`): it only adds the constant
  ``c·b`` to the objective on the feasible set, so it must not inflate the scale;
* ``se = Σ|a_i| · max(|lb_i|, |ub_i|)`` — largest possible ``|a · y|`` over the box.

A zero scale is replaced by 1. With ``x̂ = x / sx`` and ``ĥ = (g + aν) / sg``:

* ``primal`` = ``max(lb - x, x - ub, 0) / sx`` and ``|a·x - b| / se``;
* ``dual`` = stationarity. With duals: ``‖g + aν + z‖∞ / sg``. Without duals: the natural
  (projected-gradient) residual ``‖x̂ - clip(x̂ - ĥ, lb/sx, ub/sx)‖∞`` minimised over the
  equality multiplier ν; it is zero exactly at the solutions of the QP;
* ``complementarity`` = ``max_i |ẑ_i| · gap_i / sx`` where ``gap_i`` is the distance of
  ``x_i`` to the bound its multiplier ``z_i`` belongs to (lower when ``z_i < 0``, upper when
  ``z_i > 0``) and ``ẑ = z / sg``; without duals ``z = -(g + aν)``. It bounds the relative
  objective decrease still available by moving ``x`` onto its active bounds.

``kkt`` is the max of the three.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ncvx.qp.types import QPProblem

_BISECTION_STEPS = 200


def reduced_linear_term(problem: QPProblem) -> np.ndarray:
    """``q - c·a`` with ``c`` the mid-range of ``q_i / a_i`` over ``a_i ≠ 0`` (``q`` if no row).

    On the feasible set ``a·y = b`` the two linear terms differ by the constant ``c·b``, so
    they have the same minimisers; the reduced one is smaller when ``q`` has a large common
    offset on the row's support (e.g. ``-f(x)`` on every objective-gradient weight in the
    termination QP), which keeps the residual scale meaningful.
    """
    if problem.A is None:
        return problem.q
    a = problem.A[0]
    on = a != 0.0
    if not np.any(on):
        return problem.q
    ratio = problem.q[on] / a[on]
    c = 0.5 * (float(np.max(ratio)) + float(np.min(ratio)))
    return problem.q - c * a


def problem_scales(problem: QPProblem) -> tuple[float, float, float]:
    """Return ``(sx, sg, se)``, the scales documented in the module docstring."""
    sx = max(float(np.max(np.abs(problem.lb))), float(np.max(np.abs(problem.ub))))
    sx = sx if sx > 0.0 else 1.0
    p_max = max(float(problem.P.max()), -float(problem.P.min()))
    sg = max(float(np.max(np.abs(reduced_linear_term(problem)))), p_max * sx)
    sg = sg if sg > 0.0 else 1.0
    se = 1.0
    if problem.A is not None:
        se = float(np.abs(problem.A[0]) @ np.maximum(np.abs(problem.lb), np.abs(problem.ub)))
        se = se if se > 0.0 else 1.0
    return sx, sg, se


def _natural_residual(x: np.ndarray, h: np.ndarray, lb: np.ndarray, ub: np.ndarray) -> np.ndarray:
    return x - np.clip(x - h, lb, ub)


def best_multiplier(
    x: np.ndarray, g: np.ndarray, a: np.ndarray, lb: np.ndarray, ub: np.ndarray
) -> float:
    """Equality multiplier ν minimising ``‖x - clip(x - (g + aν), lb, ub)‖∞``.

    All arrays are (k,) and already scaled. Flipping the sign of the variables with
    ``a_i < 0`` makes every residual component non-decreasing in ν, so
    ``max_i r_i(ν) + min_i r_i(ν)`` is non-decreasing and its root (found by bisection between
    the extreme kinks) balances the largest positive and negative components, which minimises
    the max-norm. Components with ``a_i = 0`` do not depend on ν.

    Args:
        x: (k,) point (ideally inside the box).
        g: (k,) gradient ``Px + q``.
        a: (k,) equality row.
        lb: (k,) lower bounds.
        ub: (k,) upper bounds.

    Returns:
        The multiplier ν (0.0 when ``a`` is zero).
    """
    on = a != 0.0
    if not np.any(on):
        return 0.0
    neg = a[on] < 0.0
    sign = np.where(neg, -1.0, 1.0)
    xs, gs, aa = sign * x[on], sign * g[on], np.abs(a[on])
    lo_b = np.where(neg, -ub[on], lb[on])
    hi_b = np.where(neg, -lb[on], ub[on])

    def balance(nu: float) -> float:
        r = _natural_residual(xs, gs + aa * nu, lo_b, hi_b)
        return float(np.max(r) + np.min(r))

    kinks = np.concatenate(((xs - gs - lo_b) / aa, (xs - gs - hi_b) / aa))
    lo, hi = float(np.min(kinks)), float(np.max(kinks))
    if balance(lo) >= 0.0:
        return lo
    if balance(hi) <= 0.0:
        return hi
    for _ in range(_BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            break
        if balance(mid) < 0.0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def kkt_residuals(
    problem: QPProblem, x: np.ndarray, duals: Mapping[str, np.ndarray] | None = None
) -> dict[str, float]:
    """Scaled KKT residuals of a candidate solution ``x``.

    Args:
        problem: the QP.
        x: (k,) candidate solution.
        duals: optional multipliers in the qpsolvers convention, such that
            ``Px + q + Aᵀy + z_box = 0``: key ``"z_box"`` (k,) (negative on active lower bounds,
            positive on active upper bounds) and, with an equality row, key ``"y"`` (1,).
            Without them (the default, and what :class:`~ncvx.qp.QPSolver` uses, so that every
            backend is judged by its ``x`` alone) the multipliers are estimated from ``x``.

    Returns:
        ``{"primal", "dual", "complementarity", "kkt", "nu"}``: the three scaled residuals
        described in the module docstring, their max, and the equality multiplier used
        (0.0 without an equality row).
    """
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    if x.shape != (problem.k,):
        raise ValueError(f"x must have shape ({problem.k},), got {x.shape}")
    if not np.all(np.isfinite(x)):
        inf = float("inf")
        return {"primal": inf, "dual": inf, "complementarity": inf, "kkt": inf, "nu": 0.0}
    sx, sg, se = problem_scales(problem)
    lb, ub = problem.lb, problem.ub
    a = problem.A[0] if problem.A is not None else None

    primal = float(max(np.max(lb - x), np.max(x - ub), 0.0)) / sx
    if a is not None and problem.b is not None:
        primal = max(primal, abs(float(a @ x) - float(problem.b[0])) / se)

    g = problem.P @ x + problem.q
    if duals is None:
        nu = 0.0
        if a is not None:
            # ν in the scaled variables: ĥ = g/sg + a·ν̂ and ν = ν̂·sg.
            nu = sg * best_multiplier(x / sx, g / sg, a, lb / sx, ub / sx)
        h = g + a * nu if a is not None else g
        dual = float(np.max(np.abs(_natural_residual(x / sx, h / sg, lb / sx, ub / sx))))
        z = -h
    else:
        z = np.asarray(duals["z_box"], dtype=np.float64).reshape(-1)
        nu = 0.0
        if a is not None:
            nu = float(np.asarray(duals["y"], dtype=np.float64).reshape(-1)[0])
        h = g + a * nu if a is not None else g
        dual = float(np.max(np.abs(h + z))) / sg

    gap = np.where(z < 0.0, x - lb, np.where(z > 0.0, ub - x, 0.0))
    complementarity = float(np.max(np.abs(z) * np.abs(gap))) / (sg * sx)
    kkt = max(primal, dual, complementarity)
    return {
        "primal": primal,
        "dual": dual,
        "complementarity": complementarity,
        "kkt": kkt,
        "nu": float(nu),
    }
