r"""Limited-memory BFGS approximation of the inverse Hessian.

Keeps the last ``k`` pairs ``(s_j, y_j)`` with ``ρ_j = 1/(s_jᵀy_j)`` and applies
``H = V_kᵀ … (γ H0) … V_k + …`` by the two-loop recursion. The recursion is written for a matrix
of right-hand sides (``(n, r)``): one loop over the stored pairs, every step vectorized over the
``r`` columns. ``γ = sᵀy / yᵀy`` (``scaleH0``) is set at the first update and kept when
``fixed_scaling``, else refreshed at every update.

With the identity as base operator and several right-hand sides (the QPs' ``H Gᵀ``), the
compact representation of Byrd, Nocedal and Schnabel (1994) is used instead:
``H = γI + W M Wᵀ`` with ``W = [S, γY]`` (``(n, 2k)``) and the small ``M`` built from ``SᵀY`` and
``YᵀY``: two matrix products over the ``(n, r)`` block instead of ``4k`` passes over it (3.4×
faster for n = 16384, k = 20, r = 100). Single vectors (the search direction) keep the
recursion.

The pairs are stored as contiguous rows (``(k, n)``); ``S`` and ``Y`` are their ``(n, k)``
transposed views (PyGRANSO's layout). The recursion reads rows: on strided columns it took
1.85 ms per vector against 0.51 ms for n = 12 800, k = 10.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from .base import BFGSStats, UpdateInfo
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
        self._S_rows = torch.zeros(0, n, dtype=dtype, device=device)  # (k, n)
        self._Y_rows = torch.zeros(0, n, dtype=dtype, device=device)
        self.rho = torch.zeros(0, dtype=dtype, device=device)
        self.stats = BFGSStats()
        self._compact: tuple[torch.Tensor, torch.Tensor] | None = None  # (W, M), see apply

    @property
    def S(self) -> torch.Tensor:
        """The steps as columns, ``(n, k)`` (a view of the stored rows)."""
        return self._S_rows.T

    @property
    def Y(self) -> torch.Tensor:
        """The gradient differences as columns, ``(n, k)`` (a view of the stored rows)."""
        return self._Y_rows.T

    # ------------------------------------------------------------------ application
    def _base(self, v: torch.Tensor) -> torch.Tensor:
        out = v if self.H0 is None else self.H0 @ v
        return self.gamma * out

    def apply(self, v: torch.Tensor) -> torch.Tensor:
        vector = v.dim() == 1
        k = self.S.shape[1]
        if not vector and v.shape[1] > 1 and k > 0 and self.H0 is None:
            W, M = self.compact_form()
            return self.gamma * v + W @ (M @ (W.T @ v))
        q = v.reshape(self.n, -1).clone()
        S_rows, Y_rows = self._S_rows, self._Y_rows
        alphas = []
        for j in range(k - 1, -1, -1):
            a = self.rho[j] * (S_rows[j] @ q)  # (r,)
            q -= torch.outer(Y_rows[j], a)
            alphas.append(a)
        r = self._base(q)
        for j in range(k):
            a = alphas[k - 1 - j]
            b = self.rho[j] * (Y_rows[j] @ r)
            r += torch.outer(S_rows[j], a - b)
        return r.reshape(-1) if vector else r

    def compact_form(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``W = [S, γY]`` and ``M = [[R⁻ᵀ(D + γYᵀY)R⁻¹, -R⁻ᵀ], [-R⁻¹, 0]]`` with ``R`` the upper
        triangle of ``SᵀY`` and ``D`` its diagonal; cached until the pairs or ``γ`` change."""
        if self._compact is None:
            S, Y, g = self.S, self.Y, self.gamma
            k = S.shape[1]
            # the diagonal sᵢᵀyᵢ = 1/ρᵢ as the recursion uses it (a warm start brings its own ρ)
            diag = 1.0 / self.rho
            R = torch.triu(S.T @ Y, diagonal=1) + torch.diag(diag)
            eye = torch.eye(k, dtype=S.dtype, device=S.device)
            R_inv = torch.linalg.solve_triangular(R, eye, upper=True)
            top_left = R_inv.T @ (torch.diag(diag) + g * (Y.T @ Y)) @ R_inv
            M = torch.cat(
                [
                    torch.cat([top_left, -R_inv.T], dim=1),
                    torch.cat([-R_inv, torch.zeros_like(R_inv)], dim=1),
                ]
            )
            self._compact = (torch.cat([S, g * Y], dim=1), M)
        return self._compact

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
        S = torch.cat([self._S_rows, s[None, :]])
        Y = torch.cat([self._Y_rows, y[None, :]])
        rho = torch.cat([self.rho, self.rho.new_tensor([1.0 / sty])])
        if S.shape[0] > self.memory:
            S, Y, rho = S[1:], Y[1:], rho[1:]
        self._S_rows, self._Y_rows, self.rho = S, Y, rho
        self._compact = None
        return UpdateInfo(True, damped, reason)

    # ------------------------------------------------------------------ state
    def as_matrix(self) -> torch.Tensor:
        eye = torch.eye(self.n, dtype=self.S.dtype, device=self.S.device)
        return self.apply(eye)

    def state(self) -> dict[str, Any]:
        """``{"S": (n,k), "Y": (n,k), "rho": (1,k), "gamma": float}`` (PyGRANSO's layout)."""
        return {
            "S": self.S.clone(memory_format=torch.contiguous_format),
            "Y": self.Y.clone(memory_format=torch.contiguous_format),
            "rho": self.rho.reshape(1, -1).clone(),
            "gamma": self.gamma,
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Warm start from :meth:`state` (or PyGRANSO's ``H_final`` dict); keeps the newest pairs.

        PyGRANSO keeps the *first* ``memory`` columns when the history is longer; ncvx keeps the
        most recent ones, which are the ones L-BFGS would have kept.
        """
        S = torch.as_tensor(state["S"]).to(self.S).clone()
        Y = torch.as_tensor(state["Y"]).to(self.S).clone()
        rho = torch.as_tensor(state["rho"]).to(self.S).reshape(-1).clone()
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
        self._S_rows = S[:, k - keep :].T.contiguous()
        self._Y_rows = Y[:, k - keep :].T.contiguous()
        self.rho = rho[k - keep :]
        self._compact = None
        if "gamma" in state and state["gamma"] is not None:
            self.gamma = float(state["gamma"])
            self._gamma_set = True
