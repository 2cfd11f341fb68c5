"""The ``RefProblem`` record and solver-independent helpers for evaluating reference problems.

Every reference problem is written in the PyGRANSO ``combined_fn`` style: it receives an object
whose attributes are the variables (float64 tensors shaped as in ``var_spec``) and returns
``(f, ci, ce)``, where ``ci`` / ``ce`` are structs of inequality (``<= 0``) and equality (``== 0``)
constraint tensors, or ``None``.

Nothing in this module needs ``ncvx``: the oracle tests must run (and pass) before the solver
exists. When ``ncvx`` is importable, its ``pygransoStruct`` is used for ``ci`` / ``ce`` so that
the solver sees exactly the user API; otherwise a minimal stand-in with the same attribute
behaviour is used.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from scipy.optimize import OptimizeResult, minimize

try:  # the real struct when the solver exists; the oracle tests do not depend on it
    from ncvx import pygransoStruct as Struct
except ImportError:  # pragma: no cover - exercised only before ncvx.compat lands

    class Struct:  # type: ignore[no-redef]
        """Attribute bag standing in for ``ncvx.pygransoStruct`` (oracle tests only)."""


CombinedFn = Callable[[Any], tuple[torch.Tensor, Any, Any]]

#: Default termination codes accepted from the solver: 0 (stationary and feasible),
#: 2 (fvalquit reached) and 6 (line search bracketed a minimizer without a Wolfe point, at a
#: feasible iterate: the usual "as far as numerically possible" exit on nonsmooth problems).
DEFAULT_CODES: frozenset[int] = frozenset({0, 2, 6})

#: The solver's default l-infinity feasibility tolerance.
FEAS_TOL: float = 1e-6


def make_struct(**entries: torch.Tensor | None) -> Any:
    """Return a ``pygransoStruct`` (or stand-in) with the given constraint tensors set."""
    s = Struct()
    for key, value in entries.items():
        setattr(s, key, value)
    return s


def struct_tensors(s: Any) -> list[torch.Tensor]:
    """The tensors stored in a constraint struct, in insertion order (``None`` entries skipped)."""
    if s is None:
        return []
    return [v for v in vars(s).values() if isinstance(v, torch.Tensor)]


def col(values: list[float] | tuple[float, ...] | np.ndarray) -> torch.Tensor:
    """A float64 column vector ``(n, 1)``."""
    return torch.as_tensor(np.asarray(values, dtype=np.float64)).reshape(-1, 1).clone()


@dataclass(repr=False)
class RefProblem:
    """A test problem with a known optimum, written for the PyGRANSO user API.

    ``f_opt`` is the optimal (for nonconvex problems: the published locally optimal) objective
    value reached from ``x0``; ``oracle`` says where it comes from. A solver passes when its best
    feasible point ``x`` (l-infinity violation ``<= FEAS_TOL``) satisfies
    ``|f(x) - f_opt| <= f_atol + f_rtol * |f_opt|`` and its termination code is in
    ``allowed_codes``.
    """

    name: str
    var_spec: dict[str, list[int]]
    combined_fn: CombinedFn
    x0: torch.Tensor
    f_opt: float
    x_opt: torch.Tensor | None = None
    f_rtol: float = 1e-6
    f_atol: float = 1e-6
    opts: dict[str, Any] = field(default_factory=dict)
    oracle: str = "published HS value"
    smooth: bool = True
    #: Recomputes ``f_opt`` from scratch with an independent solver (linprog / QP); ``None`` when
    #: the check is SLSQP from ``x0`` on the torch functions themselves.
    recompute: Callable[[], float] | None = None
    #: Whether SLSQP started at ``x0`` is expected to reproduce ``f_opt`` (smooth problems).
    slsqp_check: bool = True
    #: Tolerance on ``f(x_opt)`` vs ``f_opt`` and on the violation at ``x_opt``, for published
    #: solutions that are only given to 6-8 digits.
    x_opt_tol: float = 1e-6
    allowed_codes: frozenset[int] = DEFAULT_CODES
    #: Part of the default (fast) solver run; heavy problems are run only with ``-m slow``.
    slow: bool = False
    notes: str = ""

    def __repr__(self) -> str:
        return f"RefProblem({self.name!r}, n={self.n}, f_opt={self.f_opt!r})"

    @property
    def n(self) -> int:
        """Total number of scalar variables."""
        return sum(math.prod(shape) for shape in self.var_spec.values())

    def __post_init__(self) -> None:
        if self.x0.shape != (self.n, 1) or self.x0.dtype != torch.float64:
            raise ValueError(f"{self.name}: x0 must be a float64 ({self.n}, 1) tensor")
        if self.x_opt is not None and self.x_opt.shape != (self.n, 1):
            raise ValueError(f"{self.name}: x_opt must be a ({self.n}, 1) tensor")

    def unflatten(self, x: torch.Tensor) -> SimpleNamespace:
        """Split a flat vector into the named variables (row-major, insertion order)."""
        x = x.reshape(-1)
        out: dict[str, torch.Tensor] = {}
        start = 0
        for name, shape in self.var_spec.items():
            size = math.prod(shape)
            out[name] = x[start : start + size].reshape(shape)
            start += size
        return SimpleNamespace(**out)

    def evaluate(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(f, ci, ce)`` at ``x`` with the constraints flattened into 1-D tensors."""
        f, ci, ce = self.combined_fn(self.unflatten(x))
        flat = [t.reshape(-1) for t in struct_tensors(ci)]
        ci_vec = torch.cat(flat) if flat else x.new_zeros(0)
        flat = [t.reshape(-1) for t in struct_tensors(ce)]
        ce_vec = torch.cat(flat) if flat else x.new_zeros(0)
        return f.reshape(()), ci_vec, ce_vec

    def objective(self, x: torch.Tensor) -> float:
        """``f(x)`` as a float."""
        with torch.no_grad():
            return float(self.evaluate(x)[0])

    def violation(self, x: torch.Tensor) -> float:
        """The l-infinity constraint violation ``max(max(ci, 0), |ce|)`` at ``x``."""
        with torch.no_grad():
            _, ci, ce = self.evaluate(x)
        parts = [torch.zeros(1, dtype=torch.float64), ci.clamp(min=0), ce.abs()]
        return float(torch.cat(parts).max())

    def f_tol(self) -> float:
        """The allowed absolute error in ``f``."""
        return self.f_atol + self.f_rtol * abs(self.f_opt)


