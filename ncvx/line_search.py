r"""Weak-Wolfe line search for nonsmooth functions (Lewis–Overton bracketing and bisection).

Finds ``t`` with sufficient decrease ``φ(x + t d) < φ(x) + c1 t φ'(x; d)`` and weak curvature
``∇φ(x + t d)ᵀd > c2 φ'(x; d)``, by doubling until a bracket is found and bisecting inside it.
Trial points are evaluated *values first*: the gradient at a trial point is computed only when
its sufficient-decrease test passes (the only case in which the curvature test is needed).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .penalty import PenaltyPoint


class LineSearchStatus(enum.IntEnum):
    """Outcome of one line search."""

    OK = 0
    BRACKETED_NO_WOLFE = 1  # a bracket was found but shrank below step_tol / eval cap
    NO_BRACKET = 2  # never found a too-far point: φ may be unbounded below along d
    FVALQUIT = 3  # stopped early at a feasible point with f <= fvalquit


@dataclass(frozen=True)
class LineSearchSettings:
    """Constants (PyGRANSO names: wolfe1, wolfe2, step_tol, init_step_size, linesearch_maxit)."""

    c1: float = 1e-4
    c2: float = 0.5
    step_tol: float = 1e-12
    init_step: float = 1.0
    max_evals: float = math.inf
    fvalquit: float = -math.inf
    backtracking: bool = False
    max_step: float = math.inf  # the first bound of the box along d (ncvx.bounds)


@dataclass(frozen=True)
class LineSearchResult:
    """Accepted step ``alpha`` and point (on failure: the last "not far enough" point, or x)."""

    alpha: float
    point: PenaltyPoint
    status: LineSearchStatus
    n_evals: int


def weak_wolfe(
    evaluate: Callable[[torch.Tensor], PenaltyPoint],
    start: PenaltyPoint,
    d: torch.Tensor,
    settings: LineSearchSettings,
) -> LineSearchResult:
    """Weak-Wolfe search along ``d`` (``(n,)``) from ``start``.

    ``evaluate(x)`` returns a :class:`PenaltyPoint` at ``x`` with the current ``μ`` whose
    gradient is computed lazily.
    """
    if settings.backtracking:
        return _backtracking(evaluate, start, d, settings)
    x0, phi0 = start.x, start.phi
    s0 = float(start.grad_phi @ d)
    norm_d = float(torch.linalg.vector_norm(d))
    alpha, beta = 0.0, math.inf
    cap = settings.max_step
    t = min(settings.init_step, cap)
    max_expand = max(10, round(math.log2(1e5 / norm_d))) if norm_d > 0 else 10
    n_expand = 0
    n_evals = 0
    best = start  # last "not far enough" point
    c1, c2 = settings.c1, settings.c2
    width_alpha, width_tol = math.nan, 0.0  # the bracket's width test, for this alpha
    while n_evals < settings.max_evals:
        if alpha != width_alpha:  # it only changes with alpha
            width_alpha = alpha
            width_tol = (
                float(torch.linalg.vector_norm(x0 + alpha * d)) / norm_d * settings.step_tol
            )
        if beta - alpha <= width_tol:
            break
        trial = evaluate(x0 + t * d)
        n_evals += 1
        phi = trial.phi
        if trial.feasible and math.isfinite(phi) and trial.f <= settings.fvalquit:
            return LineSearchResult(t, trial, LineSearchStatus.FVALQUIT, n_evals)
        if math.isnan(phi) or phi >= phi0 + c1 * t * s0:
            beta = t
            trial.ev.drop_graph()
        else:
            slope = float(trial.grad_phi @ d)
            if math.isnan(slope) or slope <= c2 * s0:
                alpha, best = t, trial
                if t >= cap:  # the first bound along d: sufficient decrease is all it can get
                    return LineSearchResult(t, trial, LineSearchStatus.OK, n_evals)
            else:
                return LineSearchResult(t, trial, LineSearchStatus.OK, n_evals)
        if beta < math.inf:
            t = 0.5 * (alpha + beta)
        elif n_expand < max_expand:
            n_expand += 1
            t = min(2.0 * alpha, cap)
        else:
            break
    status = (
        LineSearchStatus.NO_BRACKET if beta == math.inf else LineSearchStatus.BRACKETED_NO_WOLFE
    )
    return LineSearchResult(alpha, best, status, n_evals)


def _backtracking(
    evaluate: Callable[[torch.Tensor], PenaltyPoint],
    start: PenaltyPoint,
    d: torch.Tensor,
    settings: LineSearchSettings,
) -> LineSearchResult:
    """Armijo backtracking (``is_backtrack_linesearch``): halve ``t`` until sufficient decrease."""
    x0, phi0 = start.x, start.phi
    s0 = float(start.grad_phi @ d)
    norm_d = float(torch.linalg.vector_norm(d))
    t = min(settings.init_step, settings.max_step)
    n_evals = 0
    last = start
    while n_evals < settings.max_evals:
        if t * norm_d <= float(torch.linalg.vector_norm(x0)) * settings.step_tol or t == 0:
            break
        trial = evaluate(x0 + t * d)
        n_evals += 1
        if not math.isnan(trial.phi) and trial.phi < phi0 + settings.c1 * t * s0:
            return LineSearchResult(t, trial, LineSearchStatus.OK, n_evals)
        last = trial
        t *= 0.5
    return LineSearchResult(t, last, LineSearchStatus.BRACKETED_NO_WOLFE, n_evals)
