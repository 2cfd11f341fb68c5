"""Robust front end: scale, solve, check, retry, fall back, clean up.

Ladder of attempts for one QP (stopping at the first answer with ``kkt ≤ tol``):

1. the selected backend (a backend that needs a positive definite ``P`` gets ``P + ridge·I``
   with a few proximal-point steps that remove the ridge's bias);
2. the same backend on ``P + retry_ridge·I``, again with proximal-point steps;
3. each fallback backend in turn, as in step 1.

Every answer is clipped into the box (and put back on the equality row), then judged by
:func:`ncvx.qp.kkt_residuals` on the *original* problem; the most accurate one is returned.
If even that one has ``kkt > loose_tol``, :class:`ncvx.errors.QPBackendError` is raised.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from ncvx.errors import QPBackendError
from ncvx.qp import registry
from ncvx.qp.check import kkt_residuals, reduced_linear_term
from ncvx.qp.types import QPProblem, QPSolution


@dataclass(frozen=True)
class _Scaled:
    """The problem in the solver's units: ``x = sx·x̂`` and objective divided by ``so``."""

    P: np.ndarray
    q: np.ndarray
    lb: np.ndarray
    ub: np.ndarray
    A: np.ndarray | None
    b: np.ndarray | None
    sx: float


@dataclass(frozen=True)
class _Record:
    """One rung of the ladder: its label, the best point it produced and that point's residual."""

    label: str
    x: np.ndarray | None
    kkt: float
    calls: int
    error: str | None = None

    def describe(self) -> str:
        if self.x is None:
            return f"{self.label}: {self.error}"
        return f"{self.label}: kkt={self.kkt:.2e}"


def _box_scale(problem: QPProblem) -> float:
    sx = max(float(np.max(np.abs(problem.lb))), float(np.max(np.abs(problem.ub))))
    return sx if sx > 0.0 else 1.0


def _objective_scale(problem: QPProblem, q_max: float) -> float:
    sx = _box_scale(problem)
    p_max = max(float(problem.P.max()), -float(problem.P.min()))
    so = max(sx * sx * p_max, sx * q_max)
    return so if so > 0.0 else 1.0


def _scaled(problem: QPProblem, so: float) -> _Scaled:
    """Scale so that ``max|P̂|``, ``max|q̂|`` and the box are all ≤ 1 (one of them = 1).

    ``q`` is first reduced along the equality row (same minimisers, see
    :func:`ncvx.qp.check.reduced_linear_term`).
    """
    sx = _box_scale(problem)
    P = (problem.P + problem.P.T) * (0.5 * sx * sx / so)
    q = reduced_linear_term(problem) * (sx / so)
    b = None if problem.b is None else problem.b / sx
    return _Scaled(P, q, problem.lb / sx, problem.ub / sx, problem.A, b, sx)


def restore_feasibility(problem: QPProblem, x: np.ndarray) -> np.ndarray:
    """Clip ``x`` into the box and, with an equality row, move it back onto ``a·x = b``.

    The correction is spread over the coordinates strictly inside the box, in proportion to
    their room towards the needed direction (all coordinates if those lack room), so active
    bounds stay active and the result stays in the box.

    Args:
        problem: the QP.
        x: (k,) point.

    Returns:
        A new (k,) point in ``[lb, ub]`` with ``a·x = b`` up to rounding.
    """
    x = np.clip(np.asarray(x, dtype=np.float64), problem.lb, problem.ub)
    if problem.A is None or problem.b is None:
        return x
    a = problem.A[0]
    deficit = float(problem.b[0]) - float(a @ x)
    if deficit == 0.0:
        return x
    direction = np.sign(a) * np.sign(deficit)  # how each x_i must move to shrink the deficit
    room = np.where(direction > 0, problem.ub - x, np.where(direction < 0, x - problem.lb, 0.0))
    inside = (x > problem.lb) & (x < problem.ub)
    for mask in (inside, np.ones_like(inside)):
        capacity = float(np.abs(a) @ (room * mask))
        if capacity > 0.0 and (capacity >= abs(deficit) or mask is not inside):
            t = min(1.0, abs(deficit) / capacity)
            return np.clip(x + direction * room * mask * t, problem.lb, problem.ub)
    return x


