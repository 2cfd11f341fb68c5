"""Protocol shared by the inverse-Hessian approximations, and their counters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch


@dataclass(frozen=True)
class UpdateInfo:
    """Outcome of one update request.

    ``reason`` is ``"ok"``, ``"sty_nonpositive"``, ``"nonfinite"`` or ``"unscaled"`` (applied
    but the first-update scaling was skipped because it was not finite).
    """

    applied: bool
    damped: bool
    reason: str = "ok"


@dataclass
class BFGSStats:
    """Counters of update requests (PyGRANSO's ``BFGS_updates`` fields)."""

    requests: int = 0
    updates: int = 0
    damped_requests: int = 0
    damped_updates: int = 0
    scaling_skips: int = 0
    sty_fails: int = 0
    infnan_fails: int = 0

    def record_skip(self) -> None:
        """A request with a zero step (nothing to learn from)."""
        self.requests += 1

    def record(self, info: UpdateInfo) -> None:
        self.requests += 1
        self.damped_requests += int(info.damped)
        if info.applied:
            self.updates += 1
            self.damped_updates += int(info.damped)
        if info.reason == "sty_nonpositive":
            self.sty_fails += 1
        elif info.reason == "nonfinite":
            self.infnan_fails += 1
        elif info.reason == "unscaled":
            self.scaling_skips += 1


class InverseHessian(Protocol):
    """An approximation ``H`` of the inverse Hessian, applied to vectors or matrices."""

    n: int
    stats: BFGSStats

    def apply(self, v: torch.Tensor) -> torch.Tensor:
        """``H @ v`` for ``v`` of shape ``(n,)`` or ``(n, k)``."""
        ...

    def update(self, s: torch.Tensor, y: torch.Tensor) -> UpdateInfo:
        """BFGS update with step ``s`` and gradient change ``y`` (both ``(n,)``), damped."""
        ...

    def as_matrix(self) -> torch.Tensor:
        """Dense ``(n, n)`` matrix (expensive for L-BFGS; for inspection and tests)."""
        ...

    def state(self) -> Any:
        """State to warm-start a later run (PyGRANSO's ``H_final``)."""
        ...
