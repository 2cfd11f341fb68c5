r"""Approximate stationarity measure (GRANSO's termination QP over sampled gradients).

With ``l`` gradient samples taken at nearby iterates, stack
``G = [J_e,1..l | ∇f_1..l | J_i,1..l]`` (columns) and solve

.. math::  \min_y \tfrac12 y^T G^T H G y - [c_e; f; c_i]^T y \quad
           y_e \in [-1, 1],\ y_f \in [0, \mu],\ \sum y_f = \mu,\ y_i \in [0, 1]

(``c_e, f, c_i`` at the current point, repeated per sample). The measure is ``‖H G y‖`` (2-norm,
or ∞-norm when ``stat_l2_model=False``): the length of the shortest H-weighted combination of
sampled penalty subgradients. When ``‖∇φ‖ <= opt_tol`` the QP is skipped and ``‖∇φ‖`` is used.
If the QP fails with ``H`` it is solved with ``H = I``; if that fails too the measure is ``inf``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .errors import QPBackendError
from .penalty import PenaltyPoint
from .qp import QPSolver
from .steering import make_qp


@dataclass(frozen=True)
class StationarityResult:
    """The measure, the number of gradient samples, and which QP form gave it.

    ``qp_form`` is 0 (smooth shortcut, no QP), 1 (with H), 2 (with I), or -1 (every QP failed).
    ``d`` is the stationarity vector ``-H G y`` (``(n,)``), or ``None`` when no QP was solved.
    """

    value: float
    n_samples: int
    qp_form: int
    d: torch.Tensor | None


def stationarity(
    point: PenaltyPoint,
    samples: torch.Tensor,
    apply_H: Callable[[torch.Tensor], torch.Tensor],
    qp: QPSolver,
    *,
    l2: bool = True,
) -> StationarityResult:
    """Stationarity measure at ``point`` from gradient samples ``(l, 1 + m_i + m_e, n)``.

    Each sample's rows are ``[∇f; J_i; J_e]``.
    """
    ev = point.ev
    m_i, m_e = ev.ci.numel(), ev.ce.numel()
    l = samples.shape[0]
    n = samples.shape[2]
    grad_f = samples[:, 0, :]  # (l, n)
    J_i = samples[:, 1 : 1 + m_i, :].reshape(l * m_i, n)
    J_e = samples[:, 1 + m_i :, :].reshape(l * m_e, n)
    Gt = torch.cat([J_e, grad_f, J_i])  # (k, n), k = l (1 + m)
    k = Gt.shape[0]
    f_now = float(ev.f)
    b = -np.concatenate(
        [
            np.tile(ev.ce.detach().cpu().double().numpy(), l),
            np.full(l, f_now),
            np.tile(ev.ci.detach().cpu().double().numpy(), l),
        ]
    )
    mu = point.mu
    q_e, q_f = l * m_e, l
    lb = np.zeros(k)
    lb[:q_e] = -1.0
    ub = np.ones(k)
    ub[q_e : q_e + q_f] = mu
    A = np.zeros((1, k))
    A[0, q_e : q_e + q_f] = 1.0
    rhs = np.array([mu])
    if mu == 0:  # objective samples carry no weight; drop the equality row's effect
        A, rhs = None, None

    for form, op in ((1, apply_H), (2, None)):
        HGt = op(Gt.T) if op is not None else Gt.T  # (n, k)
        gram = Gt @ HGt
        gram = 0.5 * (gram + gram.T)
        try:
            sol = qp.solve(
                make_qp(P=gram.detach().cpu().double().numpy(), q=b, lb=lb, ub=ub, A=A, b=rhs)
            )
        except QPBackendError:
            continue
        y = torch.as_tensor(sol.x, dtype=HGt.dtype, device=HGt.device)
        d = -(HGt @ y)
        value = float(torch.linalg.vector_norm(d, ord=2 if l2 else math.inf))
        return StationarityResult(value, l, form, d)
    return StationarityResult(math.inf, l, -1, None)


def smooth_shortcut(point: PenaltyPoint, opt_tol: float) -> StationarityResult | None:
    """``‖∇φ‖₂`` if it is already at most ``opt_tol`` (no QP needed), else ``None``."""
    norm = float(torch.linalg.vector_norm(point.grad_phi))
    if norm <= opt_tol:
        return StationarityResult(norm, 1, 0, -point.grad_phi)
    return None
