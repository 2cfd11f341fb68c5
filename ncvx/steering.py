r"""Steering: the BFGS-SQP direction and the penalty-parameter update (fallback levels 0 and 1).

With ``C = [J_e; J_i]`` (``(m, n)``, equalities first), ``c = [c_e; c_i]`` and ``g = ∇f``, the
direction for a penalty parameter ``μ`` minimises the linearised penalty plus ``½ dᵀH⁻¹d``. Its
dual is the box-constrained QP

.. math::  \min_y \tfrac12 y^T (C H C^T) y + (\mu\, C H g - c)^T y,\quad
           y_e \in [-1, 1],\ y_i \in [0, 1],

and ``d(μ) = -μ H g - H Cᵀ y``. ``μ`` is multiplied by ``c_mu`` until the predicted reduction of
the (l1 or l∞) violation is at least ``c_viol`` times that of the feasibility direction ``d(0)``.
Only the linear term changes with ``μ``: the Gram matrix is formed once per call.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .errors import QPBackendError
from .penalty import PenaltyPoint
from .qp import QPProblem, QPSolver

_SQRT_EPS = math.sqrt(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class SteeringResult:
    """Direction ``d`` (``(n,)``), the penalty parameter chosen, and the QP solves made."""

    d: torch.Tensor
    mu: float
    n_qps: int
    multipliers: torch.Tensor | None = None  # QP multipliers [y_e; y_i] of the returned d


@dataclass(frozen=True)
class SteeringSettings:
    """Constants of the steering test (PyGRANSO option names in the docs)."""

    c_viol: float = 0.1
    c_mu: float = 0.9
    maxit: int = 10
    l1_model: bool = True
    ineq_margin: float = 1e-6


def steer(
    point: PenaltyPoint,
    apply_H: Callable[[torch.Tensor], torch.Tensor],
    qp: QPSolver,
    settings: SteeringSettings,
) -> SteeringResult:
    """Compute the steered direction at ``point``; raises ``QPBackendError`` if a QP fails."""
    ev = point.ev
    ev.ensure_gradients()
    assert ev.J_i is not None and ev.J_e is not None and ev.grad_f is not None
    m_e = ev.ce.numel()
    C = torch.cat([ev.J_e, ev.J_i])  # (m, n)
    c = torch.cat([ev.ce, ev.ci])  # (m,)
    Hg = apply_H(ev.grad_f)  # (n,)
    HCt = apply_H(C.T)  # (n, m)
    gram = C @ HCt
    gram = 0.5 * (gram + gram.T)
    CHg = C @ Hg
    # host copies of the small QP data, once
    P = gram.detach().cpu().double().numpy()
    CHg_np = CHg.detach().cpu().double().numpy()
    c_np = c.detach().cpu().double().numpy()
    m = c_np.shape[0]
    lb = np.zeros(m)
    lb[:m_e] = -1.0
    ub = np.ones(m)
    viol_now = point.viol.tv_l1 if settings.l1_model else point.viol.tv
    tol = _SQRT_EPS * max(viol_now, 1.0)
    n_qps = 0

    def solve(mu: float) -> tuple[np.ndarray, float]:
        nonlocal n_qps
        n_qps += 1
        y = qp.solve(make_qp(P=P, q=mu * CHg_np - c_np, lb=lb, ub=ub)).x
        lin = c_np - mu * CHg_np - P @ y  # linearised constraint values c + C d
        return y, predicted_reduction(lin, y, m_e, viol_now, settings.l1_model)

    def direction(mu: float, y: np.ndarray) -> torch.Tensor:
        y_t = torch.as_tensor(y, dtype=HCt.dtype, device=HCt.device)
        return -mu * Hg - HCt @ y_t

    mu = point.mu
    y, reduction = solve(mu)
    if reduction >= settings.c_viol * viol_now - tol:
        return SteeringResult(direction(mu, y), mu, n_qps, _as_tensor(y, Hg))
    if (
        m_e == 0
        and math.isfinite(settings.ineq_margin)
        and bool((ev.ci < -settings.ineq_margin).all())
    ):
        return SteeringResult(direction(mu, y), mu, n_qps, _as_tensor(y, Hg))
    _, reduction_ref = solve(0.0)
    target = settings.c_viol * reduction_ref - tol
    if reduction >= target:
        return SteeringResult(direction(mu, y), mu, n_qps, _as_tensor(y, Hg))
    for _ in range(settings.maxit):
        mu *= settings.c_mu
        y, reduction = solve(mu)
        if reduction >= target:
            break
    return SteeringResult(direction(mu, y), mu, n_qps, _as_tensor(y, Hg))


#: A multiplier within this distance of its bound counts as being at the bound.
_AT_BOUND = 1e-7


def _as_tensor(y: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(y, dtype=like.dtype, device=like.device)


def make_qp(**data: np.ndarray | None) -> QPProblem:
    """Build a QP; invalid data (non-finite, not PSD) becomes a ``QPBackendError`` (a QP failure
    the fallback ladder handles) instead of a crash."""
    try:
        return QPProblem(**data)
    except ValueError as exc:
        raise QPBackendError(f"invalid QP data: {exc}") from exc


def predicted_reduction(
    lin: np.ndarray, y: np.ndarray, m_e: int, viol_now: float, l1: bool
) -> float:
    """Violation now minus the violation of the linearised constraints ``lin = c + C d``.

    At an exact solution of the steering QP a linearised constraint can only be violated where
    its multiplier sits at the upper end of its box (``y_i = 1``, or ``|y_e| = 1``); elsewhere
    complementarity makes it satisfied (``y_i = 0``) or tight (interior ``y``). The residuals the
    QP solver leaves at the other constraints (``~tol`` each) are therefore dropped: summed over
    hundreds of constraints they would otherwise exceed the steering test's slack and drive
    ``mu`` down for nothing.
    """
    lin = lin.copy()
    at_top = np.abs(y) >= 1.0 - _AT_BOUND
    lin[~at_top] = np.minimum(lin[~at_top], 0.0)
    lin_e_free = ~at_top[:m_e]
    lin[:m_e][lin_e_free] = 0.0
    lin_e, lin_i = lin[:m_e], lin[m_e:]
    if l1:
        return viol_now - float(np.maximum(lin_i, 0).sum()) - float(np.abs(lin_e).sum())
    vi = max(float(lin_i.max()), 0.0) if lin_i.size else 0.0
    ve = float(np.abs(lin_e).max()) if lin_e.size else 0.0
    return viol_now - vi - ve