def slsqp_minimize(
    problem: RefProblem, x0: torch.Tensor | None = None, maxiter: int = 2000
) -> OptimizeResult:
    """Minimize ``problem`` with ``scipy.optimize.minimize(method="SLSQP")``.

    Objective and constraints are the problem's own torch functions; gradients come from
    autograd. This is the independent oracle for the smooth problems.
    """
    start = (problem.x0 if x0 is None else x0).reshape(-1).numpy().copy()

    def parts(z: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        x = torch.tensor(z, dtype=torch.float64, requires_grad=True)
        f, ci, ce = problem.evaluate(x)
        return x, f, ci, ce

    def fun(z: np.ndarray) -> float:
        with torch.no_grad():
            return float(problem.evaluate(torch.tensor(z, dtype=torch.float64))[0])

    def jac(z: np.ndarray) -> np.ndarray:
        x, f, _, _ = parts(z)
        (g,) = torch.autograd.grad(f, x)
        return g.numpy()

    def cvals(z: np.ndarray, which: int, sign: float) -> np.ndarray:
        with torch.no_grad():
            out = problem.evaluate(torch.tensor(z, dtype=torch.float64))[which]
        return sign * out.numpy()

    def cjac(z: np.ndarray, which: int, sign: float) -> np.ndarray:
        def vec(x: torch.Tensor) -> torch.Tensor:
            return problem.evaluate(x)[which]

        x = torch.tensor(z, dtype=torch.float64)
        return sign * torch.autograd.functional.jacobian(vec, x).numpy()

    _, _, ci, ce = parts(start)
    constraints = []
    if ci.numel():  # scipy wants g(x) >= 0, the problems give ci(x) <= 0
        constraints.append({"type": "ineq", "fun": cvals, "jac": cjac, "args": (1, -1.0)})
    if ce.numel():
        constraints.append({"type": "eq", "fun": cvals, "jac": cjac, "args": (2, 1.0)})
    return minimize(
        fun,
        start,
        jac=jac,
        method="SLSQP",
        constraints=constraints,
        options={"maxiter": maxiter, "ftol": 1e-12},
    )
