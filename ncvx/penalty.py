r"""Exact l1 penalty function and violation measures.

.. math::  \phi(x;\mu) = \mu f(x) + \sum_j \max(c_{i,j}(x), 0) + \sum_j |c_{e,j}(x)|

Feasibility is judged with l-infinity violations: ``tvi = max_j max(ci_j, 0)``,
``tve = max_j |ce_j|``, ``tv = max(tvi, tve)``; a point is feasible to tolerance when
``tvi <= viol_ineq_tol`` and ``tve <= viol_eq_tol``. The penalty's (sub)gradient uses
``∇ci_j`` for every ``ci_j >= 0`` and ``sign(ce_j) ∇ce_j`` (sign 0 counted as +).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .problem.evaluator import Evaluation


@dataclass(frozen=True)
class Violation:
    """Violation measures of one point (python floats)."""

    tvi: float
    tve: float
    tv: float
    tv_l1: float
    feasible: bool


def measure_violation(
    ci: torch.Tensor, ce: torch.Tensor, ineq_tol: float, eq_tol: float
) -> Violation:
    """l-infinity and l1 violations of ``ci <= 0`` (``(m_i,)``) and ``ce == 0`` (``(m_e,)``)."""
    if not ci.numel() and not ce.numel():  # unconstrained: nothing to reduce
        return _NO_VIOLATION
    vi = ci.clamp(min=0)
    ve = ce.abs()
    zero = ci.new_zeros(()) if not (ci.numel() and ce.numel()) else None
    tvi_t = vi.max() if vi.numel() else zero
    tve_t = ve.max() if ve.numel() else zero
    l1 = vi.sum() + ve.sum()
    tvi, tve, tv_l1 = torch.stack([tvi_t, tve_t, l1.to(ci.dtype)]).tolist()  # type: ignore[list-item]
    # a NaN constraint value is infinitely violated; the sum shows whether there is one
    if math.isnan(tv_l1):
        tv_l1 = math.inf
        if math.isnan(tvi) or (ci.numel() and bool(torch.isnan(ci).any())):
            tvi = math.inf
        if math.isnan(tve) or (ce.numel() and bool(torch.isnan(ce).any())):
            tve = math.inf
    tv = max(tvi, tve)
    return Violation(tvi, tve, tv, tv_l1, bool(tvi <= ineq_tol and tve <= eq_tol))


_NO_VIOLATION = Violation(0.0, 0.0, 0.0, 0.0, True)


def l1_violation_gradient(ev: Evaluation) -> torch.Tensor:
    """(Sub)gradient of the l1 violation at ``ev`` (shape ``(n,)``); needs its gradients."""
    assert ev.J_i is not None and ev.J_e is not None
    w_i = (ev.ci >= 0).to(ev.J_i.dtype)
    w_e = torch.where(ev.ce >= 0, 1.0, -1.0).to(ev.J_e.dtype)
    return w_i @ ev.J_i + w_e @ ev.J_e


@dataclass
class PenaltyPoint:
    """An evaluated point together with the penalty parameter ``mu`` in force.

    ``phi`` and ``viol`` are values; ``grad_phi`` (``(n,)``) needs the evaluation's gradients and
    is computed once on first access. Changing ``mu`` makes a new object without re-evaluating.
    """

    ev: Evaluation
    mu: float
    viol: Violation
    f: float
    phi: float
    _grad_viol: torch.Tensor | None = field(default=None, repr=False)
    _grad_f: torch.Tensor | None = field(default=None, repr=False)
    stat_value: float = math.nan
    stat_bounded: bool = False  # stat_value is a lower bound (the termination QP was skipped)
    # the one-sample termination QP's answer (y, d), which is the steering QP at this mu
    shared_qp: tuple[torch.Tensor, torch.Tensor] | None = field(default=None, repr=False)
    _grad_phi: torch.Tensor | None = field(default=None, repr=False)

    @staticmethod
    def create(ev: Evaluation, mu: float, ineq_tol: float, eq_tol: float) -> PenaltyPoint:
        viol = measure_violation(ev.ci, ev.ce, ineq_tol, eq_tol)
        f = float(ev.f)
        phi = mu * f + viol.tv_l1 if math.isfinite(f) else math.nan
        return PenaltyPoint(ev=ev, mu=mu, viol=viol, f=f, phi=phi)

    @property
    def x(self) -> torch.Tensor:
        return self.ev.x

    @property
    def feasible(self) -> bool:
        return self.viol.feasible

    @property
    def grad_viol(self) -> torch.Tensor:
        """Gradient of the l1 violation (``(n,)``); before the Jacobians exist it comes from
        weighted reverse passes (:meth:`Evaluation.weighted_gradients`)."""
        if self._grad_viol is None:
            ev = self.ev
            if ev.has_gradients:
                self._grad_viol = l1_violation_gradient(ev)
            else:
                w_i = (ev.ci >= 0).to(ev.ci.dtype)
                w_e = torch.where(ev.ce >= 0, 1.0, -1.0).to(ev.ce.dtype)
                self._grad_f, self._grad_viol = ev.weighted_gradients(w_i, w_e)
        return self._grad_viol

    @property
    def grad_f(self) -> torch.Tensor:
        if self.ev.grad_f is not None:
            return self.ev.grad_f
        if self._grad_f is None:
            self.grad_viol  # noqa: B018  (fills _grad_f, the Jacobians only if needed)
        if self._grad_f is None:  # the gradients came from the Jacobians
            assert self.ev.grad_f is not None
            return self.ev.grad_f
        return self._grad_f

    @property
    def grad_phi(self) -> torch.Tensor:
        """``mu * grad_f + grad_viol`` (``(n,)``), computed once."""
        if self._grad_phi is None:
            self._grad_phi = self.mu * self.grad_f + self.grad_viol
        return self._grad_phi

    def with_mu(self, mu: float) -> PenaltyPoint:
        """Same point, another penalty parameter (no new evaluation)."""
        phi = mu * self.f + self.viol.tv_l1
        return PenaltyPoint(
            self.ev,
            mu,
            self.viol,
            self.f,
            phi,
            self._grad_viol,
            self._grad_f,
            self.stat_value,
            self.stat_bounded,
        )