class QPSolver:
    """Solve :class:`QPProblem` s accurately with a retry / fallback ladder.

    Args:
        backend: ``"auto"`` or a name from :func:`ncvx.qp.available_backends`.
        tol: an answer with max scaled KKT residual ≤ ``tol`` is accepted ("optimal").
        fallbacks: backends tried after the selected one fails; ``None`` means
            :data:`ncvx.qp.registry.DEFAULT_FALLBACKS`. Unavailable ones are skipped; unknown
            names raise ``ValueError``.
        loose_tol: the best answer is still returned ("inaccurate") if its residual is
            ≤ ``loose_tol``; above it :class:`~ncvx.errors.QPBackendError` is raised.
        ridge: ridge (relative to the scaled ``max|P| = 1``) always added for backends that need
            a positive definite ``P``.
        retry_ridge: ridge of the regularized retry.
        prox_steps: max proximal-point steps per regularized attempt.

    Attributes:
        requests: number of QPs solved (or attempted).
        failures: QPs whose first attempt was not accepted.
        hard_failures: QPs for which every attempt failed (``QPBackendError`` raised).
        last_attempts: one line per rung of the most recent solve (label and residual/error).
    """

    def __init__(
        self,
        backend: str = "auto",
        *,
        tol: float = 1e-9,
        fallbacks: tuple[str, ...] | None = None,
        loose_tol: float = 1e-6,
        ridge: float = 1e-10,
        retry_ridge: float = 1e-7,
        prox_steps: int = 5,
    ) -> None:
        if not 0.0 < tol <= loose_tol:
            raise ValueError(f"need 0 < tol ≤ loose_tol, got tol={tol}, loose_tol={loose_tol}")
        if ridge < 0.0 or retry_ridge <= 0.0 or prox_steps < 1:
            raise ValueError("need ridge ≥ 0, retry_ridge > 0 and prox_steps ≥ 1")
        self.backend = registry.select_backend(backend)
        names = registry.DEFAULT_FALLBACKS if fallbacks is None else tuple(fallbacks)
        unknown = [n for n in names if n not in registry.BACKENDS]
        if unknown:
            raise ValueError(
                f"unknown fallback backend(s) {unknown}; known: {sorted(registry.BACKENDS)}"
            )
        self.fallbacks = tuple(
            dict.fromkeys(n for n in names if n != self.backend and registry.is_available(n))
        )
        self.tol = tol
        self.loose_tol = loose_tol
        self.ridge = ridge
        self.retry_ridge = retry_ridge
        self.prox_steps = prox_steps
        self.requests = 0
        self.failures = 0
        self.hard_failures = 0
        self.last_attempts: list[str] = []

    @property
    def failure_rate(self) -> float:
        """Percentage of requests whose first attempt was not accepted."""
        return 100.0 * self.failures / self.requests if self.requests else 0.0

    def _plan(self) -> list[tuple[str, float, int]]:
        """Rungs of the ladder as ``(backend, ridge, proximal steps)``."""

        def first_try(name: str) -> tuple[str, float, int]:
            if registry.BACKENDS[name].needs_pd:
                return name, self.ridge, self.prox_steps
            return name, 0.0, 1

        plan = [first_try(self.backend), (self.backend, self.retry_ridge, self.prox_steps)]
        plan.extend(first_try(name) for name in self.fallbacks)
        return plan

    def _attempt(
        self,
        problem: QPProblem,
        scaled: _Scaled,
        name: str,
        ridge: float,
        steps: int,
        x0: np.ndarray | None,
    ) -> _Record:
        """Run one rung: ``steps`` proximal-point solves of ``P̂ + ridge·I`` (one if no ridge)."""
        label = name if ridge == 0.0 else f"{name}+ridge({ridge:.0e})"
        run = registry.runner(name)
        P = scaled.P
        if ridge > 0.0:
            P = P + ridge * np.eye(P.shape[0])
        center = None if x0 is None else np.clip(x0, problem.lb, problem.ub) / scaled.sx
        best: _Record | None = None
        calls = 0
        for _ in range(steps):
            q = scaled.q if (ridge == 0.0 or center is None) else scaled.q - ridge * center
            calls += 1
            try:
                with registry.quiet():
                    xs = run(P, q, scaled.lb, scaled.ub, scaled.A, scaled.b, center)
                xs = np.asarray(xs, dtype=np.float64).reshape(-1)
                if xs.shape != q.shape or not np.all(np.isfinite(xs)):
                    raise RuntimeError(f"returned an invalid point of shape {xs.shape}")
            except Exception as exc:  # any backend failure moves the ladder on
                if best is None:
                    best = _Record(label, None, float("inf"), calls, f"{type(exc).__name__}: {exc}")
                break
            x = restore_feasibility(problem, xs * scaled.sx)
            kkt = kkt_residuals(problem, x)["kkt"]
            if best is None or kkt < best.kkt:
                best = _Record(label, x, kkt, calls)
            if kkt <= self.tol:
                break
            center = x / scaled.sx
        assert best is not None
        return replace(best, calls=calls)

    def solve(self, problem: QPProblem, x0: np.ndarray | None = None) -> QPSolution:
        """Solve ``problem`` (see the module docstring for the ladder).

        Args:
            problem: the QP.
            x0: optional (k,) starting point (warm start / proximal center).

        Returns:
            The most accurate answer found.

        Raises:
            QPBackendError: no attempt produced an answer with ``kkt ≤ loose_tol``.
        """
        return self._solve(problem, x0, None, time.perf_counter())

    def _solve(
        self,
        problem: QPProblem,
        x0: np.ndarray | None,
        pre: _Record | None,
        start: float,
    ) -> QPSolution:
        self.requests += 1
        records = [] if pre is None else [pre]
        if pre is None or pre.kkt > self.tol:
            q_max = float(np.max(np.abs(reduced_linear_term(problem))))
            so = _objective_scale(problem, q_max)
            scaled = _scaled(problem, so)
            for name, ridge, steps in self._plan():
                record = self._attempt(problem, scaled, name, ridge, steps, x0)
                records.append(record)
                if record.kkt <= self.tol:
                    break
        return self._finish(records, start)

    def _finish(self, records: list[_Record], start: float) -> QPSolution:
        self.last_attempts = [r.describe() for r in records]
        if records[0].kkt > self.tol:
            self.failures += 1
        best = min(records, key=lambda r: r.kkt)
        if best.x is None or best.kkt > self.loose_tol:
            self.hard_failures += 1
            raise QPBackendError(
                f"no QP backend reached the loose tolerance {self.loose_tol:g} "
                f"(tried {'; '.join(self.last_attempts)})"
            )
        return QPSolution(
            x=best.x,
            backend=best.label,
            status="optimal" if best.kkt <= self.tol else "inaccurate",
            kkt=best.kkt,
            attempts=sum(r.calls for r in records),
            seconds=time.perf_counter() - start,
        )

    def solve_many(
        self,
        P: np.ndarray,
        qs: list[np.ndarray],
        lb: np.ndarray,
        ub: np.ndarray,
        A: np.ndarray | None = None,
        b: np.ndarray | None = None,
    ) -> list[QPSolution]:
        """Solve the QPs that share ``P`` (and bounds) but differ in ``q`` (the steering loop).

        Each answer warm-starts the next. With the OSQP backend one ``osqp.OSQP`` object is set
        up once and only ``q`` is updated, reusing its factorization; any answer it gets wrong
        goes through the full ladder of :meth:`solve`. This is the single place to plug in
        other factorization-reusing backends.

        Args:
            P: (k, k) PSD matrix shared by all problems.
            qs: list of (k,) linear terms.
            lb: (k,) lower bounds.
            ub: (k,) upper bounds.
            A: optional (1, k) equality row.
            b: optional (1,) right-hand side.

        Returns:
            One :class:`QPSolution` per entry of ``qs``, in order.
        """
        problems = [QPProblem(P, q, lb, ub, A, b) for q in qs]
        if not problems:
            return []
        if self.backend == "osqp":
            return self._solve_many_osqp(problems)
        out: list[QPSolution] = []
        x0 = None
        for problem in problems:
            out.append(self.solve(problem, x0))
            x0 = out[-1].x
        return out

    def _solve_many_osqp(self, problems: list[QPProblem]) -> list[QPSolution]:
        first = problems[0]
        q_red = [reduced_linear_term(p) for p in problems]
        so = _objective_scale(first, max(float(np.max(np.abs(q))) for q in q_red))
        base = _scaled(first, so)
        k = first.k
        session = None
        out: list[QPSolution] = []
        x0: np.ndarray | None = None
        for problem, q_i in zip(problems, q_red, strict=True):
            start = time.perf_counter()
            q = q_i * (base.sx / so)
            pre: _Record
            try:
                with registry.quiet():
                    if session is None:
                        session = registry.osqp_setup(base.P, q, base.lb, base.ub, base.A, base.b)
                    else:
                        session.update(q=q)
                    xs = registry.osqp_solve(session, k, None if x0 is None else x0 / base.sx)
                x = restore_feasibility(problem, xs * base.sx)
                pre = _Record("osqp(reused)", x, kkt_residuals(problem, x)["kkt"], 1)
            except Exception as exc:
                pre = _Record("osqp(reused)", None, float("inf"), 1, f"{type(exc).__name__}: {exc}")
            out.append(self._solve(problem, x0, pre, start))
            x0 = out[-1].x
        return out
