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
from .gram import h_rows_gram, structured_gram_of
from .penalty import PenaltyPoint
from .qp import QPProblem, QPSolver
from .qp import structured as _structured
from .qp.structured import StructuredGram, StructuredQP

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


class SteeringQP:
    """The steering QP at one point, for any ``mu``: the data that does not depend on ``mu``
    (``C``, ``c``, ``H g``, the working set and its Gram matrix) is computed once."""

    def __init__(
        self, point: PenaltyPoint, apply_H: Callable[[torch.Tensor], torch.Tensor], qp: QPSolver
    ) -> None:
        ev = point.ev
        ev.ensure_gradients()
        assert ev.J_i is not None and ev.J_e is not None and ev.grad_f is not None
        self.m_e = ev.ce.numel()
        self.C = ev.C  # (m, n)
        self._sparse_C = ev.sparse_C
        c = torch.cat([ev.ce, ev.ci])  # (m,)
        self.Hg = apply_H(ev.grad_f)  # (n,)
        # host copies of the small QP data, once
        self.CHg = (self.C @ self.Hg).detach().cpu().double().numpy()
        self.c = c.detach().cpu().double().numpy()
        m = self.c.shape[0]
        self.lb = np.zeros(m)
        self.lb[: self.m_e] = -1.0
        self.ub = np.ones(m)
        self.apply_H = apply_H
        self.qp = qp
        self._work: _WorkingSet | None = None

    def solve(self, mu: float) -> tuple[np.ndarray, torch.Tensor]:
        """Multipliers ``y`` (``(m,)``, ``[y_e; y_i]``) and ``d(mu)`` (``(n,)``)."""
        if self._work is None:
            self._work = _WorkingSet(self.C, self.c, self.m_e, self.apply_H, self._sparse_C)
        work, Hg = self._work, self.Hg
        while True:
            idx = work.indices
            if idx.size:
                q = mu * self.CHg[idx] - self.c[idx]
                y_w = self.qp.solve(make_qp(P=work.gram, q=q, lb=self.lb[idx], ub=self.ub[idx])).x
            else:
                y_w = np.zeros(0)
            d = -mu * Hg - work.HCt @ torch.as_tensor(y_w, dtype=Hg.dtype, device=Hg.device)
            if not work.admit_violated(self.linearized(d)):
                break
        y = np.zeros(self.c.shape[0])
        y[idx] = y_w
        return y, d

    def linearized(self, d: torch.Tensor) -> np.ndarray:
        """The linearised constraints ``c + C d`` (``(m,)``)."""
        return self.c + (self.C @ d).detach().cpu().double().numpy()


