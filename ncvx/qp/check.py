"""Backend-independent accuracy check of a QP answer.

All residuals are dimensionless and invariant under a positive scaling of the objective and
under a diagonal scaling of the variables (rows and columns of ``P`` with the box), so one
tolerance fits badly scaled Gram matrices too. Notation, for a point ``x``:

* ``q̃ = q - c·a``: ``q`` without its component along the equality row (see
  :func:`reduced_linear_term`); it has the same minimisers and a meaningful size;
* ``g = Px + q̃``, ``h = g + aν`` with ``ν`` the equality multiplier (0 without a row);
* ``s_i = max(|lb_i|, |ub_i|)`` (1 if 0): the size of coordinate ``i``'s box;
* ``w_i = |q̃_i| + √P_ii · Σ_j √P_jj |x_j|``: the size of ``g_i`` without cancellation (for a
  PSD ``P``, ``|P_ij| ≤ √(P_ii P_jj)``), floored at ``1e-15 · max_j w_j`` (coordinates below
  that are numerically irrelevant).

Residuals:

* ``primal``: ``max_i max(lb_i - x_i, x_i - ub_i, 0) / s_i`` and ``|a·x - b| / Σ|a_i| s_i``;
* ``dual`` (stationarity): ``max_i |r_i|`` with ``r_i = x_i/s_i - clip(x_i/s_i - h_i/w_i,
  lb_i/s_i, ub_i/s_i)``, the natural (projected-gradient) residual of the diagonally scaled
  problem: ``|r_i|`` is the smaller of the relative gradient ``|h_i|/w_i`` and the relative
  distance to the bound that gradient points at. It is zero exactly at solutions. Without
  duals ``ν`` minimises it (:func:`best_multiplier`); with duals it is ``max_i |h_i + z_i| /
  w_i``;
* ``complementarity`` (objective accuracy): the Frank–Wolfe gap ``Σ_i |h_i| · d_i``, ``d_i``
  the distance of ``x_i`` to the bound ``h_i`` points at (with duals: ``Σ_i |z_i| · d_i`` for
  the bound ``z_i`` belongs to). For a feasible ``x`` it bounds ``f(x) - f*`` from above. It is
  divided by ``|½xᵀPx| + |q̃ᵀx| + GAP_FLOOR · Σ_i w_i s_i``: relative to the objective value,
  which matters for min-norm problems whose optimal value (the squared stationarity measure)
  is tiny compared with the gradients it is made of, with a floor at the size of a first-order
  change across the box (rounding alone leaves a gap of about ``eps · Σ_i w_i s_i``).

``kkt`` is the max of the three.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ncvx.qp.types import QPProblem

#: Floor of the objective scale relative to ``Σ_i w_i s_i``: rounding alone leaves a gap of
#: about ``eps`` times that, i.e. ``2e-10`` relative to the floor, safely below ``tol = 1e-9``.
GAP_FLOOR = 1e-6

#: Cap on the safeguarded Newton steps for the equality multiplier (each halves the bracket at
#: worst, so this also covers pure bisection down to float resolution).
_NEWTON_STEPS = 200

_EPS = float(np.finfo(np.float64).eps)

#: Kinks evaluated per vectorised round of :func:`best_multiplier`'s bracketing.
_KNOT_BATCH = 32


def reduced_linear_term(problem: QPProblem) -> tuple[np.ndarray, float]:
    """``(q - c·a, c)`` with ``c`` the mid-range of ``q_i / a_i`` over ``a_i ≠ 0``.

    On the feasible set ``a·y = b`` the two linear terms differ by the constant ``c·b``, so
    they have the same minimisers; the reduced one is smaller when ``q`` has a large common
    offset on the row's support (e.g. ``-f(x)`` on every objective-gradient weight in the
    termination QP). Without an equality row, returns ``(q, 0.0)``.
    """
    if problem.A is None:
        return problem.q, 0.0
    a = problem.A[0]
    on = a != 0.0
    if not np.any(on):
        return problem.q, 0.0
    ratio = problem.q[on] / a[on]
    c = 0.5 * (float(np.max(ratio)) + float(np.min(ratio)))
    return problem.q - c * a, c


def box_sizes(problem: QPProblem) -> np.ndarray:
    """(k,) ``s_i = max(|lb_i|, |ub_i|)``, with 1 where that is 0."""
    s = np.maximum(np.abs(problem.lb), np.abs(problem.ub))
    return np.where(s > 0.0, s, 1.0)


def gradient_sizes(q: np.ndarray, root: np.ndarray, spread: float) -> np.ndarray:
    """(k,) ``w_i = |q_i| + root_i · spread`` floored at ``1e-15 · max w`` (1 if all zero).

    With ``root = √diag(P)`` and ``spread = Σ_j root_j |x_j|`` this bounds ``|(Px)_i|``
    without cancellation.
    """
    w = np.abs(q) + root * spread
    top = float(np.max(w))
    return np.maximum(w, 1e-15 * top) if top > 0.0 else np.ones_like(w)


def _natural_residual(x: np.ndarray, h: np.ndarray, lb: np.ndarray, ub: np.ndarray) -> np.ndarray:
    return x - np.clip(x - h, lb, ub)


def best_multiplier(
    x: np.ndarray, g: np.ndarray, a: np.ndarray, lb: np.ndarray, ub: np.ndarray
) -> float:
    """Multiplier ν minimising ``‖x - clip(x - (g + aν), lb, ub)‖∞``.

    Flipping the sign of the variables with ``a_i < 0`` makes every residual component
    non-decreasing in ν, so ``max_i r_i(ν) + min_i r_i(ν)`` is non-decreasing and its root
    (safeguarded Newton steps between the extreme kinks) balances the largest positive and negative
    components, which minimises the max-norm. Components with ``a_i = 0`` do not depend on ν.

    Args:
        x: (k,) point (ideally inside the box).
        g: (k,) gradient.
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

    kink_hi = (xs - gs - hi_b) / aa  # r_i = xs_i - hi_i (its minimum) up to here,
    kink_lo = (xs - gs - lo_b) / aa  # then gs_i + aa_i ν, and xs_i - lo_i (its maximum) after

    def balance(nu: float) -> tuple[float, float]:
        """``max r + min r`` at ``nu`` and its slope there (right derivative); a value at the
        rounding level of its terms is returned as exactly 0."""
        r = xs - np.clip(xs - (gs + aa * nu), lo_b, hi_b)
        i, j = int(r.argmax()), int(r.argmin())
        a_i, a_j = float(aa[i]), float(aa[j])
        slope = (a_i if kink_hi[i] <= nu < kink_lo[i] else 0.0) + (
            a_j if kink_hi[j] <= nu < kink_lo[j] else 0.0
        )
        value = float(r[i] + r[j])
        size_i = abs(float(xs[i])) + abs(float(gs[i])) + abs(a_i * nu)
        size_j = abs(float(xs[j])) + abs(float(gs[j])) + abs(a_j * nu)
        noise = 4.0 * _EPS * (size_i + size_j)
        return (0.0 if abs(value) <= noise else value), slope

    lo, hi = float(np.min(kink_hi)), float(np.max(kink_lo))
    if balance(lo)[0] >= 0.0:
        return lo
    if balance(hi)[0] <= 0.0:
        return hi
    # Bracket the root between two consecutive kinks, evaluating the balance at a batch of
    # kinks at once (a few vectorised rounds instead of a dozen scalar Newton steps)...
    knots = np.unique(np.concatenate([kink_hi, kink_lo]))
    i_lo, i_hi = 0, len(knots) - 1  # balance(knots[i_lo]) < 0 < balance(knots[i_hi])
    while i_hi - i_lo > 1:
        idx = np.unique(np.linspace(i_lo, i_hi, _KNOT_BATCH + 2).astype(np.int64))[1:-1]
        r = xs - np.clip(xs - gs - aa * knots[idx, None], lo_b, hi_b)
        bal = r.max(axis=1) + r.min(axis=1)
        up = np.flatnonzero(bal >= 0.0)
        if up.size == 0:
            i_lo = int(idx[-1])
            continue
        first = int(up[0])
        if bal[first] == 0.0:
            return float(knots[idx[first]])
        i_hi = int(idx[first])
        if first > 0:
            i_lo = int(idx[first - 1])
    lo, hi = max(lo, float(knots[i_lo])), min(hi, float(knots[i_hi]))
    # ...then, on that piece (every component linear), the balance is a max plus a min of
    # lines: Newton steps kept inside the shrinking bracket (bisection when a step leaves it)
    # end on the exact root in a few O(k) evaluations.
    nu = 0.5 * (lo + hi)
    for _ in range(_NEWTON_STEPS):
        value, slope = balance(nu)
        if value == 0.0:
            return nu
        if value < 0.0:
            lo = nu
        else:
            hi = nu
        step = nu - value / slope if slope > 0.0 else math.nan
        nxt = step if lo < step < hi else 0.5 * (lo + hi)
        if not lo < nxt < hi or abs(nxt - nu) <= 4.0 * _EPS * max(abs(nu), abs(nxt)):
            break  # rounding level: further steps only move the last bits
        nu = nxt
    return nu


