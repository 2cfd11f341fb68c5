"""The BFGS-SQP main loop (GRANSO's algorithm): evaluate, steer, search, update, certify.

The loop only orchestrates; each step lives in its own module. Observers (the table printer,
``halt_log_fn``, user callbacks) receive an :class:`~ncvx.callbacks.IterationRecord` after the
starting point and after every accepted step; a truthy return value halts the run.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import torch

from .bfgs_pair import GradientChange
from .bounds import Box, masked
from .callbacks import IterationRecord
from .directions import DirectionFinder, FallbackLadder
from .errors import OptionsError, ProblemError, QPBackendError
from .hessian import LBFGS, DenseBFGS, UpdateInfo
from .hessian.conditioning import ConditionCap
from .line_search import LineSearchResult, LineSearchSettings, LineSearchStatus, weak_wolfe
from .neighborhood import NeighborhoodCache
from .options import Options
from .penalty import PenaltyPoint
from .problem.evaluator import Evaluation, Evaluator, UserFunctionError, nonfinite_report
from .qp import QPSolver
from .result import Result, Status
from .stationarity import SimplexWarmStart, StationarityResult, smooth_shortcut, stationarity
from .steering import SteeringSettings
from .tracking import BestTracker, to_iterate

logger = logging.getLogger("ncvx")

Observer = Callable[[IterationRecord], Any]


#: Memory budget of the gradient-sample cache when ``ngrad`` is left at its default.
SAMPLE_CACHE_BYTES = 256 * 2**20

#: With simple bounds: recomputations of a direction after fixing the variables it pushed out.
_FIXING_ROUNDS = 4
#: With simple bounds: doublings of the step along the projected path past the first bound.
_EXTENSION_STEPS = 12
#: An infeasible point gets a correction try once its violation has not halved for this many
#: iterations in a row, while it is at most _CORRECT_BELOW times the violation tolerance (near
#: the constraints: far from them the step would be a large Gauss-Newton jump).
_LINGER_ITERATIONS = 10
_CORRECT_BELOW = 1e4
#: ... and at most this many violated constraints (the correction factors their Gram matrix).
_CORRECT_MAX_ROWS = 1000
#: consecutive first-level iterations whose step was shorter than the initial step, after which a
#: line search starts at its guess instead of the initial step (see ``weak_wolfe``)
_SHORT_STREAK = 3
#: An accepted step at least this many times its direction makes the certificate also check
#: the measure times the step (:meth:`BFGSSQP._certificate_holds`): two doublings or more.
STRETCHED_STEP = 4.0
#: The automatic condition cap (``regularize_damped_threshold``) starts once this share of the
#: last ``DAMPED_WINDOW`` applied BFGS updates were damped: the signature of variables that
#: enter f and the constraints linearly (SVM slacks: 157 of 159 on svm-2000; none on A1–C3).
DAMPED_WINDOW = 20
DAMPED_SHARE = 0.8


class _Stop(Exception):
    """Internal: ends the loop with a status."""

    def __init__(self, status: Status, error: BaseException | None = None) -> None:
        self.status = status
        self.error = error


class BFGSSQP:
    """One run of the solver on an :class:`Evaluator` from ``x0`` (``(n,)``)."""

    def __init__(
        self,
        evaluator: Evaluator,
        x0: torch.Tensor,
        options: Options,
        observers: Sequence[Observer] = (),
        qp: QPSolver | None = None,
        box: Box | None = None,
    ) -> None:
        self.ev = evaluator
        self.box = box
        self._bound_multipliers: torch.Tensor | None = None  # last steering multipliers
        if box is not None:
            x0_in = box.project(x0)
            if not torch.equal(x0_in, x0):
                logger.warning(
                    "x0 is outside the bounds by up to %.3g: starting from its projection",
                    box.violation(x0),
                )
            x0 = x0_in
        self.opts = options
        self.observers = list(observers)
        self.n = evaluator.n
        self.x0 = x0
        if qp is None:
            try:
                qp = QPSolver(options.QPsolver, tol=options.qp_tol)
            except ValueError as exc:
                raise OptionsError(f"QPsolver={options.QPsolver!r}: {exc}") from exc
        self.qp = qp
        self.start_time = time.perf_counter()
        self.mu_lowest: float | None = None

    # ------------------------------------------------------------------------------ setup
    def initial_point(self) -> Evaluation:
        """Evaluate and validate ``x0`` (values and gradients), applying prescaling."""
        ev = self.ev.evaluate(self.x0, first=True)
        bad = nonfinite_report(ev, self.ev.ci_names, self.ev.ce_names)
        if bad:
            raise ProblemError(f"non-finite values at the starting point x0: {bad}")
        try:
            ev.ensure_gradients()
        except ProblemError:
            raise
        except RuntimeError as exc:
            raise ProblemError(f"computing gradients at x0 failed: {exc}") from exc
        assert ev.grad_f is not None and ev.J_i is not None and ev.J_e is not None
        for name, g in (("f", ev.grad_f), ("ci", ev.J_i), ("ce", ev.J_e)):
            if not bool(torch.isfinite(g).all()):
                raise ProblemError(f"the gradient of {name} is not finite at the starting point x0")
        thr = self.opts.prescaling_threshold
        if math.isfinite(thr):
            self._prescale(ev, thr)
        return ev

    def _prescale(self, ev: Evaluation, thr: float) -> None:
        assert ev.grad_f is not None and ev.J_i is not None and ev.J_e is not None

        def factor(norms: torch.Tensor) -> torch.Tensor:
            return torch.where(norms > thr, thr / norms, torch.ones_like(norms))

        sf = float(factor(torch.linalg.vector_norm(ev.grad_f).reshape(1))[0])
        s_ci = factor(torch.linalg.vector_norm(ev.J_i, dim=1))
        s_ce = factor(torch.linalg.vector_norm(ev.J_e, dim=1))
        self.ev.set_scaling(sf, s_ci, s_ce)
        ev.f, ev.ci, ev.ce = ev.f * sf, ev.ci * s_ci, ev.ce * s_ce
        ev.grad_f, ev.J_i, ev.J_e = ev.grad_f * sf, ev.J_i * s_ci[:, None], ev.J_e * s_ce[:, None]
        ev._C = None  # [J_e; J_i] is concatenated again from the scaled rows
        if self.opts.prescaling_info_msg and self.opts.print_level:
            logger.info(
                "prescaling: f x %.3g, %d constraints rescaled",
                sf,
                int((s_ci < 1).sum() + (s_ce < 1).sum()),
            )

    def make_hessian(self, dtype: torch.dtype, device: torch.device) -> DenseBFGS | LBFGS:
        o, n = self.opts, self.n
        H0 = o.H0
        if H0 is not None:
            if tuple(H0.shape) != (n, n):
                raise ProblemError(f"H0 must have shape ({n}, {n}), got {tuple(H0.shape)}")
            H0 = H0.to(device=device, dtype=dtype)
            if o.limited_mem_size == 0 and H0.is_sparse:
                H0 = H0.to_dense()
            if o.checkH0:
                dense = H0.to_dense() if H0.is_sparse else H0
                sym = 0.5 * (dense + dense.T)
                if not bool(torch.isfinite(dense).all()) or torch.linalg.cholesky_ex(sym)[1] != 0:
                    raise ProblemError(
                        "H0 is not symmetric positive definite (set checkH0=False to skip this test)"
                    )
        if o.limited_mem_size == 0:
            if H0 is None:
                H0 = torch.eye(n, dtype=dtype, device=device)
            return DenseBFGS(H0, scale_first=o.scaleH0, damping=o.bfgs_damping)
        lb = LBFGS(
            n,
            o.limited_mem_size,
            H0=H0,
            scaling=o.scaleH0,
            fixed_scaling=o.limited_mem_fixed_scaling,
            damping=o.bfgs_damping,
            dtype=dtype,
            device=device,
        )
        if o.limited_mem_warm_start is not None:
            try:
                lb.load_state(o.limited_mem_warm_start)
            except (ValueError, KeyError) as exc:
                raise ProblemError(str(exc)) from exc
        return lb

    # ------------------------------------------------------------------------------ the run
    def run(self) -> Result:
        o = self.opts
        ev0 = self.initial_point()
        dtype, device = ev0.x.dtype, ev0.x.device
        self.constrained = ev0.ci.numel() + ev0.ce.numel() > 0
        mu = float(o.mu0) if self.constrained else 1.0
        self.tracker = BestTracker(self.constrained)
        point = self._penalty_point(ev0, mu)
        self.point = point
        self.hessian = self.make_hessian(dtype, device)
        self.apply_H_qp = self._qp_operator()
        self.cache = NeighborhoodCache(
            o.resolved_ngrad(self.n),
            o.evaldist,
            max_bytes=None if o.ngrad is not None else SAMPLE_CACHE_BYTES,
        )
        lowest, highest = o.min_fallback_level, o.max_fallback_level
        if not self.constrained:
            lowest, highest = max(lowest, 2), max(lowest, highest, 2)
        self.ladder = FallbackLadder(lowest, highest, o.max_random_attempts)
        gen = torch.Generator().manual_seed(o.seed + 1)
        self.directions = DirectionFinder(
            self.hessian,
            self.qp,
            SteeringSettings(
                o.steering_c_viol,
                o.steering_c_mu,
                o.steering_maxit,
                bool(o.steering_l1_model),
                o.steering_ineq_margin,
            ),
            self.apply_H_qp,
            gen,
        )
        self.iters = 0
        self.pair = GradientChange(
            o.bfgs_y, ev0.ce.numel() > 0 or self.box is not None or o.limited_mem_size > 0
        )
        self._short_streak = 0
        self._damped: collections.deque[bool] = collections.deque(maxlen=DAMPED_WINDOW)
        self.damped_cap_from: int | None = None  # the iteration the automatic cap started
        # accepted steps of the last iterations (1.0 for other levels), for the certificate
        self._recent_steps: collections.deque[float] = collections.deque(
            maxlen=max(o.stat_step_window, 1)
        )
        self._last_alpha = 0.0  # the last first-level step (0: none; the next search starts at init)
        self.feasibility_corrections = 0
        self._lingering = 0  # iterations in a row just outside the violation tolerance
        self._linger_from = math.inf
        self._last_combination: torch.Tensor | None = None  # the last QP's G y (for the bound)
        self._simplex_warm = SimplexWarmStart()  # termination QPs of unconstrained problems
        status: Status = Status.MAXIT
        error: BaseException | None = None
        try:
            stat = self._stationarity(point)
            halted = self._emit(
                IterationRecord(
                    0,
                    point,
                    self.constrained,
                    torch.zeros_like(point.x),
                    0,
                    0,
                    1,
                    0.0,
                    stat.n_samples,
                    stat.value,
                    stat.qp_form,
                    stat.d,
                    self.hessian,
                    {"H_regularized": self._h_regularized},
                )
            )
            early = self._converged(point, stat.value, math.inf, halted)
            if early is not None:
                raise _Stop(early)
            for _ in range(o.maxit):
                self.point = self._iterate(self.point)
            status = Status.MAXIT
        except _Stop as stop:
            status, error = stop.status, stop.error
        except UserFunctionError as exc:
            status, error = Status.USER_FUNCTION_ERROR, exc.original
            logger.error("the user's function raised: %r", exc.original)
        except KeyboardInterrupt:
            status = Status.USER_HALT
            logger.warning("interrupted: returning the best point found so far")
        except QPBackendError as exc:
            status, error = Status.QP_FAILURE, exc
        except ProblemError as exc:
            status, error = Status.USER_FUNCTION_ERROR, exc
        except Exception as exc:  # an internal error must not lose the user's progress
            logger.exception("internal error")
            status, error = Status.UNKNOWN_ERROR, exc
        return self._result(self.point, status, error)

    # ------------------------------------------------------------------------------ one step
    def _iterate(self, point: PenaltyPoint) -> PenaltyPoint:
        """Find a direction, search along it, update H; returns the accepted point."""
        o = self.opts
        first = self.iters == 0
        reattempts = o.linesearch_reattempts_x0 if first else o.linesearch_reattempts
        c_mu_ls = o.linesearch_c_mu_x0 if first else o.linesearch_c_mu
        ladder = self.ladder
        ladder.reset()
        evals = 0
        base = point  # the iterate; its mu may be lowered by line-search reattempts
        while True:
            try:
                d, mu, multipliers = self._direction(base, ladder.level)
            except QPBackendError as exc:
                logger.warning("steering QP failed at level %d: %s", ladder.level, exc)
                if not ladder.bump():
                    raise _Stop(Status.QP_FAILURE, exc) from exc
                continue
            start = base if mu == base.mu else base.with_mu(mu)
            if o.search_direction_rescaling:
                d = d / torch.linalg.vector_norm(d).clamp_min(torch.finfo(d.dtype).tiny)
            slope = float(start.grad_phi @ d)
            descent = slope < 0
            if not math.isfinite(slope) or (not descent and o.linesearch_nondescent_maxit == 0):
                if not ladder.bump():
                    raise _Stop(Status.NO_DESCENT)
                continue
            cap = min(math.inf if descent else o.linesearch_nondescent_maxit, o.linesearch_maxit)
            settings = self._ls_settings(cap)
            if self.box is not None:
                settings = replace(settings, max_step=self.box.max_step(start.x, d))
                if settings.max_step <= 0.0:  # blocked by a bound at once: next fallback
                    if not ladder.bump():
                        raise _Stop(Status.NO_DESCENT)
                    continue
            guess = (
                min(settings.init_step, self._last_alpha)
                if o.linesearch_warm_step and self._first_level(ladder) and self._last_alpha > 0
                else None
            )
            ls = weak_wolfe(
                self._evaluator_at(start.mu),
                start,
                d,
                settings,
                guess,
                guess_first=self._short_streak >= _SHORT_STREAK,
                predict=o.linesearch_warm_step,
            )
            evals += ls.n_evals
            if ls.status == LineSearchStatus.OK and ls.alpha >= settings.max_step:
                ls = self._projected_extension(start, d, ls, settings)
                evals += ls.n_evals
            if ls.status in (LineSearchStatus.OK, LineSearchStatus.FVALQUIT):
                # the next search's guess: only a step along a first-level direction says
                # anything about the next one
                usual = self._first_level(ladder)
                self._last_alpha = ls.alpha if usual else 0.0
                self._recent_steps.append(ls.alpha if usual else 1.0)
                short = usual and ls.alpha < settings.init_step
                self._short_streak = self._short_streak + 1 if short else 0
                break
            if not descent:  # a failed nondescent search: next fallback, else no direction
                if not ladder.bump():
                    raise _Stop(Status.NO_DESCENT)
                continue
            if ls.status == LineSearchStatus.NO_BRACKET:
                if self.constrained and reattempts > 0:
                    reattempts -= 1
                    base = base.with_mu(base.mu * c_mu_ls)
                    self.mu_lowest = base.mu
                    logger.info("line search did not bracket; retrying with mu = %g", base.mu)
                    continue
                if self.constrained:
                    self.mu_lowest = start.mu
                raise _Stop(Status.LINESEARCH_NO_BRACKET)
            if o.disable_terminationcode_6 and ladder.level == 3 and ls.alpha > 0:
                break
            if point.feasible and o.halt_on_linesearch_bracket:
                raise _Stop(Status.LINESEARCH_BRACKET_FEASIBLE)
            if not ladder.bump():
                raise _Stop(
                    Status.LINESEARCH_BRACKET_FEASIBLE
                    if point.feasible
                    else Status.LINESEARCH_BRACKET_INFEASIBLE
                )
        new = self._feasibility_correction(ls.point)
        s = new.x - start.x
        y = self.pair(start, new, multipliers, self.iters + 1)
        rel_diff = (
            abs(new.phi - start.phi) / abs(start.phi)
            if mu == point.mu and start.phi != 0
            else math.inf
        )
        if bool((s != 0).any()):
            info = self.hessian.update(s, y)
            self._note_update(info)
            if not info.applied:
                logger.debug(
                    "BFGS update skipped at iteration %d (%s)", self.iters + 1, info.reason
                )
        else:
            self.hessian.stats.record_skip()
        # measured with the updated H, the one the next steering QP uses (a one-sample
        # termination QP is that steering QP and is shared with it); the last iteration
        # allowed: its measure is the final one, so the QP's
        stat = self._stationarity(new, exact=self.iters + 1 >= self.opts.maxit)
        self.iters += 1
        halted = self._emit(
            IterationRecord(
                self.iters,
                new,
                self.constrained,
                d,
                ladder.level,
                ladder.attempt,
                evals,
                ls.alpha,
                stat.n_samples,
                stat.value,
                stat.qp_form,
                stat.d,
                self.hessian,
                {"H_regularized": self._h_regularized},
            )
        )
        done = self._converged(new, stat.value, rel_diff, halted)
        if done is not None:
            self.point = new
            raise _Stop(done)
        return new

    @staticmethod
    def _first_level(ladder: Any) -> bool:
        """Whether the direction is of the ladder's first level (not random)."""
        return bool(ladder.level == ladder.lowest and ladder.level < 4)

    # ------------------------------------------------------------------------------ feasibility
    def _feasibility_correction(self, point: PenaltyPoint) -> PenaltyPoint:
        """An infeasible point whose violation has stalled, moved onto the constraints when that
        does not raise the penalty function.

        With a nonsmooth objective the line search's steps can be too short for the steering's
        linearized feasibility to take hold, and the iterates can hug the constraints slightly
        infeasible for hundreds of iterations (example A3 with n = 100: the sphere constraint
        stayed at 1e-4 to 1e-3 for 150 iterations at μ = 1); the best point feasible to
        tolerance is then an early one. The minimum-norm Gauss–Newton correction
        ``Δ = −J_vᵀ(J_v J_vᵀ)⁺ c_v`` over the violated inequalities and the equalities is tried
        once the violation, at most :data:`_CORRECT_BELOW` times the tolerance, has not halved
        for :data:`_LINGER_ITERATIONS` iterations in a row (normal convergence to feasibility
        halves it sooner); it is kept only if it lowers the
        violation without raising φ (which it does whenever the penalty is exact,
        ``μ |λ| < 1``)."""
        near = point.viol.tv <= _CORRECT_BELOW * max(self.opts.viol_ineq_tol, self.opts.viol_eq_tol)
        if point.feasible or not self.constrained or not near:
            self._lingering, self._linger_from = 0, math.inf
            return point
        if point.viol.tv < 0.5 * self._linger_from:  # the violation is still going down
            self._lingering, self._linger_from = 0, point.viol.tv
            return point
        self._lingering += 1
        if self._lingering < _LINGER_ITERATIONS:
            return point
        self._lingering, self._linger_from = 0, math.inf
        ev = point.ev
        ev.ensure_gradients()
        assert ev.J_i is not None and ev.J_e is not None
        violated = ev.ci > 0
        c = torch.cat([ev.ci[violated], ev.ce])
        J = torch.cat([ev.J_i[violated], ev.J_e])
        if not 0 < c.numel() <= _CORRECT_MAX_ROWS or not bool(torch.isfinite(J).all()):
            return point
        gram = J @ J.T
        step = -(J.T @ (torch.linalg.pinv(gram, hermitian=True) @ c))
        x = point.x + step
        if self.box is not None:
            x = self.box.project(x)
        trial = self._evaluator_at(point.mu)(x)
        if trial.viol.tv < point.viol.tv and trial.phi <= point.phi:
            self.feasibility_corrections += 1
            return trial
        trial.ev.drop_graph()
        return point

    # ------------------------------------------------------------------------------ bounds
    def _free(self, point: PenaltyPoint) -> torch.Tensor | None:
        """Variables not held at a bound (``None``: no box). Held are those at a bound that both
        the negative penalty gradient and the negative gradient of the Lagrangian
        ``mu f + yᵀc`` (``y``: the last steering QP's multipliers, when there are any) push out
        of the box; the direction finder then also fixes any other it would push out.

        Either gradient alone can be wrong: at a feasible point the penalty gradient ignores the
        active constraints, which may pull a variable inwards; the multipliers of an earlier
        point may be stale (at an infeasible point they can hold the one variable that would
        reduce the violation)."""
        if self.box is None:
            return None
        held = self.box.held(point.x, -point.grad_phi)
        y = self._bound_multipliers
        ev = point.ev
        if bool(held.any()) and y is not None and y.numel() == ev.ce.numel() + ev.ci.numel():
            ev.ensure_gradients()
            assert ev.grad_f is not None and ev.J_e is not None and ev.J_i is not None
            g = point.mu * ev.grad_f + y.to(ev.grad_f) @ ev.C
            held = held & self.box.held(point.x, -g)
        return ~held

    def _projected_extension(
        self,
        start: PenaltyPoint,
        d: torch.Tensor,
        ls: LineSearchResult,
        settings: LineSearchSettings,
    ) -> LineSearchResult:
        """From a step that stopped at the first bound along ``d``, go on along the projected
        path ``P(x + t d)``: double ``t`` (up to the initial step) while φ decreases and keeps
        the projected sufficient decrease ``φ ≤ φ(x) + c1 ∇φᵀ(P(x + t d) - x)``. Returns the
        furthest such point (``n_evals`` counts only the extra evaluations)."""
        assert self.box is not None
        evaluate = self._evaluator_at(start.mu)
        best, t, evals = ls.point, ls.alpha, 0
        while t < settings.init_step and evals < _EXTENSION_STEPS:
            t = min(2.0 * t, settings.init_step)
            trial = evaluate(start.x + t * d)  # projected by the evaluator
            evals += 1
            decrease = float(start.grad_phi @ (trial.x - start.x))
            if not (trial.phi < best.phi and trial.phi <= start.phi + settings.c1 * decrease):
                trial.ev.drop_graph()
                break
            best = trial
        return LineSearchResult(t if best is not ls.point else ls.alpha, best, ls.status, evals)

    def _direction(
        self, point: PenaltyPoint, level: int
    ) -> tuple[torch.Tensor, float, torch.Tensor | None]:
        """The direction of ``level``; with bounds, in the subspace of the variables it does not
        push out of the box (those at a bound that it would push out are fixed and it is
        recomputed, a few times at most; what is left of such components is dropped)."""
        free = self._free(point)
        if free is None or self.box is None:
            return self.directions(point, level, shared=point.shared_qp)
        for _ in range(_FIXING_ROUNDS):
            d, mu, multipliers = self.directions(point, level, free)
            if multipliers is not None:
                self._bound_multipliers = multipliers
            out = self.box.held(point.x, d) & free
            if not bool(out.any()):
                return d, mu, multipliers
            free = free & ~out
        return torch.where(out, 0.0, d), mu, multipliers

    # ------------------------------------------------------------------------------ helpers
    def _penalty_point(self, ev: Evaluation, mu: float) -> PenaltyPoint:
        p = PenaltyPoint.create(ev, mu, self.opts.viol_ineq_tol, self.opts.viol_eq_tol)
        self.tracker.observe(p)
        return p

    def _evaluator_at(self, mu: float) -> Callable[[torch.Tensor], PenaltyPoint]:
        box = self.box

        def evaluate(x: torch.Tensor) -> PenaltyPoint:
            if box is not None:  # trial points up to the first bound: only rounding to remove
                x = box.project(x)
            return self._penalty_point(self.ev.evaluate(x), mu)

        return evaluate

    def _ls_settings(self, cap: float) -> LineSearchSettings:
        o = self.opts
        return LineSearchSettings(
            verify_stop=self.constrained,
            c1=o.wolfe1,
            c2=o.wolfe2,
            step_tol=o.step_tol,
            init_step=o.init_step_size,
            max_evals=cap,
            fvalquit=o.fvalquit,
            backtracking=bool(o.is_backtrack_linesearch),
        )

    def _stationarity(
        self, point: PenaltyPoint, *, exact: bool = False, again: bool = False
    ) -> StationarityResult:
        """The stationarity measure at ``point`` (``exact``: always the QP's value, never the
        lower bound that ``stat_skip_qp`` reports where the measure cannot stop the run;
        ``again``: ``point`` was measured before, its gradients are already in the cache)."""
        free = self._free(point)
        res = smooth_shortcut(point, self.opts.opt_tol, free)
        if res is None:
            ev = point.ev
            ev.ensure_gradients()
            assert ev.grad_f is not None and ev.J_i is not None and ev.J_e is not None
            if not again:
                self.cache.push(point.x, [ev.grad_f[None], ev.J_i, ev.J_e])
            # the measure of the subspace of the variables not held (``free``)
            samples = self.cache.near(point.x, free=free)
            apply_H = self.apply_H_qp
            grad_phi = point.grad_phi
            if free is not None:
                apply_H = masked(apply_H, free)
                grad_phi = torch.where(free, grad_phi, 0.0)
            certify_below = None
            if self.opts.stat_skip_qp and not exact:
                certify_below = self.opts.opt_tol if point.feasible else -math.inf
            res = stationarity(
                point,
                samples,
                apply_H,
                self.qp,
                l2=bool(self.opts.stat_l2_model),
                certify_below=certify_below,
                grad_phi=grad_phi,
                hint=self._last_combination,
                share=free is None and self.constrained,
                decide_below=self.opts.opt_tol if point.feasible else None,
                warm=self._simplex_warm,
            )
            if res.combination is not None:
                self._last_combination = res.combination
            if res.steering is not None and free is None:
                point.shared_qp = res.steering
        point.stat_value = res.value
        point.stat_bounded = res.qp_form == 3
        return res

    def _qp_operator(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """``hessian.apply``, or with a finite ``regularize_threshold`` the condition-capped
        operator (:class:`~ncvx.hessian.conditioning.ConditionCap`)."""
        thr = self.opts.regularize_threshold
        if not math.isfinite(thr) and not math.isfinite(self.opts.regularize_damped_threshold):
            return self.hessian.apply
        return ConditionCap(self.hessian, thr, bool(self.opts.regularize_max_eigenvalues))

    def _note_update(self, info: UpdateInfo) -> None:
        """Switch the automatic condition cap on (``regularize_damped_threshold``) once at least
        :data:`DAMPED_SHARE` of the last :data:`DAMPED_WINDOW` applied BFGS updates were damped
        (it stays on for the rest of the run)."""
        cap = self.apply_H_qp
        if not info.applied or not isinstance(cap, ConditionCap) or self.damped_cap_from:
            return
        if math.isfinite(self.opts.regularize_threshold):
            return  # the user's cap applies throughout
        self._damped.append(info.damped)
        if len(self._damped) == DAMPED_WINDOW and sum(self._damped) >= DAMPED_SHARE * DAMPED_WINDOW:
            self.damped_cap_from = self.iters + 1
            cap.set_threshold(self.opts.regularize_damped_threshold)
            logger.info(
                "%d of the last %d BFGS updates were damped: H's condition number is capped at "
                "%g in the QPs from iteration %d on",
                sum(self._damped),
                DAMPED_WINDOW,
                self.opts.regularize_damped_threshold,
                self.iters + 1,
            )

    def _h_regularized(self) -> torch.Tensor | None:
        """The capped H used in the QPs (``(n, n)``), when the cap changes H (else None)."""
        cap = self.apply_H_qp
        if isinstance(cap, ConditionCap) and cap.active:
            return cap.matrix()
        return None

    def _emit(self, record: IterationRecord) -> bool:
        halt = False
        for obs in self.observers:
            try:
                halt = bool(obs(record)) or halt
            except StopIteration:
                halt = True
            except (KeyboardInterrupt, UserFunctionError):
                raise
            except Exception as exc:  # the user's callback / halt_log_fn failed
                raise UserFunctionError(exc) from exc
        return halt

    def _converged(
        self, point: PenaltyPoint, stat: float, rel_diff: float, halted: bool
    ) -> Status | None:
        o = self.opts
        if point.feasible:
            if stat <= o.opt_tol and self._certificate_holds(stat):
                return Status.STATIONARY
            if rel_diff <= o.rel_tol:
                return Status.REL_TOL
            if point.f <= o.fvalquit:
                return Status.FVALQUIT
        if halted:
            return Status.USER_HALT
        if time.perf_counter() - self.start_time > o.maxclocktime:
            return Status.MAX_TIME
        return None

    def _certificate_holds(self, stat: float) -> bool:
        """Whether a measure ``stat <= opt_tol`` may certify: when one of the last
        ``stat_step_window`` accepted steps was stretched to ``t >= STRETCHED_STEP`` times its
        direction, also ``t · stat`` (largest such ``t``) must be at most ``opt_tol``.

        A step the line search stretched to ``t`` times the direction says that ``H`` is about
        ``t`` times too small along it; the measure, a norm weighted by the same ``H``, then
        understates the distance from stationarity. (An SVM's slack variables, linear in ``f``
        and the constraints, make BFGS swing ``H``'s scale there by orders of magnitude, and
        the measure dips below ``opt_tol`` 2.7e-4 above the optimum three iterations after a
        step stretched to t = 53.8: svm-2000.) Single doublings (t = 2) are common on the way
        into a minimizer and do not count: on HS21 with ``opt_tol = 1e-8`` counting them turned
        the certificate into code 6.
        """
        o = self.opts
        window = o.stat_step_window
        if window == 0 or o.search_direction_rescaling or not self._recent_steps:
            return True
        stretch = max(self._recent_steps)
        return stretch < STRETCHED_STEP or stat * stretch <= o.opt_tol

    def _result(self, point: PenaltyPoint, status: Status, error: BaseException | None) -> Result:
        if point.stat_bounded:
            # stopped early (time, halt, Ctrl-C, an error) after a lower bound: report the QP's
            # value at this point, with H as it is now (updated after that bound)
            # on failure the lower bound stays (still a true statement about the measure)
            with contextlib.suppress(QPBackendError, KeyboardInterrupt):
                self._stationarity(point, exact=True, again=True)
        final = to_iterate(point)
        best = self.tracker.best
        most_feasible = self.tracker.most_feasible or final
        scalings = None
        if self.ev.is_scaled:
            scalings = {"f": self.ev.scale_f, "ci": self.ev.scale_ci, "ce": self.ev.scale_ce}
        return Result(
            status=status,
            final=final,
            best=best,
            most_feasible=most_feasible,
            iters=self.iters,
            fn_evals=self.ev.n_values,
            grad_evals=self.ev.n_gradients,
            stat_value=point.stat_value,
            mu=point.mu,
            bfgs=self.hessian.stats,
            hessian_state=self.hessian.state(),
            qp_requests=self.qp.requests,
            qp_failures=self.qp.failures,
            mu_lowest=self.mu_lowest if status == Status.LINESEARCH_NO_BRACKET else None,
            error=error,
            seconds=time.perf_counter() - self.start_time,
            constrained=self.constrained,
            scalings=scalings,
            extra={
                "lagrangian_fallbacks": self.pair.fallbacks,
                "bfgs_pair": self.pair.used(self.constrained),
                "bfgs_pair_from": self.pair.switched_at,
                "feasibility_corrections": self.feasibility_corrections,
                "condition_capped": getattr(self.apply_H_qp, "times_capped", 0),
                "damped_cap_from": self.damped_cap_from,
            },
        )
