r"""Limited-memory BFGS approximation of the inverse Hessian.

Keeps the last ``k`` pairs ``(s_j, y_j)`` with ``ρ_j = 1/(s_jᵀy_j)``. ``γ = sᵀy / yᵀy``
(``scaleH0``) is set at the first update and kept when ``fixed_scaling``, else refreshed at every
update.

With the identity as base operator, ``H`` is applied in the compact representation of Byrd,
Nocedal and Schnabel (1994): ``H = γI + W M Wᵀ`` with ``W = [S, γY]`` and the small ``M`` built
from ``SᵀY`` and ``YᵀY``. One application reads the pairs twice, in two matrix products, for a
single vector (the search direction) as for a block of them (the QPs' ``H Gᵀ``): the two-loop
recursion instead made ``~6k`` small operations per vector (0.43 ms of dispatch at n = 12 800,
k = 10) and ``4k`` passes over a block. With another base operator ``H0`` the two-loop
recursion is used.

The pairs live in ring buffers of ``memory`` rows (``(memory, n)``): an update overwrites the
oldest row and adds one row and column to ``SᵀY`` and ``YᵀY`` (three products with the stored
rows) instead of copying every pair. ``S`` and ``Y`` give the pairs as ``(n, k)`` columns, oldest
first (PyGRANSO's layout; a copy).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from .base import BFGSStats, UpdateInfo
from .conditioning import spectral_low_rank
from .damping import damp_pair


class LBFGS:
    """Limited-memory inverse-Hessian approximation with memory ``k``.

    Args:
        n: number of variables.
        memory: number of pairs kept (``limited_mem_size``).
        H0: base operator, ``None`` for the identity, else a dense or sparse ``(n, n)`` tensor.
        scaling: use ``γ`` scaling of the base operator (``scaleH0``).
        fixed_scaling: compute ``γ`` only once (``limited_mem_fixed_scaling``).
        damping: Powell damping threshold.
        dtype, device: of the stored pairs.
    """

    def __init__(
        self,
        n: int,
        memory: int,
        *,
        H0: torch.Tensor | None = None,
        scaling: bool = True,
        fixed_scaling: bool = True,
        damping: float = 1e-4,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str = "cpu",
    ) -> None:
        self.n = n
        self.memory = memory
        self.H0 = H0
        self.scaling = scaling
        self.fixed_scaling = fixed_scaling
        self.damping = damping
        self.gamma = 1.0
        self._gamma_set = False
        rows = max(memory, 0)
        # ring buffers: slot i holds a pair; self._order lists the filled slots, oldest first
        self._S_buf = torch.zeros(rows, n, dtype=dtype, device=device)  # (memory, n)
        self._Y_buf = torch.zeros(rows, n, dtype=dtype, device=device)
        self._rho_buf = torch.zeros(rows, dtype=dtype, device=device)
        self._StY = torch.zeros(rows, rows, dtype=dtype, device=device)  # s_iᵀ y_j by slot
        self._YtY = torch.zeros(rows, rows, dtype=dtype, device=device)
        self._order: list[int] = []
        self.stats = BFGSStats()
        self._compact: tuple[torch.Tensor, list[int]] | None = None  # (M by slot, its order)
        #: Counts the changes of ``H`` (for caches of quantities derived from it).
        self.version = 0
        self._spectral: tuple[int, tuple[float, torch.Tensor, torch.Tensor] | None] | None = None

    @property
    def k(self) -> int:
        """The number of stored pairs."""
        return len(self._order)

    def _chronological(self) -> torch.Tensor:
        return torch.as_tensor(self._order, dtype=torch.long, device=self._S_buf.device)

    @property
    def S(self) -> torch.Tensor:
        """The steps as columns, oldest first: ``(n, k)`` (a copy)."""
        return self._S_buf[self._chronological()].T

    @property
    def Y(self) -> torch.Tensor:
        """The gradient differences as columns, oldest first: ``(n, k)`` (a copy)."""
        return self._Y_buf[self._chronological()].T

    @property
    def rho(self) -> torch.Tensor:
        """``1 / s_jᵀy_j`` of the stored pairs, oldest first: ``(k,)``."""
        return self._rho_buf[self._chronological()]

    # ------------------------------------------------------------------ application
    def _base(self, v: torch.Tensor) -> torch.Tensor:
        out = v if self.H0 is None else self.H0 @ v
        return self.gamma * out

    def apply(self, v: torch.Tensor) -> torch.Tensor:
        """``H v`` for ``v`` ``(n,)`` or ``(n, r)``."""
        k = self.k
        if k == 0:
            return self._base(v)
        if self.H0 is not None:
            return self._two_loop(v)
        M = self._compact_by_slot()
        S, Y = self._S_buf[:k], self._Y_buf[:k]  # the filled slots (in slot order)
        z = torch.cat([S @ v, Y @ v])  # (2k,) or (2k, r): Wᵀv by slot, without γ
        t = M @ z
        return self.gamma * v + S.T @ t[:k] + Y.T @ t[k:]

    def _two_loop(self, v: torch.Tensor) -> torch.Tensor:
        """The two-loop recursion (any base operator), oldest pair innermost."""
        vector = v.dim() == 1
        q = v.reshape(self.n, -1).clone()
        order = self._order
        alphas = []
        for j in reversed(order):
            a = self._rho_buf[j] * (self._S_buf[j] @ q)  # (r,)
            q -= torch.outer(self._Y_buf[j], a)
            alphas.append(a)
        r = self._base(q)
        for j, a in zip(order, reversed(alphas), strict=True):
            b = self._rho_buf[j] * (self._Y_buf[j] @ r)
            r += torch.outer(self._S_buf[j], a - b)
        return r.reshape(-1) if vector else r

    def _compact_by_slot(self) -> torch.Tensor:
        """``M`` of ``H = γI + [S, Y] M [S, Y]ᵀ`` with the pairs in slot order (``(2k, 2k)``),
        cached until the pairs or ``γ`` change (see :meth:`compact_form`)."""
        if self._compact is None:
            k, g = self.k, self.gamma
            order = self._chronological()
            StY = self._StY[:k, :k][order][:, order]  # chronological
            YtY = self._YtY[:k, :k][order][:, order]
            # the diagonal sᵢᵀyᵢ = 1/ρᵢ as the recursion uses it (a warm start brings its own ρ)
            diag = 1.0 / self._rho_buf[order]
            R = torch.triu(StY, diagonal=1) + torch.diag(diag)
            eye = torch.eye(k, dtype=R.dtype, device=R.device)
            R_inv = torch.linalg.solve_triangular(R, eye, upper=True)
            top_left = R_inv.T @ (torch.diag(diag) + g * YtY) @ R_inv
            # W = [S, γY] (chronological) → [S, Y] by slot: γ folded into the Y blocks
            M = torch.zeros(2 * k, 2 * k, dtype=R.dtype, device=R.device)
            both = torch.cat([order, order + k])
            chrono = torch.cat(
                [
                    torch.cat([top_left, -g * R_inv.T], dim=1),
                    torch.cat([-g * R_inv, torch.zeros_like(R_inv)], dim=1),
                ]
            )
            M[both[:, None], both[None, :]] = chrono
            self._compact = (M, list(self._order))
        return self._compact[0]

    def low_rank(self) -> tuple[float, torch.Tensor, torch.Tensor] | None:
        """``(γ, W, M)`` with ``H = γI + W M Wᵀ`` (``W`` (n, 2k)), or ``None`` with a base
        operator ``H0`` (no such form)."""
        if self.H0 is not None:
            return None
        if self.k == 0:
            empty = self._S_buf.new_zeros(self.n, 0)
            return self.gamma, empty, empty.new_zeros(0, 0)
        W, M = self.compact_form()
        return self.gamma, W, M

    def spectral_low_rank(self) -> tuple[float, torch.Tensor, torch.Tensor] | None:
        """:meth:`low_rank` with orthonormal ``W`` and diagonal ``M``, the form the QPs use
        (:func:`~ncvx.hessian.conditioning.spectral_low_rank`), computed once per version."""
        if self._spectral is None or self._spectral[0] != self.version:
            form = self.low_rank()
            self._spectral = (self.version, None if form is None else spectral_low_rank(form))
        return self._spectral[1]

    def compact_form(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``W`` ``(n, 2k)`` and ``M`` ``(2k, 2k)`` with ``H = γI + W M Wᵀ`` (identity base).

        In the pairs' chronological order this is ``W = [S, γY]`` and ``M = [[R⁻ᵀ(D +
        γYᵀY)R⁻¹, -R⁻ᵀ], [-R⁻¹, 0]]`` with ``R`` the upper triangle of ``SᵀY`` and ``D`` its
        diagonal; returned here with the pairs in slot order and ``γ`` folded into ``M``
        (``W = [S, Y]`` by slot, a copy), which is the same operator.
        """
        M = self._compact_by_slot()
        k = self.k
        return torch.cat([self._S_buf[:k], self._Y_buf[:k]]).T, M

    # ------------------------------------------------------------------ update
    def update(self, s: torch.Tensor, y: torch.Tensor) -> UpdateInfo:
        damped = False
        if self.damping > 0:
            y, damped = damp_pair(s, y, self.apply(s), self.damping)
        info = self._update(s, y, damped)
        self.stats.record(info)
        return info

    def _update(self, s: torch.Tensor, y: torch.Tensor, damped: bool) -> UpdateInfo:
        if self.memory == 0:
            return UpdateInfo(False, damped, "memory_zero")
        sty = float(s @ y)
        if not (torch.isfinite(s).all() and torch.isfinite(y).all()):
            return UpdateInfo(False, damped, "nonfinite")
        if not sty > 0:
            return UpdateInfo(False, damped, "sty_nonpositive")
        reason = "ok"
        if self.scaling and not (self.fixed_scaling and self._gamma_set):
            gamma = sty / float(y @ y)
            if math.isfinite(gamma) and gamma > 0:
                self.gamma = gamma
                self._gamma_set = True
            else:
                reason = "unscaled"
        self._store(s, y, 1.0 / sty)
        return UpdateInfo(True, damped, reason)

    def _store(self, s: torch.Tensor, y: torch.Tensor, rho: float | torch.Tensor) -> None:
        """Put a pair in the oldest slot (or a free one) and update ``SᵀY`` and ``YᵀY``."""
        slot = len(self._order) if len(self._order) < self.memory else self._order.pop(0)
        self._order.append(slot)
        self._S_buf[slot] = s
        self._Y_buf[slot] = y
        self._rho_buf[slot] = rho
        k = len(self._order)  # the filled slots are 0..k-1
        S, Y = self._S_buf[:k], self._Y_buf[:k]
        self._StY[slot, :k] = Y @ self._S_buf[slot]  # s_slotᵀ y_j
        self._StY[:k, slot] = S @ self._Y_buf[slot]  # s_iᵀ y_slot
        yy = Y @ self._Y_buf[slot]
        self._YtY[slot, :k] = yy
        self._YtY[:k, slot] = yy
        self._compact = None
        self.version += 1

    # ------------------------------------------------------------------ state
    def as_matrix(self) -> torch.Tensor:
        eye = torch.eye(self.n, dtype=self._S_buf.dtype, device=self._S_buf.device)
        return self.apply(eye)

    def state(self) -> dict[str, Any]:
        """``{"S": (n,k), "Y": (n,k), "rho": (1,k), "gamma": float}`` (PyGRANSO's layout)."""
        return {
            "S": self.S.contiguous(),
            "Y": self.Y.contiguous(),
            "rho": self.rho.reshape(1, -1).clone(),
            "gamma": self.gamma,
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Warm start from :meth:`state` (or PyGRANSO's ``H_final`` dict); keeps the newest pairs.

        PyGRANSO keeps the *first* ``memory`` columns when the history is longer; ncvx keeps the
        most recent ones, which are the ones L-BFGS would have kept.
        """
        S = torch.as_tensor(state["S"]).to(self._S_buf).clone()
        Y = torch.as_tensor(state["Y"]).to(self._S_buf).clone()
        rho = torch.as_tensor(state["rho"]).to(self._S_buf).reshape(-1).clone()
        if S.dim() != 2 or Y.dim() != 2 or S.shape[0] != self.n or Y.shape != S.shape:
            raise ValueError(
                f"limited_mem_warm_start: S and Y must both be ({self.n}, k); got "
                f"{tuple(S.shape)} and {tuple(Y.shape)}"
            )
        k = S.shape[1]
        if not (torch.isfinite(S).all() and torch.isfinite(Y).all() and torch.isfinite(rho).all()):
            raise ValueError("limited_mem_warm_start contains NaN or Inf")
        rho = rho[:k] if rho.numel() >= k else 1.0 / (S * Y).sum(0)
        keep = min(k, self.memory)
        self._order = []
        for j in range(k - keep, k):
            self._store(S[:, j], Y[:, j], rho[j])
        if "gamma" in state and state["gamma"] is not None:
            self.gamma = float(state["gamma"])
            self._gamma_set = True
            self._compact = None
            self.version += 1
