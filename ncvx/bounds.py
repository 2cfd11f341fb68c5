r"""Simple bounds ``lb ≤ x ≤ ub`` handled by the solver itself, not as constraints.

Written as constraints, a box on ``n`` variables costs ``2n`` rows in every steering and
termination QP (unfolded) or leaves the iterates slightly outside it with the penalty parameter
stuck (folded into one constraint, see ``docs/folding.md``). Here the iterates never leave the
box: at each iteration the variables *held* at a bound (at the bound, and the direction the
method would take pushes them out) are fixed, the steering QP, the quasi-Newton direction and
the stationarity measure work in the subspace of the others (the inverse Hessian applied as
``P_F H P_F``), and the line search stops at the first bound the direction meets. At a point
where the measure of that subspace is zero, the fixed variables' penalty gradients point out of
the box: the first-order conditions of the box-constrained penalty problem.

When the first bound along a direction is reached with the function still decreasing, the step
goes on along the projected path ``P(x + t d)`` (doubling ``t`` up to the full step while the
penalty function keeps a sufficient decrease), so that many variables can reach their bounds in
one iteration instead of one per iteration.

A variable within ``SNAP · (1 + |bound|)`` (``1e-12``; ``64 eps`` in float32) of a bound is put
on it: a step computed to end on a bound lands there up to rounding.

Bounds are given per variable (see :func:`resolve_bounds`); ``±inf`` (or ``None``) means no bound.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from .errors import OptionsError
from .problem.variables import VariableLayout

BoundSpec = Any  # (lb, ub) or {name: (lb, ub)}; each bound None, a number or a tensor

#: Relative distance below which a variable is put on its bound (rounding of ``x + t d``), for
#: float64; in float32 it is ``64 · eps`` (7.6e-6).
SNAP = 1e-12


def snap_tolerance(dtype: torch.dtype) -> float:
    """Relative snapping distance for ``dtype`` (at least 64 rounding units)."""
    return max(SNAP, 64 * torch.finfo(dtype).eps)


@dataclass(frozen=True)
class Box:
    """Bounds on the flat variable vector: ``lb``, ``ub`` of shape ``(n,)`` (``±inf`` allowed)."""

    lb: torch.Tensor
    ub: torch.Tensor

    @property
    def n_bounded(self) -> int:
        """Number of finite bounds."""
        return int(torch.isfinite(self.lb).sum() + torch.isfinite(self.ub).sum())

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` clipped into the box, with values within rounding of a bound put on it
        (``(n,)``)."""
        x = torch.minimum(torch.maximum(x, self.lb), self.ub)
        x = torch.where(self.at_lower(x), self.lb, x)
        return torch.where(self.at_upper(x), self.ub, x)

    def at_lower(self, x: torch.Tensor) -> torch.Tensor:
        """Mask ``(n,)`` of variables on (within rounding of) a finite lower bound."""
        tol = snap_tolerance(x.dtype)
        return torch.isfinite(self.lb) & (x - self.lb <= tol * (1 + self.lb.abs()))

    def at_upper(self, x: torch.Tensor) -> torch.Tensor:
        """Mask ``(n,)`` of variables on (within rounding of) a finite upper bound."""
        tol = snap_tolerance(x.dtype)
        return torch.isfinite(self.ub) & (self.ub - x <= tol * (1 + self.ub.abs()))

    def held(self, x: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        """Mask ``(n,)`` of variables at a bound that ``d`` pushes out of the box."""
        return (self.at_lower(x) & (d < 0)) | (self.at_upper(x) & (d > 0))

    def max_step(self, x: torch.Tensor, d: torch.Tensor) -> float:
        """Largest ``t ≥ 0`` with ``x + t d`` in the box (``inf`` when no bound is met)."""
        with torch.no_grad():
            inf = torch.full_like(x, math.inf)
            up = torch.where(d > 0, (self.ub - x) / d, inf)
            down = torch.where(d < 0, (self.lb - x) / d, inf)
            t = float(torch.minimum(up, down).min()) if x.numel() else math.inf
        return max(t, 0.0)

    def violation(self, x: torch.Tensor) -> float:
        """Largest amount by which ``x`` leaves the box."""
        return float(torch.maximum(self.lb - x, x - self.ub).clamp_min(0).max())


class Masked:
    """The operator ``v ↦ P_F A(P_F v)`` for a mask ``free`` ``(n,)`` (``v`` is ``(n,)`` or
    ``(n, r)``): ``A`` restricted to the free subspace, still symmetric positive (semi)definite.
    ``inner`` (``A``) and ``free`` stay visible, so that the Gram matrices of a low-rank ``A``
    keep their structure (:func:`ncvx.gram.structured_gram_of`)."""

    def __init__(self, inner: Callable[[torch.Tensor], torch.Tensor], free: torch.Tensor) -> None:
        self.inner = inner
        self.free = free.to(dtype=torch.bool)

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        mv = self.free if v.dim() == 1 else self.free[:, None]
        return torch.where(mv, self.inner(torch.where(mv, v, torch.zeros_like(v))), 0.0)


def masked(apply: Callable[[torch.Tensor], torch.Tensor], free: torch.Tensor) -> Masked:
    """``P_F A P_F`` as a :class:`Masked` operator."""
    return Masked(apply, free)


def resolve_bounds(
    spec: BoundSpec, layout: VariableLayout, dtype: torch.dtype, device: torch.device
) -> Box | None:
    """Flatten a bounds specification onto ``layout``.

    ``spec`` is ``None`` (no bounds), a pair ``(lb, ub)`` for every variable, or a dict
    ``{name: (lb, ub)}`` (variables not named are unbounded). Each bound is ``None``, a number,
    or a tensor broadcastable to the variable's shape.

    Raises:
        OptionsError: unknown variable names, shapes that do not broadcast, NaN bounds, or a
            lower bound above its upper bound.
    """
    if spec is None:
        return None
    if isinstance(spec, Mapping):
        unknown = sorted(set(spec) - set(layout.names))
        if unknown:
            raise OptionsError(
                f"bounds: unknown variable(s) {unknown}; the variables are {list(layout.names)}"
            )
        per_var = {name: spec.get(name, (None, None)) for name in layout.names}
    else:
        per_var = {name: spec for name in layout.names}
    lbs, ubs = [], []
    for name, shape in zip(layout.names, layout.shapes):
        pair = per_var[name]
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise OptionsError(
                f"bounds for {name!r} must be a pair (lb, ub), got {type(pair).__name__}"
            )
        lo = _bound_tensor(pair[0], -math.inf, name, "lower", shape, dtype, device)
        hi = _bound_tensor(pair[1], math.inf, name, "upper", shape, dtype, device)
        if bool((lo > hi).any()):
            raise OptionsError(f"bounds for {name!r}: a lower bound exceeds its upper bound")
        lbs.append(lo.reshape(-1))
        ubs.append(hi.reshape(-1))
    box = Box(torch.cat(lbs), torch.cat(ubs))
    return box if box.n_bounded else None


def _bound_tensor(
    value: Any,
    default: float,
    name: str,
    which: str,
    shape: tuple[int, ...],
    dtype: torch.dtype,
    device: torch.device,
) -> torch.Tensor:
    if value is None:
        return torch.full(shape, default, dtype=dtype, device=device)
    try:
        t = torch.as_tensor(value).detach().to(dtype=dtype, device=device)
        t = torch.broadcast_to(t, shape).clone()
    except (RuntimeError, TypeError, ValueError) as exc:
        raise OptionsError(
            f"bounds: the {which} bound of {name!r} must be None, a number or a tensor "
            f"broadcastable to {shape}: {exc}"
        ) from exc
    if bool(torch.isnan(t).any()):
        raise OptionsError(f"bounds: the {which} bound of {name!r} contains NaN")
    return t
