"""Robust front end: scale, solve, check, polish, retry, fall back.

The backends see a Jacobi-scaled problem (unit diagonal ``P̂``, see :func:`_scaled`). Ladder
of attempts for one QP, stopping at the first answer with ``kkt ≤ tol``:

1. the selected backend (a backend that needs a positive definite ``P`` gets
   ``P̂ + ridge·I`` and up to ``prox_steps`` proximal-point solves that remove the ridge's bias);
2. the same backend on ``P̂ + retry_ridge·I``, again with proximal-point solves;
3. each fallback backend in turn, as in step 1.

Every answer is clipped into the box (and put back on the equality row), judged by
:func:`ncvx.qp.kkt_residuals` on the *original* problem and, if not yet accepted, refined by
:func:`polish` (active-set Newton steps). The most accurate answer is returned; if even that
one has ``kkt > loose_tol``, :class:`ncvx.errors.QPBackendError` is raised.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
from threadpoolctl import ThreadpoolController

from ncvx.errors import QPBackendError
from ncvx.qp import registry
from ncvx.qp.check import (
    Linearization,
    box_sizes,
    kkt_residuals,
    kkt_with_linearization,
    linearize,
    reduced_linear_term,
)
from ncvx.qp.structured import StructuredQP
from ncvx.qp.types import QPProblem, QPSolution


@dataclass(frozen=True)
class _Scaled:
    """The problem in the backends' units: ``x = D x̂`` (Jacobi scaling, ``D = diag(d)``)."""

    P: np.ndarray
    q: np.ndarray
    lb: np.ndarray
    ub: np.ndarray
    A: np.ndarray | None
    b: np.ndarray | None
    d: np.ndarray

    def with_q(self, q: np.ndarray) -> _Scaled:
        """Same scaling for another (unscaled, reduced) linear term."""
        return replace(self, q=q * self.d)


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


def _scaled(problem: QPProblem) -> _Scaled:
    """Jacobi-scale the problem: ``P̂ = DPD`` has a unit diagonal, ``q̂ = Dq̃``, box ``/ d``.

    ``d_i = 1/√P_ii`` (``P_ii`` floored at ``1e-12 · max P_ii``); with ``P = 0`` the box sizes
    are used instead, so the box becomes ``[-1, 1]``-sized. The bad scaling of a Gram matrix
    with columns of very different norms moves into the bounds, which active-set methods
    handle exactly and interior-point methods equilibrate anyway. ``q`` is first reduced along
    the equality row (same minimisers, see :func:`ncvx.qp.check.reduced_linear_term`).
    """
    diag = np.diag(problem.P)
    top = float(np.max(diag))
    d = 1.0 / np.sqrt(np.maximum(diag, 1e-12 * top)) if top > 0.0 else box_sizes(problem)
    P = (problem.P + problem.P.T) * (0.5 * d[:, None] * d[None, :])
    q = reduced_linear_term(problem)[0] * d
    A = None if problem.A is None else problem.A * d
    return _Scaled(P, q, problem.lb / d, problem.ub / d, A, problem.b, d)


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