def _distance_to_pointed_bound(
    x: np.ndarray, z: np.ndarray, lb: np.ndarray, ub: np.ndarray
) -> np.ndarray:
    """Distance of ``x_i`` to the lower bound where ``z_i < 0``, to the upper where ``z_i > 0``."""
    return np.where(
        z < 0.0, np.maximum(x - lb, 0.0), np.where(z > 0.0, np.maximum(ub - x, 0.0), 0.0)
    )


@dataclass(frozen=True)
class Linearization:
    """First-order data of a QP at a point (see the module docstring for the symbols).

    Attributes:
        q: (k,) reduced linear term ``q̃``.
        c: offset removed from ``q`` along the equality row (``q = q̃ + c·a``).
        Px: (k,) ``P x``.
        s: (k,) box sizes.
        w: (k,) gradient sizes.
        spread: ``Σ_j √P_jj |x_j|``.
        nu: equality multiplier for ``q̃`` (0.0 without a row).
        h: (k,) ``Px + q̃ + aν``.
    """

    q: np.ndarray
    c: float
    Px: np.ndarray
    s: np.ndarray
    w: np.ndarray
    spread: float
    nu: float
    h: np.ndarray


def linearize(problem: QPProblem, x: np.ndarray, nu: float | None = None) -> Linearization:
    """Gradient, scales and equality multiplier at ``x``.

    Args:
        problem: the QP.
        x: (k,) finite point.
        nu: multiplier for the *original* ``q``; ``None`` picks the one minimising the
            stationarity residual (:func:`best_multiplier`).
    """
    q, c = reduced_linear_term(problem)
    Px = problem.P @ x
    g = Px + q
    s = box_sizes(problem)
    root = np.sqrt(np.maximum(problem.P.diagonal(), 0.0))
    spread = float(root @ np.abs(x))
    w = gradient_sizes(q, root, spread)
    lb, ub = problem.lb, problem.ub
    mult = 0.0
    if problem.A is not None:
        a = problem.A[0]
        # ν for q̃ is the original one shifted by c (q = q̃ + c·a).
        mult = best_multiplier(x / s, g / w, a / w, lb / s, ub / s) if nu is None else nu + c
        g = g + a * mult
    return Linearization(q, c, Px, s, w, spread, mult, g)


