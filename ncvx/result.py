"""Result of a solve: status codes (PyGRANSO's numbering), iterates and counters."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any

import torch

from .hessian.base import BFGSStats


class Status(enum.IntEnum):
    """Why the solver stopped. Values are PyGRANSO's ``termination_code`` values."""

    STATIONARY = 0
    REL_TOL = 1
    FVALQUIT = 2
    USER_HALT = 3
    MAXIT = 4
    MAX_TIME = 5
    LINESEARCH_BRACKET_FEASIBLE = 6
    LINESEARCH_BRACKET_INFEASIBLE = 7
    LINESEARCH_NO_BRACKET = 8
    NO_DESCENT = 9
    NONFINITE_AT_X0 = 10
    USER_FUNCTION_ERROR = 11
    QP_FAILURE = 12
    UNKNOWN_ERROR = 13

    @property
    def message(self) -> str:
        """What happened, the likely cause, and what to try."""
        return _MESSAGES[self]

    @property
    def is_success(self) -> bool:
        """A certified answer: stationary, or a user target reached, at a feasible point."""
        return self in (Status.STATIONARY, Status.REL_TOL, Status.FVALQUIT)

    @property
    def solution_present(self) -> bool:
        """The run produced iterates (everything except errors before the first step)."""
        return self is not Status.NONFINITE_AT_X0


_MESSAGES = {
    Status.STATIONARY: "converged: stationarity measure <= opt_tol at a point feasible to tolerance",
    Status.REL_TOL: "converged: relative decrease of the penalty <= rel_tol at a feasible point",
    Status.FVALQUIT: "target objective reached: f <= fvalquit at a feasible point",
    Status.USER_HALT: "halted by the user (halt_log_fn / callback returned True, or Ctrl-C)",
    Status.MAXIT: "maximum number of iterations reached (raise maxit, or loosen opt_tol)",
    Status.MAX_TIME: "clock time limit reached (maxclocktime)",
    Status.LINESEARCH_BRACKET_FEASIBLE: (
        "line search bracketed a minimizer but found no weak-Wolfe point, at a feasible iterate: "
        "often the attainable accuracy on a nonsmooth problem (try a looser opt_tol or a larger "
        "ngrad / evaldist to certify stationarity); if the stationarity value is still large, "
        "the run stalled instead: rescale f or the constraints, or give a box as bounds= "
        "rather than folded into a constraint"
    ),
    Status.LINESEARCH_BRACKET_INFEASIBLE: (
        "line search failed (bracketed, no weak-Wolfe point) at an infeasible iterate, with no "
        "fallback left: the constraints may be locally infeasible; try another x0 or mu0"
    ),
    Status.LINESEARCH_NO_BRACKET: (
        "line search found no bracket: the penalty function may be unbounded below along the "
        "search direction; try a smaller mu0 (see soln.mu_lowest) or check the problem is bounded"
    ),
    Status.NO_DESCENT: "no descent direction found after all fallbacks (numerical limit reached)",
    Status.NONFINITE_AT_X0: "non-finite values at x0 (retired code; ncvx raises ProblemError)",
    Status.USER_FUNCTION_ERROR: (
        "the user's function raised an exception during the run; it is attached as result.error "
        "and the best points found so far are kept"
    ),
    Status.QP_FAILURE: "every QP solve for the search direction failed and no fallback was left",
    Status.UNKNOWN_ERROR: "an unexpected internal error stopped the run; see result.error",
}


@dataclass(frozen=True)
class Iterate:
    """One point of the run.

    ``x`` has shape ``(n,)``; ``ci``/``ce`` are the flattened constraint values; violations
    ``tvi``, ``tve``, ``tv`` are l-infinity; ``mu`` is the penalty parameter in force.
    """

    x: torch.Tensor
    f: float
    ci: torch.Tensor
    ce: torch.Tensor
    tvi: float
    tve: float
    tv: float
    feasible: bool
    mu: float


@dataclass
class Result:
    """Everything a solve returns.

    ``final`` is the last accepted iterate; ``best`` the lowest-f point seen that was feasible to
    tolerance (``None`` if none was, unconstrained: the lowest f seen); ``most_feasible`` the
    point with the smallest violation (ties: lower f).
    """

    status: Status
    final: Iterate
    best: Iterate | None
    most_feasible: Iterate
    iters: int
    fn_evals: int
    grad_evals: int
    stat_value: float
    mu: float
    bfgs: BFGSStats
    hessian_state: Any
    qp_requests: int = 0
    qp_failures: int = 0
    mu_lowest: float | None = None
    error: BaseException | None = None
    seconds: float = 0.0
    constrained: bool = True
    scalings: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def message(self) -> str:
        return self.status.message

    @property
    def success(self) -> bool:
        return self.status.is_success

    @property
    def x(self) -> torch.Tensor:
        """The recommended answer: ``best`` when available, else ``final``."""
        return (self.best or self.final).x

    @property
    def fun(self) -> float:
        return (self.best or self.final).f

    @property
    def qp_failure_rate(self) -> float:
        """Percent of QP solves whose first attempt failed."""
        return 100.0 * self.qp_failures / self.qp_requests if self.qp_requests else 0.0

    def __repr__(self) -> str:
        pick = self.best or self.final
        return (
            f"Result(status={self.status.name} ({int(self.status)}), f={pick.f:.10g}, "
            f"tv={pick.tv:.3g}, iters={self.iters}, fn_evals={self.fn_evals}, "
            f"stat_value={self.stat_value:.3g}, seconds={self.seconds:.3g})"
        )


def is_finite_number(v: float) -> bool:
    return isinstance(v, float) and math.isfinite(v)