def steering_qp_at_mu(
    point: PenaltyPoint, apply_H: Callable[[torch.Tensor], torch.Tensor], qp: QPSolver
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(y, d)`` of the steering QP at ``mu = point.mu``, exactly as :func:`steer` solves it
    first (so that a caller can hand it back to :func:`steer` as ``shared``)."""
    y, d = SteeringQP(point, apply_H, qp).solve(point.mu)
    return torch.as_tensor(y, dtype=d.dtype, device=d.device), d


def steer(
    point: PenaltyPoint,
    apply_H: Callable[[torch.Tensor], torch.Tensor],
    qp: QPSolver,
    settings: SteeringSettings,
    shared: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> SteeringResult:
    """Compute the steered direction at ``point``; raises ``QPBackendError`` if a QP fails.

    ``shared``: ``(y, d)`` from :func:`steering_qp_at_mu` at this point with this ``H``, if
    already solved (the one-sample termination QP is this QP); the first solve is then skipped.
    """
    ev = point.ev
    sqp = SteeringQP(point, apply_H, qp)
    m_e = sqp.m_e
    Hg = sqp.Hg
    viol_now = point.viol.tv_l1 if settings.l1_model else point.viol.tv
    tol = _SQRT_EPS * max(viol_now, 1.0)
    n_qps = 0

    def solve(mu: float) -> tuple[np.ndarray, float, torch.Tensor]:
        """Multipliers ``y`` (m,), the predicted reduction, and ``d(mu)``."""
        nonlocal n_qps, shared
        if shared is not None and mu == point.mu:
            y_t, d = shared
            shared = None
            y = y_t.detach().cpu().double().numpy()
        else:
            n_qps += 1  # one steering QP (its working-set rounds are not counted apart)
            y, d = sqp.solve(mu)
        lin = sqp.linearized(d)
        return y, predicted_reduction(lin, y, m_e, viol_now, settings.l1_model), d

    mu = point.mu
    y, reduction, d = solve(mu)
    if reduction >= settings.c_viol * viol_now - tol:
        return SteeringResult(d, mu, n_qps, _as_tensor(y, Hg))
    if (
        m_e == 0
        and math.isfinite(settings.ineq_margin)
        and bool((ev.ci < -settings.ineq_margin).all())
    ):
        return SteeringResult(d, mu, n_qps, _as_tensor(y, Hg))
    _, reduction_ref, _ = solve(0.0)
    target = settings.c_viol * reduction_ref - tol
    if reduction >= target:
        return SteeringResult(d, mu, n_qps, _as_tensor(y, Hg))
    for _ in range(settings.maxit):
        mu *= settings.c_mu
        y, reduction, d = solve(mu)
        if reduction >= target:
            break
    return SteeringResult(d, mu, n_qps, _as_tensor(y, Hg))


#: Inequalities with ``c_j`` below this start outside the steering QP's working set (a speed
#: choice only: :meth:`_WorkingSet.admit_violated` brings back every one the QP needs).
_SCREEN_BELOW = -1e-3


class _WorkingSet:
    """The constraints the steering QP is solved over, with their ``H Cᵀ`` columns and Gram.

    A constraint left out has ``y_j = 0``; that is optimal for the full QP exactly when the
    step satisfies its linearisation (its reduced gradient is ``-(c_j + ∇c_jᵀ d)``). Strongly
    inactive inequalities start outside and are admitted when a step violates them, so the
    result is the full QP's while the Gram matrix is only formed over the working set (with
    thousands of constraints most are inactive: ``H Cᵀ`` costs ``n²`` per column).
    """

    def __init__(
        self,
        C: torch.Tensor,
        c: np.ndarray,
        m_e: int,
        apply_H: Callable[[torch.Tensor], torch.Tensor],
        sparse_C: Callable[[], torch.Tensor] | None = None,
    ) -> None:
        self.C = C
        self.sparse_C = sparse_C  # C as a sparse tensor, made by its owner (once per point)
        self.apply_H = apply_H
        self.member = np.ones(c.shape[0], dtype=bool)
        self.member[m_e:] = c[m_e:] >= _SCREEN_BELOW
        self.tol = 1e-10 * (1.0 + np.abs(c))
        self._C_sparse: torch.Tensor | None = None
        self._build()

    def _build(self) -> None:
        self.indices = np.nonzero(self.member)[0]
        index = torch.as_tensor(self.indices, device=self.C.device)
        self.gram: np.ndarray | StructuredGram
        if self.indices.size >= _structured.MIN_SIZE:
            # thousands of constraints: sparse + low rank, never dense; the rows come from one
            # sparse copy of C per point (not a dense gather and a sparse scan per working set)
            if self._C_sparse is None:
                self._C_sparse = (
                    self.sparse_C() if self.sparse_C is not None else self.C.detach().to_sparse()
                ).coalesce()
            rows = self._C_sparse.index_select(0, index)
            structured = structured_gram_of(rows, self.apply_H)
            if structured is not None:
                self.gram, self.HCt = structured
                return
        Cw = self.C[index]  # (k, n)
        self.HCt, gram = h_rows_gram(Cw, self.apply_H)  # (n, k), (k, k)
        self.gram = gram.detach().cpu().double().numpy()

    def admit_violated(self, lin: np.ndarray) -> bool:
        """Add the left-out constraints whose linearisation ``lin`` is violated; True if any."""
        wrong = ~self.member & (lin > self.tol)
        if not wrong.any():
            return False
        self.member |= wrong
        self._build()
        return True


#: A multiplier within this distance of its bound counts as being at the bound.
_AT_BOUND = 1e-7


def _as_tensor(y: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(y, dtype=like.dtype, device=like.device)


def make_qp(**data: np.ndarray | StructuredGram | None) -> QPProblem | StructuredQP:
    """Build a QP (a :class:`StructuredQP` when ``P`` is a :class:`StructuredGram`); invalid
    data (non-finite, not PSD) becomes a ``QPBackendError`` (a QP failure the fallback ladder
    handles) instead of a crash."""
    try:
        if isinstance(data.get("P"), StructuredGram):
            return StructuredQP(**data)  # type: ignore[arg-type]
        return QPProblem(**data)  # type: ignore[arg-type]
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
