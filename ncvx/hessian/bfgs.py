r"""Dense BFGS approximation of the inverse Hessian.

.. math::  H_+ = (I - \rho s y^T) H (I - \rho y s^T) + \rho s s^T,\quad \rho = 1/(s^T y)

written as ``H - ρ(H y sᵀ + s yᵀ H) + (ρ² yᵀHy + ρ) s sᵀ``. The update is skipped when
``sᵀy <= 0`` or the result is not finite; with ``scale_first`` the first accepted update first
rescales ``H`` by ``γ = sᵀy / yᵀy``.

Started from a multiple of the identity, ``H`` stays ``βI`` plus the sum of the updates'
rank-two terms, ``[Hy, s] [[0, -ρ], [-ρ, ρ²yᵀHy + ρ]] [Hy, s]ᵀ``; those factors are kept (up to
:data:`MAX_TRACKED` columns) so that :meth:`DenseBFGS.low_rank` can hand the QPs the structure
``H = βI + W M Wᵀ`` (see :mod:`ncvx.qp.structured`).
"""

from __future__ import annotations

import math

import torch

from .base import BFGSStats, UpdateInfo
from .conditioning import spectral_low_rank
from .damping import damp_pair

#: Columns of the low-rank factor kept (two per update); beyond that the tracking stops.
MAX_TRACKED = 1200
#: From this size the update is two in-place rank-one updates (one pass each over the n²
#: entries: n = 5021 went from 3.2 s to a fraction of it); below, the explicit formula, whose
#: rounding the examples' measured trajectories were made with (C2: 531 iterations, 556
#: with the in-place form).
INPLACE_MIN_N = 2000


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
        # H = base·I + W blkdiag(blocks) Wᵀ while tracked (H0 a multiple of the identity)
        diag = float(H0[0, 0]) if H0.numel() else 1.0
        identity_like = bool(
            torch.equal(H0, diag * torch.eye(self.n, dtype=H0.dtype, device=H0.device))
        )
        self._base: float | None = diag if identity_like else None
        self._W: list[torch.Tensor] = []
        self._blocks: list[tuple[float, float]] = []
        #: Counts the changes of ``H`` (for caches of quantities derived from it).
        self.version = 0
        self._spectral: tuple[int, tuple[float, torch.Tensor, torch.Tensor] | None] | None = None

    def low_rank(self) -> tuple[float, torch.Tensor, torch.Tensor] | None:
        """``(β, W, M)`` with ``H = βI + W M Wᵀ`` (``W`` (n, p), ``M`` (p, p) block-diagonal,
        indefinite), or ``None`` when ``H`` has no tracked form (a general ``H0``, or more than
        :data:`MAX_TRACKED` columns)."""
        if self._base is None:
            return None
        H = self.H
        p = 2 * len(self._blocks)
        W = torch.stack(self._W, dim=1) if self._W else H.new_zeros(self.n, 0)
        M = H.new_zeros(p, p)
        for j, (rho, coeff) in enumerate(self._blocks):
            M[2 * j, 2 * j + 1] = M[2 * j + 1, 2 * j] = -rho
            M[2 * j + 1, 2 * j + 1] = coeff
        return self._base, W, M

    def spectral_low_rank(self) -> tuple[float, torch.Tensor, torch.Tensor] | None:
        """:meth:`low_rank` with orthonormal ``W`` and diagonal ``M``, the form the QPs use
        (:func:`~ncvx.hessian.conditioning.spectral_low_rank`), computed once per version."""
        if self._spectral is None or self._spectral[0] != self.version:
            form = self.low_rank()
            self._spectral = (self.version, None if form is None else spectral_low_rank(form))
        return self._spectral[1]

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
                if self._base is not None:
                    if self._blocks:  # not the first update: the factors would need rescaling
                        self._base = None
                    else:
                        self._base *= gamma
            else:
                reason = "unscaled"
        rho = 1.0 / sty
        Hy = H @ y
        yHy = float(y @ Hy)
        coeff = max(rho * rho * yHy + rho, 0.0)
        # H + s aᵀ + b sᵀ with a = coeff·s - ρ·Hy, b = -ρ·Hy: two in-place rank-one updates
        # (one pass each over the n² entries instead of three outer products and three sums)
        a = coeff * s - rho * Hy
        b = -rho * Hy
        if not (math.isfinite(coeff) and bool(torch.isfinite(a).all() & torch.isfinite(b).all())):
            return UpdateInfo(False, damped, "nonfinite")
        # the new H is positive definite (sᵀy > 0), so |H_ij| ≤ √(H_ii H_jj): a finite diagonal
        # means finite entries; it is computed first (n reads), so that a large H can be
        # updated in place only when the update will be kept
        if not bool(torch.isfinite(H.diagonal() + s * a + b * s).all()):
            return UpdateInfo(False, damped, "nonfinite")
        if self.n < INPLACE_MIN_N:  # small: the explicit formula (the rounding measured so far)
            H_new = H - rho * (torch.outer(Hy, s) + torch.outer(s, Hy)) + coeff * torch.outer(s, s)
        else:  # in place: no copy of the n² entries (35 ms a step at n = 5021)
            H_new = H.addr_(s, a).addr_(b, s)
        self.H = H_new
        self.version += 1
        if self._base is not None:
            if 2 * len(self._blocks) + 2 > MAX_TRACKED:
                self._base, self._W, self._blocks = None, [], []
            else:
                self._W.extend([Hy, s.clone()])
                self._blocks.append((rho, coeff))
        return UpdateInfo(True, damped, reason)

    def as_matrix(self) -> torch.Tensor:
        """The ``(n, n)`` matrix itself (large ones are updated in place: :meth:`state` gives a
        copy)."""
        return self.H

    def state(self) -> torch.Tensor:
        """The dense matrix (PyGRANSO's ``H_final`` in full-memory mode)."""
        return self.H.clone()