def _dual_residual(x: np.ndarray, lin: Linearization, lb: np.ndarray, ub: np.ndarray) -> float:
    s = lin.s
    return float(np.max(np.abs(_natural_residual(x / s, lin.h / lin.w, lb / s, ub / s))))


def kkt_with_linearization(problem: QPProblem, x: np.ndarray) -> tuple[float, Linearization]:
    """``kkt`` of :func:`kkt_residuals` (multipliers estimated from ``x``) and the
    :class:`Linearization` it used, for callers that go on working at ``x`` (the polish).

    Args:
        problem: the QP.
        x: (k,) finite candidate solution.
    """
    lb, ub = problem.lb, problem.ub
    lin = linearize(problem, x)
    s = lin.s
    primal = float(max(np.max((lb - x) / s), np.max((x - ub) / s), 0.0))
    if problem.A is not None and problem.b is not None:
        a = problem.A[0]
        se = float(np.abs(a) @ s)
        primal = max(primal, abs(float(a @ x) - float(problem.b[0])) / (se if se > 0 else 1.0))
    z = -lin.h
    fw_gap = float(np.abs(z) @ _distance_to_pointed_bound(x, z, lb, ub))
    scale = abs(0.5 * float(x @ lin.Px)) + abs(float(lin.q @ x)) + GAP_FLOOR * float(lin.w @ s)
    complementarity = fw_gap / scale if scale > 0.0 else (0.0 if fw_gap == 0.0 else np.inf)
    return max(primal, _dual_residual(x, lin, lb, ub), float(complementarity)), lin


