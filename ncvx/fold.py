"""Constraint folding: many constraints ``g(x) <= 0`` (or ``h(x) == 0``) as one scalar.

GRANSO's cost per iteration grows with the number of constraints (every constraint adds a
gradient to the steering and stationarity QPs). When a problem has thousands of simple
constraints (a pixel box ``0 <= x <= 1``, an epigraph ``|x - x0| <= t``), folding them into one
scalar keeps the QPs tiny. The folded problem has the same feasible set; what changes is the
geometry the solver sees near the boundary, and so the meaning of the certificate
(see ``docs/folding.md``):

========== ===================================== ============ ====== ===============================
kind       folded value ``c``                    feasible iff smooth tolerance ``c <= tol`` gives
========== ===================================== ============ ====== ===============================
``"l2"``   ``||max(g, 0)||_2``                   ``c <= 0``   no     every ``g_i <= tol``
``"l1"``   ``sum(max(g, 0))``                    ``c <= 0``   no     every ``g_i <= tol``
``"linf"`` ``max(max(g), 0)``                    ``c <= 0``   no     every ``g_i <= tol``
``"max"``  ``max(g)`` (may be negative)          ``c <= 0``   no     every ``g_i <= tol``
``"sumsq"`` ``sum(max(g, 0)**2)``                 ``c <= 0``   C¹     every ``g_i <= sqrt(tol)`` only
========== ===================================== ============ ====== ===============================

All kinds except ``"max"`` are ``>= 0`` and equal 0 exactly on the feasible set. ``"l2"``,
``"l1"`` and ``"linf"`` are nonsmooth at the boundary (they behave like a norm of the violation:
the gradient has norm >= 1 in the direction that reduces the violation, up to the scale of
``∇g``) — that is the kind of nonsmoothness GRANSO is built for, and the violation decreases at
a linear rate along a steering direction. ``"sumsq"`` is differentiable with a *zero* gradient
on the whole feasible set: the linearised folded constraint carries no information at the
boundary, so multipliers of active constraints are unbounded, steering cannot see which way is
feasible once ``c`` is tiny, and a stationarity certificate for the folded problem at an active
constraint is not available (the solver typically stops at a line-search bracket or ``maxit``).
Use ``"sumsq"`` only when you want a smooth penalty-like constraint and accept loose feasibility.

Underflow: ``"sumsq"`` squares the violations, so violations below ~1e-154 (float64) or
~1e-19 (float32) fold to exactly 0; the other kinds keep anything above the smallest normal.

Every function is pure torch, batched over any shape, and differentiable; device and dtype
follow the input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import torch

__all__ = ["EQ_KINDS", "INEQ_KINDS", "box", "fold_eq", "fold_ineq", "positive_part", "stack"]

IneqKind = Literal["l2", "l1", "linf", "max", "sumsq"]
EqKind = Literal["l2", "l1", "linf", "sumsq"]

INEQ_KINDS: tuple[str, ...] = ("l2", "l1", "linf", "max", "sumsq")
EQ_KINDS: tuple[str, ...] = ("l2", "l1", "linf", "sumsq")

Constraints = torch.Tensor | Sequence[torch.Tensor] | Mapping[str, torch.Tensor]


def stack(g: Constraints) -> torch.Tensor:
    """Flatten a tensor, or a list/dict of tensors of any shapes, into one ``(m,)`` tensor.

    Dict values are taken in insertion order. All tensors must share one dtype and device.
    """
    if isinstance(g, torch.Tensor):
        return g.reshape(-1)
    if isinstance(g, Mapping):
        parts = list(g.values())
    elif isinstance(g, Sequence) and not isinstance(g, (str, bytes)):
        parts = list(g)
    else:
        raise TypeError(
            f"constraints must be a tensor, or a list or dict of tensors; got {type(g).__name__}"
        )
    if not parts:
        raise ValueError("no constraints to fold (empty list or dict)")
    for p in parts:
        if not isinstance(p, torch.Tensor):
            raise TypeError(f"every constraint must be a torch.Tensor; got {type(p).__name__}")
    return torch.cat([p.reshape(-1) for p in parts])


def positive_part(g: torch.Tensor) -> torch.Tensor:
    """``max(g, 0)`` elementwise (the violation of ``g <= 0``), same shape as ``g``.

    Its derivative at ``g_i == 0`` is taken as 0 (a valid subgradient), so a feasible point
    has a zero folded gradient for every positive-part kind.
    """
    return torch.relu(g)


def fold_ineq(g: Constraints, kind: IneqKind = "l2") -> torch.Tensor:
    """Fold inequality constraints ``g <= 0`` (any shape, or a list/dict) into one scalar.

    Args:
        g: constraint values; each entry means ``g_i <= 0``.
        kind: ``"l2"`` (default), ``"l1"``, ``"linf"``, ``"max"`` or ``"sumsq"`` (see the module
            docstring for exactness and how each changes the certificate).

    Returns:
        A 0-dim tensor ``c`` with ``c <= 0`` iff every ``g_i <= 0``. For every kind but
        ``"max"``, ``c >= 0`` and ``c == 0`` iff feasible.
    """
    flat = stack(g)
    if flat.numel() == 0:
        raise ValueError("no constraints to fold (zero entries)")
    if not (flat.is_floating_point()):
        raise TypeError(f"constraints must be a floating-point tensor; got dtype {flat.dtype}")
    if kind == "max":
        return flat.max()
    v = positive_part(flat)
    if kind == "l2":
        return torch.linalg.vector_norm(v, ord=2)
    if kind == "l1":
        return v.sum()
    if kind == "linf":
        return v.max()
    if kind == "sumsq":
        return (v * v).sum()
    raise ValueError(f"unknown inequality folding kind {kind!r}; expected one of {INEQ_KINDS}")


def fold_eq(h: Constraints, kind: EqKind = "l2") -> torch.Tensor:
    """Fold equality constraints ``h == 0`` (any shape, or a list/dict) into one scalar ``c >= 0``.

    ``c == 0`` iff every ``h_i == 0``, so ``c`` may be returned either as one equality constraint
    or as one inequality ``c <= 0`` (same feasible set; the inequality form lets steering treat
    the side ``c < 0`` as unreachable). ``kind``: ``"l2"`` (``||h||_2``, default), ``"l1"``,
    ``"linf"`` (nonsmooth at feasibility, exact) or ``"sumsq"`` (``||h||²``: smooth, zero gradient
    at feasibility; ``c <= tol`` only bounds each ``|h_i|`` by ``sqrt(tol)``).
    """
    flat = stack(h)
    if flat.numel() == 0:
        raise ValueError("no constraints to fold (zero entries)")
    if not (flat.is_floating_point()):
        raise TypeError(f"constraints must be a floating-point tensor; got dtype {flat.dtype}")
    if kind == "l2":
        return torch.linalg.vector_norm(flat, ord=2)
    if kind == "l1":
        return flat.abs().sum()
    if kind == "linf":
        return flat.abs().max()
    if kind == "sumsq":
        return (flat * flat).sum()
    raise ValueError(f"unknown equality folding kind {kind!r}; expected one of {EQ_KINDS}")


def box(
    x: torch.Tensor,
    lower: float | torch.Tensor | None = 0.0,
    upper: float | torch.Tensor | None = 1.0,
    kind: IneqKind = "l2",
) -> torch.Tensor:
    """Folded bound constraints ``lower <= x <= upper`` as one scalar (``<= 0`` iff inside).

    ``lower``/``upper`` are scalars or tensors broadcastable to ``x``; ``None`` drops that side.
    Equivalent to ``fold_ineq([lower - x, x - upper], kind)`` but never materialises both halves
    for the common kinds, and for ``"max"`` returns ``max(lower - x, x - upper)`` over entries.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor; got {type(x).__name__}")
    if lower is None and upper is None:
        raise ValueError("box needs at least one of lower and upper")
    parts = []
    if lower is not None:
        parts.append(lower - x)
    if upper is not None:
        parts.append(x - upper)
    if kind == "max":
        return torch.stack([p.max() for p in parts]).max()
    if lower is not None and upper is not None and kind != "linf":
        lo = torch.as_tensor(lower, dtype=x.dtype, device=x.device)
        hi = torch.as_tensor(upper, dtype=x.dtype, device=x.device)
        if bool((lo <= hi).all()):
            # With lower <= upper at most one side is violated per entry, so one tensor holds
            # every violation: max(lower - x, 0) + max(x - upper, 0).
            v = positive_part(parts[0]) + positive_part(parts[1])
            return fold_ineq(v, kind)
    return fold_ineq(parts, kind)
