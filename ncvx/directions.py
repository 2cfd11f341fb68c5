"""Search directions and the fallback ladder.

Levels: 0 steering with H (``S``), 1 steering with H = I (``SI``), 2 quasi-Newton ``-H∇φ``
(``QN``), 3 steepest descent ``-∇φ`` (``GD``), 4 random directions (``R1``, ``R2``, ...), flipped
to descent when they point uphill. Each iteration starts at the lowest allowed level; a failed
direction (QP failure, non-finite or non-descent direction, failed line search) moves one level
up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .bounds import masked
from .gram import identity
from .hessian.base import InverseHessian
from .penalty import PenaltyPoint
from .qp import QPSolver
from .steering import SteeringSettings, steer


@dataclass
class FallbackLadder:
    """Current level within ``[lowest, highest]``, with random attempts counted at level 4."""

    lowest: int
    highest: int
    max_random: int
    level: int = 0
    attempt: int = 0

    def reset(self) -> None:
        self.level = self.lowest
        self.attempt = 1 if self.level == 4 else 0

    def bump(self) -> bool:
        """Move to the next fallback; False when none is left."""
        if self.level < self.highest:
            self.level += 1
            self.attempt = 1 if self.level == 4 else 0
            return True
        if self.level == 4 and self.attempt < self.max_random:
            self.attempt += 1
            return True
        return False


class DirectionFinder:
    """Computes the direction of a given level at a point.

    Args:
        hessian: the inverse-Hessian approximation.
        qp: QP solver for steering.
        steering: steering constants.
        apply_H_qp: operator used inside the steering QP (``hessian.apply`` or a regularized H).
        generator: random generator for level 4.
    """

    def __init__(
        self,
        hessian: InverseHessian,
        qp: QPSolver,
        steering: SteeringSettings,
        apply_H_qp: Callable[[torch.Tensor], torch.Tensor],
        generator: torch.Generator,
    ) -> None:
        self.hessian = hessian
        self.qp = qp
        self.steering = steering
        self.apply_H_qp = apply_H_qp
        self.generator = generator

    def __call__(
        self,
        point: PenaltyPoint,
        level: int,
        free: torch.Tensor | None = None,
        shared: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, float, torch.Tensor | None]:
        """Direction ``d`` (``(n,)``), its penalty parameter, and the steering QP's multipliers
        ``[y_e; y_i]`` (``None`` for levels 2-4).

        ``free`` (``(n,)`` bool): with simple bounds, the variables the direction may move; the
        operators are restricted to them (``P_F H P_F``) and ``d`` is zero elsewhere.

        ``shared``: the level-0 steering QP's answer at ``point.mu`` if already known (see
        :func:`~ncvx.steering.steer`); used only at level 0 without ``free``.

        Raises ``QPBackendError`` when a steering QP fails.
        """
        apply_qp, apply_H, eye = self.apply_H_qp, self.hessian.apply, identity
        g = point.grad_phi
        if free is not None:
            apply_qp, apply_H, eye = masked(apply_qp, free), masked(apply_H, free), masked(eye, free)
            g = torch.where(free, g, 0.0)
        if level in (0, 1):
            use = shared if level == 0 and free is None else None
            res = steer(point, apply_qp if level == 0 else eye, self.qp, self.steering, use)
            return res.d, res.mu, res.multipliers
        if level == 2:
            return -apply_H(g), point.mu, None
        if level == 3:
            return -g, point.mu, None
        r = torch.randn(g.shape, generator=self.generator, dtype=g.dtype, device="cpu").to(g.device)
        r = eye(r)
        if float(r @ g) > 0:
            r = -r
        return r, point.mu, None