def kkt_residuals(
    problem: QPProblem, x: np.ndarray, duals: Mapping[str, np.ndarray] | None = None
) -> dict[str, float]:
    """Scaled KKT residuals of a candidate solution ``x`` (definitions in the module docstring).

    Args:
        problem: the QP.
        x: (k,) candidate solution.
        duals: optional multipliers in the qpsolvers convention ``Px + q + Aᵀy + z_box = 0``:
            key ``"z_box"`` (k,) (negative on active lower bounds, positive on active upper
            bounds) and, with an equality row, key ``"y"`` (1,). Without them (the default,
            used by :class:`~ncvx.qp.QPSolver` so that every backend is judged by its ``x``
            alone) the multipliers are estimated from ``x``.

    Returns:
        ``{"primal", "dual", "complementarity", "kkt", "nu"}``: the three residuals, their
        max, and the equality multiplier ν for the original ``q`` (0.0 without a row).
    """
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    if x.shape != (problem.k,):
        raise ValueError(f"x must have shape ({problem.k},), got {x.shape}")
    if not np.all(np.isfinite(x)):
        inf = float("inf")
        return {"primal": inf, "dual": inf, "complementarity": inf, "kkt": inf, "nu": 0.0}
    lb, ub = problem.lb, problem.ub
    s = box_sizes(problem)
    a = problem.A[0] if problem.A is not None else None

    primal = float(max(np.max((lb - x) / s), np.max((x - ub) / s), 0.0))
    if a is not None and problem.b is not None:
        se = float(np.abs(a) @ s)
        primal = max(primal, abs(float(a @ x) - float(problem.b[0])) / (se if se > 0 else 1.0))

    if duals is None:
        lin = linearize(problem, x)
        dual = _dual_residual(x, lin, lb, ub)
        z = -lin.h
    else:
        z = np.asarray(duals["z_box"], dtype=np.float64).reshape(-1)
        y = None if a is None else float(np.asarray(duals["y"], np.float64).reshape(-1)[0])
        lin = linearize(problem, x, nu=y)
        dual = float(np.max(np.abs(lin.h + z) / lin.w))

    fw_gap = float(np.abs(z) @ _distance_to_pointed_bound(x, z, lb, ub))
    value = abs(0.5 * float(x @ lin.Px)) + abs(float(lin.q @ x))
    magnitude = float(lin.w @ s)
    scale = value + GAP_FLOOR * magnitude
    complementarity = fw_gap / scale if scale > 0.0 else (0.0 if fw_gap == 0.0 else np.inf)
    return {
        "primal": primal,
        "dual": dual,
        "complementarity": float(complementarity),
        "kkt": max(primal, dual, float(complementarity)),
        "nu": float(lin.nu - lin.c),
    }
