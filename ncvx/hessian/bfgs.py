r"""Dense BFGS approximation of the inverse Hessian.

.. math::  H_+ = (I - \rho s y^T) H (I - \rho y s^T) + \rho s s^T,\quad \rho = 1/(s^T y)

written as ``H - ρ(H y sᵀ + s yᵀ H) + (ρ² yᵀHy + ρ) s sᵀ``. The update is skipped when
``sᵀy <= 0`` or the result is not finite; with ``scale_first`` the first accepted update first
rescales ``H`` by ``γ = sᵀy / yᵀy``.
"""

from __future__ import annotations

import math

import torch

from .base import BFGSStats, UpdateInfo
from .damping import damp_pair


class DenseBFGS:
    """Dense ``(n, n)`` inverse-Hessian approximation.

    Args:
        H0: initial approximation ``(n, n)`` (symmetric positive definite).
        scale_first: rescale ``H`` at the first successful update (``scaleH0``).
        damping: Powell damping threshold δ (``bfgs_damping``), 0 to disable.
    """

    def __init__(self, H0: torch.Tensor, *, scale_first: bool = True, damping: float = 1e-4):
        self.H = H0.clone()
        self.n = H0.shape[0]
        self.scale_pending = scale_first
        self.damping = damping
        self.stats = BFGSStats()

    def apply(self, v: torch.Tensor) -> torch.Tensor:
        return self.H @ v

    def update(self, s: torch.Tensor, y: torch.Tensor) -> UpdateInfo:
        Hs = self.H @ s
        y, damped = damp_pair(s, y, Hs, self.damping)
        info = self._update(s, y, damped)
        self.stats.record(info)
        return info

    def _update(self, s: torch.Tensor, y: torch.Tensor, damped: bool) -> UpdateInfo:
        sty = float(s @ y)
        if not sty > 0:  # also catches NaN
            return UpdateInfo(False, damped, "sty_nonpositive")
        reason = "ok"
        H = self.H
        if self.scale_pending:
            self.scale_pending = False
            gamma = sty / float(y @ y)
            if math.isfinite(gamma):
                H = gamma * H
            else:
                reason = "unscaled"
        rho = 1.0 / sty
        Hy = H @ y
        yHy = float(y @ Hy)
        coeff = max(rho * rho * yHy + rho, 0.0)
        H_new = H - rho * (torch.outer(Hy, s) + torch.outer(s, Hy)) + coeff * torch.outer(s, s)
        if not bool(torch.isfinite(H_new).all()):
            return UpdateInfo(False, damped, "nonfinite")
        self.H = H_new
        return UpdateInfo(True, damped, reason)

    def as_matrix(self) -> torch.Tensor:
        return self.H

    def state(self) -> torch.Tensor:
        """The dense matrix (PyGRANSO's ``H_final`` in full-memory mode)."""
        return self.H.clone()