def _guess_face(
    problem: QPProblem, x: np.ndarray, lin: Linearization | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Masks ``(lower, upper)`` of the coordinates taken as active at ``x``.

    A coordinate is active at a bound when its scaled projected-gradient step
    ``x_i/s_i - h_i/w_i`` (symbols of :mod:`ncvx.qp.check`) lands on or beyond that bound.
    ``lin``: the linearization at ``x`` if already known.
    """
    lin = linearize(problem, x) if lin is None else lin
    step = x / lin.s - lin.h / lin.w
    lower = step <= problem.lb / lin.s
    upper = ~lower & (step >= problem.ub / lin.s)
    return lower, upper


def _face_direction(
    problem: QPProblem, y: np.ndarray, free: np.ndarray, lin: Linearization | None = None
) -> tuple[np.ndarray, bool] | None:
    """Descent direction (k,) for the free coordinates (zero elsewhere) and whether it is a ray.

    Builds the Jacobi-scaled KKT matrix ``K`` of ``min f`` over the free coordinates, bordered
    by the equality row, and splits the Newton right-hand side with an eigendecomposition of
    ``K``. The minimal-norm Newton step (pseudo-inverse, range of ``K``) is returned unless it
    is negligible; then, if the component in the null space of ``K`` (zero-curvature directions
    that keep the equality) is significant, the objective decreases linearly along it and it
    is returned as a ray, to be followed up to the first bound. Singular faces are therefore
    handled exactly. ``None`` when there is nothing left to do on this face. ``lin``: the
    linearization at ``y`` if already known.
    """
    lin = linearize(problem, y) if lin is None else lin
    a = None if problem.A is None else problem.A[0]
    PF = problem.P[np.ix_(free, free)]
    diag = np.diag(PF)
    d = 1.0 / np.sqrt(np.maximum(diag, max(1e-12 * float(np.max(diag)), 1e-300)))
    nf = free.size
    aF = None if a is None else a[free] * d
    bordered = aF is not None and bool(np.any(aF != 0.0))
    m = nf + int(bordered)
    K = np.zeros((m, m))
    K[:nf, :nf] = PF * d[:, None] * d[None, :]
    rhs = np.zeros(m)
    rhs[:nf] = -d * lin.h[free]
    if bordered:
        assert aF is not None and a is not None and problem.b is not None
        K[:nf, -1] = aF
        K[-1, :nf] = aF
        rhs[-1] = float(problem.b[0]) - float(a @ y)
    try:
        lam, V = np.linalg.eigh(K)
    except np.linalg.LinAlgError:
        return None
    top = float(np.max(np.abs(lam)))
    if not np.isfinite(top) or top == 0.0:
        return None
    coef = V.T @ rhs
    null = np.abs(lam) <= 1e-11 * m * top
    direction = np.zeros(problem.k)
    step = d * (V[:nf, ~null] @ (coef[~null] / lam[~null]))
    if float(np.max(np.abs(step) / lin.s[free], initial=0.0)) > 1e-14:
        direction[free] = step
        return direction, False
    ray = V[:nf, null] @ coef[null]
    if float(np.max(np.abs(ray), initial=0.0)) > 1e-12 * float(np.max(np.abs(d * lin.w[free]))):
        direction[free] = d * ray
        return direction, True
    return None


def polish(
    problem: QPProblem,
    x: np.ndarray,
    kkt: float | None = None,
    *,
    target: float = 0.0,
    rounds: int = 30,
    patience: int = 8,
    lin: Linearization | None = None,
) -> tuple[np.ndarray, float]:
    """Active-set polishing: feasible Newton steps on the face of the box guessed from ``x``.

    The coordinates guessed active (:func:`_guess_face`) are fixed at their bounds; then, as
    in a primal active-set method, a direction for the free coordinates (:func:`_face_direction`:
    the Newton step, or a zero-curvature descent ray on a singular face) is followed up to the
    first bound it hits (ratio test), that coordinate joins the active set, and so on; after a
    full Newton step the face is guessed again. Every step decreases the objective and keeps
    the box, so a wrong guess costs time, not accuracy. Interior-point answers, which approach
    degenerate bounds slowly, and ridge-biased active-set answers become exact.

    Args:
        problem: the QP.
        x: (k,) approximate solution inside the box.
        kkt: its residual, if already known.
        target: stop as soon as the residual is ≤ target.
        rounds: max steps (each costs an eigendecomposition of the free block).
        patience: give up after this many steps without improving the residual.
        lin: the linearization at ``x`` if already known (with ``kkt``, its residual).

    Returns:
        ``(x, kkt)`` of the best point seen, the input included.
    """
    lb, ub = problem.lb, problem.ub
    best_x = x
    if lin is None or kkt is None:
        best, lin_x = kkt_with_linearization(problem, x)
    else:
        best, lin_x = kkt, lin
    if kkt is not None:
        best = kkt
    stale = 0
    lin_y = lin_x  # the linearization at the current point y (computed once per point)

    def snap(point: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
        return restore_feasibility(problem, np.where(lower, lb, np.where(upper, ub, point)))

    def consider(point: np.ndarray) -> None:
        nonlocal best_x, best, stale, lin_y
        res, lin_y = kkt_with_linearization(problem, point)
        if res < best:
            best_x, best, stale = point, res, 0
        else:
            stale += 1

    lower, upper = _guess_face(problem, x, lin_x)
    free = ~(lower | upper)
    y = snap(x, lower, upper)
    consider(y)
    for _ in range(rounds):
        if best <= target or stale > patience:
            break
        found = _face_direction(problem, y, np.flatnonzero(free), lin_y) if np.any(free) else None
        if found is None:  # optimal on this face: guess the face again
            lower, upper = _guess_face(problem, y, lin_y)
            if np.array_equal(~(lower | upper), free):
                break
            free = ~(lower | upper)
            y = snap(y, lower, upper)
            consider(y)
            continue
        direction, is_ray = found
        with np.errstate(divide="ignore", invalid="ignore"):
            room = np.where(
                direction > 0,
                (ub - y) / direction,
                np.where(direction < 0, (lb - y) / direction, np.inf),
            )
        room[~free] = np.inf
        blocking = int(np.argmin(room))
        alpha = max(float(room[blocking]), 0.0)
        if not is_ray:
            alpha = min(alpha, 1.0)
        elif not np.isfinite(alpha):
            break  # unbounded ray: impossible in a finite box, numerical trouble
        y = y + alpha * direction
        if is_ray or alpha < 1.0:  # the blocking coordinate joins the active set
            free[blocking] = False
            y[blocking] = lb[blocking] if direction[blocking] < 0 else ub[blocking]
        y = restore_feasibility(problem, y)
        consider(y)
    return best_x, best


#: QPs with at most this many variables are solved and checked with single-threaded BLAS:
#: the eigendecompositions and products of the check and the polish are small, and threaded
#: BLAS on them waits for descheduled threads on a busy machine (a 90x90 ``eigh`` on 2 loaded
#: cores: 4.4 ms with 2 threads, 0.9 ms with 1; example B2 2.4-3.9 s -> 1.1 s). Applies to
#: this process's BLAS only, and only while the QP layer runs.
SINGLE_THREAD_BLAS_UP_TO = 2000

_blas: ThreadpoolController | None = None
_blas_libs: list = []  # its BLAS libraries (the controller sees those loaded when it is made)


@contextlib.contextmanager
def _blas_threads_for(k: int) -> Iterator[None]:
    global _blas
    if k > SINGLE_THREAD_BLAS_UP_TO:
        yield
        return
    global _blas_libs
    if _blas is None:
        _blas = ThreadpoolController()
        _blas_libs = _blas.select(user_api="blas").lib_controllers
    if all(lib.num_threads == 1 for lib in _blas_libs):
        yield  # already single-threaded (e.g. OPENBLAS_NUM_THREADS=1): nothing to limit
        return
    with _blas.limit(limits=1, user_api="blas"):
        yield


#: With ``backend="auto"``, QPs with at most this many variables go to DAQP first. Off (0):
#: on degenerate steering QPs (a folded constraint with a zero gradient row) DAQP's vertex
#: multipliers, within tolerance, steered the Lagrangian BFGS pair differently from PIQP's
#: interior ones, and a convex TV deconvolution ended at TV 63.6 instead of 45.4 after 150
#: iterations. With the cheaper checks it is not faster either (B2 1.4 s with PIQP first).
SMALL_QP = 0

#: A structured QP whose interior-point answer is not accepted is densified up to this size
#: (beyond it the dense ladder costs minutes per QP and a failure is reported instead).
DENSE_FALLBACK_MAX = 6000

#: Box-only QPs at least this large first try :func:`box_newton` (one Cholesky factorization,
#: then active-set rounds by triangular solves) before any backend: the steering QPs of a
#: soft-margin SVM with 1000 samples have all but 1–40 multipliers strictly inside their box,
#: and a factorization of the 1000 × 1000 Gram matrix costs 15 ms where PIQP took 90–110 ms
#: (CPU, one thread).
NEWTON_MIN_SIZE = 256
#: Active-set rounds of :func:`box_newton` before it leaves the QP to the backends.
NEWTON_ROUNDS = 30

#: One-variable QPs without an equality row (the steering QP of a problem with one constraint)
#: are answered in closed form, with no backend call (tests switch it off to reach backends).
ONE_VARIABLE_CLOSED_FORM = True


def box_newton(
    P: np.ndarray, q: np.ndarray, lb: np.ndarray, ub: np.ndarray, rounds: int = NEWTON_ROUNDS
) -> np.ndarray | None:
    """``argmin ½ xᵀPx + qᵀx`` on the box ``[lb, ub]`` by guessing the active bounds, for a
    positive definite ``P`` and an answer with few of them.

    One Cholesky factorization of ``P`` gives the stationary point ``x₀ = -P⁻¹q``. Each round
    fixes the free coordinates that left the box at the bound they crossed and frees the fixed
    ones whose multiplier has the wrong sign; the point with the set ``A`` fixed at ``v`` is
    ``x₀ - W λ`` with ``W = P⁻¹E_A`` (one triangular solve pair per newly fixed coordinate) and
    ``(P⁻¹)_{AA} λ = x₀[A] - v``, whose gradient is ``-λ`` on ``A`` and 0 elsewhere. Returns the
    point once the active set is consistent (the KKT conditions hold up to rounding), ``None``
    when ``P`` is not positive definite, after ``rounds`` rounds, or when more than half the
    coordinates would be fixed (a job for the backends).

    Args:
        P: (k, k) symmetric matrix.
        q: (k,) linear term.
        lb, ub: (k,) finite bounds.
        rounds: max active-set rounds.
    """
    import scipy.linalg

    k = q.shape[0]
    try:
        factor = scipy.linalg.cho_factor(P, check_finite=False)
    except np.linalg.LinAlgError:
        return None
    x0 = scipy.linalg.cho_solve(factor, -q, check_finite=False)
    if not np.all(np.isfinite(x0)):
        return None
    side = np.zeros(k, dtype=np.int8)  # -1: fixed at lb, +1: fixed at ub, 0: free
    columns: dict[int, np.ndarray] = {}  # i -> P⁻¹ e_i
    x, g_fixed = x0, np.zeros(0)
    for _ in range(rounds):
        fixed = np.flatnonzero(side)
        if fixed.size:
            new = [i for i in fixed.tolist() if i not in columns]
            if new:
                E = np.zeros((k, len(new)))
                E[new, np.arange(len(new))] = 1.0
                solved = scipy.linalg.cho_solve(factor, E, check_finite=False)
                columns.update(zip(new, solved.T))
            W = np.stack([columns[i] for i in fixed.tolist()], axis=1)  # (k, j)
            v = np.where(side[fixed] < 0, lb[fixed], ub[fixed])
            try:
                lam = np.linalg.solve(W[fixed], x0[fixed] - v)
            except np.linalg.LinAlgError:
                return None
            x = x0 - W @ lam
            x[fixed] = v
            g_fixed = -lam
        else:
            x, g_fixed = x0, np.zeros(0)
        free = side == 0
        below = free & (x < lb)
        above = free & (x > ub)
        leave = np.zeros(k, dtype=bool)
        leave[fixed] = np.where(side[fixed] < 0, g_fixed < 0.0, g_fixed > 0.0)
        if not (below.any() or above.any() or leave.any()):
            return x
        side[leave] = 0
        side[below] = -1
        side[above] = 1
        if np.count_nonzero(side) > k // 2:
            return None
    return None


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
        ridge: ridge always added for backends that need a positive definite ``P``; relative
            to each coordinate's curvature (the scaled ``P̂`` has a unit diagonal).
        retry_ridge: ridge of the regularized retry.
        prox_steps: max proximal-point steps per regularized attempt.
        polish: try :func:`polish` on every answer that is not accepted as is.

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
        prox_steps: int = 3,
        polish: bool = True,
    ) -> None:
        if not 0.0 < tol <= loose_tol:
            raise ValueError(f"need 0 < tol ≤ loose_tol, got tol={tol}, loose_tol={loose_tol}")
        if ridge < 0.0 or retry_ridge <= 0.0 or prox_steps < 1:
            raise ValueError("need ridge ≥ 0, retry_ridge > 0 and prox_steps ≥ 1")
        self.backend = registry.select_backend(backend)
        self.auto = backend == "auto"
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
        self.polish = polish
        self.requests = 0
        self.failures = 0
        self.hard_failures = 0
        self.last_attempts: list[str] = []
        # per caller-given key: the rung that answered that caller's last QP (tried first next)
        # and whether that answer reached ``tol``
        self._lead: dict[str, tuple[tuple[str, float, int], bool]] = {}

    @property
    def failure_rate(self) -> float:
        """Percentage of requests whose first attempt was not accepted."""
        return 100.0 * self.failures / self.requests if self.requests else 0.0

    def _plan(self, k: int) -> list[tuple[str, float, int]]:
        """Rungs of the ladder as ``(backend, ridge, proximal steps)`` for a QP of size ``k``."""

        def first_try(name: str) -> tuple[str, float, int]:
            if registry.BACKENDS[name].needs_pd:
                return name, self.ridge, self.prox_steps
            return name, 0.0, 1

        # The other backends come before the regularized retry of the first: on degenerate
        # QPs (near-duplicate gradient samples) the retry rarely helped while its proximal
        # steps, each polished, cost most of the QP time (example B2: 36 of 236 QPs took 31 of
        # 34 s); an active-set fallback usually lands on the exact face.
        first = self.backend
        others = list(self.fallbacks)
        if self.auto and k <= SMALL_QP and "daqp" in others:
            # small QPs: the active-set solver lands on the exact face (the interior-point
            # default stalls at ~1e-6 on the degenerate termination QPs of example B2)
            others = [first] + [n for n in others if n != "daqp"]
            first = "daqp"
        plan = [first_try(first)]
        plan.extend(first_try(name) for name in others)
        plan.append((self.backend, self.retry_ridge, self.prox_steps))
        return plan

    def _attempt(
        self,
        problem: QPProblem,
        scaled: _Scaled,
        name: str,
        ridge: float,
        steps: int,
        x0: np.ndarray | None,
        settle: bool = False,
        loose: float | None = None,
    ) -> _Record:
        """Run one rung: ``steps`` proximal-point solves of ``P̂ + ridge·I`` (one if no ridge).

        ``settle``: stop at the first answer within ``loose`` (default ``loose_tol``; the
        caller's family of QPs did not reach ``tol`` last time; the further proximal steps gain
        ~2x each)."""
        loose = self.loose_tol if loose is None else loose
        label = name if ridge == 0.0 else f"{name}+ridge({ridge:.0e})"
        run = registry.runner(name)
        P = scaled.P
        diag_ridge = np.zeros(0)
        if ridge > 0.0:
            # P̂ has a unit diagonal (except floored zero columns), so the ridge is relative
            # to each coordinate's own curvature; zero columns get at least ``ridge``.
            diag_ridge = ridge * np.maximum(np.diag(P), 1.0)
            P = P + np.diag(diag_ridge)
        center = None if x0 is None else np.clip(x0, problem.lb, problem.ub) / scaled.d
        best: _Record | None = None
        calls = 0
        for _ in range(steps):
            q = scaled.q if (ridge == 0.0 or center is None) else scaled.q - diag_ridge * center
            calls += 1
            try:
                with registry.quiet(name):
                    xs = run(P, q, scaled.lb, scaled.ub, scaled.A, scaled.b, center)
                xs = np.asarray(xs, dtype=np.float64).reshape(-1)
                if xs.shape != q.shape or not np.all(np.isfinite(xs)):
                    raise RuntimeError(f"returned an invalid point of shape {xs.shape}")
            except Exception as exc:  # any backend failure moves the ladder on
                if best is None:
                    best = _Record(label, None, float("inf"), calls, f"{type(exc).__name__}: {exc}")
                break
            record = self._judge(problem, xs * scaled.d, label, calls, settle, loose)
            if best is None or record.kkt < best.kkt:
                best = record
            if record.kkt <= self.tol or (settle and record.kkt <= loose):
                break
            assert record.x is not None
            center = record.x / scaled.d
        assert best is not None
        return replace(best, calls=calls)

    def _judge(
        self,
        problem: QPProblem,
        x: np.ndarray,
        label: str,
        calls: int,
        settle: bool = False,
        loose: float | None = None,
    ) -> _Record:
        """Make a backend's point feasible, check it and, if not accepted, polish it (with
        ``settle``, not when it is within ``loose``, default ``loose_tol``)."""
        loose = self.loose_tol if loose is None else loose
        x = restore_feasibility(problem, x)
        kkt, lin = kkt_with_linearization(problem, x)
        if kkt > self.tol and self.polish and not (settle and kkt <= loose):
            # a light polish when the answer is within the loose tolerance (the full one cost
            # up to 0.2 s of Python per degenerate termination QP for the last digits)
            light = kkt <= loose
            x_p, kkt_p = polish(
                problem,
                x,
                kkt,
                target=self.tol,
                rounds=4 if light else 10,
                patience=1 if light else 3,
                lin=lin,
            )
            if kkt_p < kkt:
                return _Record(label + "+polish", x_p, kkt_p, calls)
        return _Record(label, x, kkt, calls)

    def solve(
        self,
        problem: QPProblem | StructuredQP,
        x0: np.ndarray | None = None,
        *,
        key: str | None = None,
        loose_tol: float | None = None,
    ) -> QPSolution:
        """Solve ``problem`` (see the module docstring for the ladder).

        Args:
            problem: the QP.
            x0: optional (k,) starting point (warm start / proximal center).
            key: optional name of a family of similar QPs (e.g. one caller's). The rung that
                answered the family's last QP goes first (then the usual order): a family of
                degenerate QPs that the first rung never answers within ``loose_tol`` stops
                paying for it on every QP (example B2's termination QPs: PIQP's answers stall
                at ~1e-5, the regularized active-set rung gets 1e-7 to 1e-11).

            loose_tol: this QP's loose tolerance (at least ``tol``; default the solver's),
                for callers that need less accuracy than the steering QPs (the termination
                QPs: their measure is compared with ``opt_tol``, see
                :data:`ncvx.stationarity.TERMINATION_LOOSE_TOL`).

        Returns:
            The most accurate answer found.

        Raises:
            QPBackendError: no attempt produced an answer with ``kkt ≤ loose_tol``.
        """
        loose = self.loose_tol if loose_tol is None else max(float(loose_tol), self.tol)
        if isinstance(problem, StructuredQP):
            return self._solve_structured(problem, x0, time.perf_counter(), loose)
        with _blas_threads_for(problem.k):
            return self._solve(problem, x0, None, time.perf_counter(), key, loose)

    def _solve_structured(
        self, problem: StructuredQP, x0: np.ndarray | None, start: float, loose: float
    ) -> QPSolution:
        """A sparse + low-rank QP: the structured interior-point method (no dense matrix);
        if its answer is not within ``loose_tol``, the dense ladder when ``k`` allows it."""
        from ncvx.qp.ipm import solve_structured  # scipy.sparse only where it is needed

        self.requests += 1
        try:
            x = restore_feasibility(problem, solve_structured(problem, x0, accept=loose))
            kkt = kkt_residuals(problem, x)["kkt"]
            record = _Record("ipm-structured", x, kkt, 1)
        except (RuntimeError, ValueError, np.linalg.LinAlgError) as exc:
            record = _Record(
                "ipm-structured", None, float("inf"), 1, f"{type(exc).__name__}: {exc}"
            )
        if record.kkt <= loose or problem.k > DENSE_FALLBACK_MAX:
            return self._finish([record], start, loose)
        self.requests -= 1  # the dense ladder counts it again
        dense = QPProblem(
            problem.P.dense(), problem.q, problem.lb, problem.ub, problem.A, problem.b
        )
        with _blas_threads_for(dense.k):
            return self._solve(
                dense,
                x0,
                record if record.x is not None else None,
                start,
                loose=loose,
                settle=loose > self.loose_tol,
            )

    def _solve(
        self,
        problem: QPProblem,
        x0: np.ndarray | None,
        pre: _Record | None,
        start: float,
        key: str | None = None,
        loose: float | None = None,
        settle: bool = False,
    ) -> QPSolution:
        loose = self.loose_tol if loose is None else loose
        self.requests += 1
        if pre is None and problem.k == 1 and problem.A is None and ONE_VARIABLE_CLOSED_FORM:
            return self._one_variable(problem, start)
        records = [] if pre is None else [pre]
        scaled: _Scaled | None = None
        if pre is None and problem.A is None and problem.k >= NEWTON_MIN_SIZE:
            scaled = _scaled(problem)
            x = box_newton(scaled.P, scaled.q, scaled.lb, scaled.ub)
            if x is not None:
                x = restore_feasibility(problem, x * scaled.d)
                kkt = kkt_residuals(problem, x)["kkt"]
                if kkt <= self.tol:
                    return self._finish([_Record("box-newton", x, kkt, 0)], start, loose)
        if pre is None or pre.kkt > self.tol:
            scaled = _scaled(problem) if scaled is None else scaled
            plan = self._plan(problem.k)
            lead, reached = (None, True) if key is None else self._lead.get(key, (None, True))
            settle = settle or not reached
            if lead is not None and lead in plan and lead != plan[0]:
                plan.remove(lead)
                plan.insert(0, lead)
            for rung in plan:
                name, ridge, steps = rung
                record = self._attempt(problem, scaled, name, ridge, steps, x0, settle, loose)
                records.append(record)
                if key is not None and record.kkt <= loose:
                    self._lead[key] = (rung, record.kkt <= self.tol)
                # The first answer within the loose tolerance ends the ladder: going further
                # for the last digits cost up to a second per QP on degenerate termination QPs
                # (near-duplicate gradient samples), where no backend does better than ~1e-6
                # (example B2: 34 s of QPs, versus 0.4 s for the solve).
                if record.kkt <= loose:
                    break
        return self._finish(records, start, loose)

    def _one_variable(self, problem: QPProblem, start: float) -> QPSolution:
        """``min ½ p x² + q x`` on ``[lb, ub]`` in closed form (one constraint's steering QP):
        the clipped stationary point, or the end ``q`` points to when ``p = 0``."""
        p, q = float(problem.P[0, 0]), float(problem.q[0])
        lb, ub = float(problem.lb[0]), float(problem.ub[0])
        if p > 0.0:
            x = min(max(-q / p, lb), ub)
        else:
            x = lb if q > 0.0 else ub if q < 0.0 else min(max(0.0, lb), ub)
        kkt = kkt_residuals(problem, np.array([x]))["kkt"]
        self.last_attempts = [f"closed form: kkt={kkt:.2e}"]
        return QPSolution(
            x=np.array([x]),
            backend="closed-form",
            status="optimal" if kkt <= self.tol else "inaccurate",
            kkt=kkt,
            attempts=0,
            seconds=time.perf_counter() - start,
        )

    def _finish(
        self, records: list[_Record], start: float, loose: float | None = None
    ) -> QPSolution:
        loose = self.loose_tol if loose is None else loose
        self.last_attempts = [r.describe() for r in records]
        if records[0].kkt > self.tol:
            self.failures += 1
        best = min(records, key=lambda r: r.kkt)
        if best.x is None or best.kkt > loose:
            self.hard_failures += 1
            raise QPBackendError(
                f"no QP backend reached the loose tolerance {loose:g} "
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
        with _blas_threads_for(problems[0].k):
            if self.backend == "osqp":
                return self._solve_many_osqp(problems)
            out: list[QPSolution] = []
            x0 = None
            for problem in problems:
                out.append(self.solve(problem, x0))
                x0 = out[-1].x
            return out

    def _solve_many_osqp(self, problems: list[QPProblem]) -> list[QPSolution]:
        base = _scaled(problems[0])
        k = problems[0].k
        session = None
        out: list[QPSolution] = []
        x0: np.ndarray | None = None
        for problem in problems:
            start = time.perf_counter()
            q = base.with_q(reduced_linear_term(problem)[0]).q
            pre: _Record
            try:
                with registry.quiet():
                    if session is None:
                        session = registry.osqp_setup(base.P, q, base.lb, base.ub, base.A, base.b)
                    else:
                        session.update(q=q)
                    xs = registry.osqp_solve(session, k, None if x0 is None else x0 / base.d)
                pre = self._judge(problem, xs * base.d, "osqp(reused)", 1)
            except Exception as exc:
                pre = _Record("osqp(reused)", None, float("inf"), 1, f"{type(exc).__name__}: {exc}")
            out.append(self._solve(problem, x0, pre, start))
            x0 = out[-1].x
        return out
