"""What the BFGS update learns from (option ``bfgs_y``): the change of the penalty gradient
(GRANSO's pair) or of a Lagrangian ``μ f + wᵀc`` with the constraints' weights ``w`` held fixed
along the step (the steering QP's multipliers, and 1 for rows violated at both ends where
``bfgs_y="auto"`` decides so).

:class:`GradientChange` computes the pair's ``y`` for the solver; :class:`PairChoice` decides,
for ``"auto"``, which weights the run uses.
"""

from __future__ import annotations

import logging

import torch

from .penalty import PenaltyPoint

logger = logging.getLogger("ncvx")


class GradientChange:
    """The BFGS ``y`` of a step: the change of the penalty gradient (GRANSO), or, with
    ``bfgs_y`` other than ``"penalty"`` and a steered step, of the Lagrangian
    ``μ f + y_eᵀce + y_iᵀci`` with the steering QP's multipliers held fixed (rows violated at
    both ends weighted 1 under :data:`VIOLATED_PAIR`). The Lagrangian leaves out the jumps of
    the l1 violation term at constraints that are exactly active (which the QP already models)
    and keeps the curvature of f and of the constraints.

    Where the Lagrangian has no positive curvature along the step (``sᵀy <= 0``: near a saddle
    of the reduced problem, or with poor multiplier estimates) while the penalty function has,
    the penalty pair is used for that step instead (counted in :attr:`fallbacks`): damping a
    nonpositive pair would otherwise shrink H step after step (example B3 with d = 2 stalled at
    a non-critical point with a tiny H-weighted stationarity measure).

    Args:
        option: ``bfgs_y`` (``"auto"``, ``"lagrangian"`` or ``"penalty"``).
        lagrangian_only: ``"auto"`` keeps the plain Lagrangian pair (equality constraints,
            simple bounds or limited-memory BFGS).
    """

    def __init__(self, option: str, lagrangian_only: bool) -> None:
        self.choice = PairChoice(option, lagrangian_only)
        self.fallbacks = 0
        #: the iteration from which ``"auto"`` weighs violated rows fully (``None``: never)
        self.switched_at: int | None = None

    def used(self, constrained: bool) -> str:
        """The pair the run used (see :meth:`PairChoice.used`)."""
        return self.choice.used(constrained)

    def __call__(
        self,
        old: PenaltyPoint,
        new: PenaltyPoint,
        multipliers: torch.Tensor | None,
        iteration: int,
    ) -> torch.Tensor:
        """``y`` (``(n,)``) for the step from ``old`` to ``new``; ``multipliers`` ``[y_e; y_i]``
        of the steering QP (``None``: not a steered step)."""
        y_penalty = new.grad_phi - old.grad_phi
        if self.choice.kind == "penalty" or multipliers is None:
            return y_penalty
        a, b = old.ev, new.ev
        a.ensure_gradients()
        b.ensure_gradients()
        assert a.J_e is not None and b.J_e is not None and a.J_i is not None and b.J_i is not None
        was = self.choice.kind
        if self.choice.observe(a.J_i, b.J_i) == VIOLATED_PAIR and was != VIOLATED_PAIR:
            self.switched_at = iteration
            logger.info(
                "every inequality's gradient changed along the first steps (no equalities, no "
                "simple bounds, full BFGS): rows violated at both ends of a step weigh 1 in the "
                "BFGS pair from iteration %d on",
                iteration,
            )
        # rows ordered like the multipliers: [J_e; J_i]
        weights = multipliers
        if self.choice.kind == VIOLATED_PAIR:
            # where a row is violated at both ends the penalty function is smooth in it with
            # weight 1: its curvature, not the multiplier estimate's share of it
            both = (a.ci > 0) & (b.ci > 0)
            m_e = a.J_e.shape[0]
            weights = multipliers.clone()
            weights[m_e:] = torch.where(both, torch.ones_like(weights[m_e:]), weights[m_e:])
        y = new.mu * (new.grad_f - old.grad_f) + weights @ b.C - weights @ a.C
        s = new.x - old.x
        if float(s @ y) <= 0 < float(s @ y_penalty):
            self.fallbacks += 1
            return y_penalty
        return y


#: Steered BFGS updates over which ``bfgs_y="auto"`` watches the inequality rows' gradients.
PAIR_PROBES = 3
#: Jacobian entries compared at a time by :class:`PairChoice` (bounds its temporary memory).
_COMPARE_ELEMENTS = 1 << 22
#: The pair ``bfgs_y="auto"`` switches to (``Result.extra["bfgs_pair"]``).
VIOLATED_PAIR = "lagrangian+violated"


class PairChoice:
    """Which change of gradient the BFGS update learns from (option ``bfgs_y``).

    ``"auto"`` starts with the Lagrangian pair (the steering multipliers as the constraints'
    weights) and, once every inequality row's gradient has changed between the two ends of
    some steered step within the first :data:`PAIR_PROBES` (all constraints nonlinear
    inequalities), gives weight 1 instead to every row violated at both ends of a step
    (:data:`VIOLATED_PAIR`, for the rest of the run): there the penalty function is smooth in
    that row and weighs it fully, while the steering QP's multiplier is a model estimate that
    can be far smaller (example A2 while infeasible: 0.006 … 0.4). Rows that change sign along
    the step keep their multiplier (GRANSO's penalty pair would take the jump of ``max(c, 0)``'s
    gradient, noise at an active row: Hock–Schittkowski 10 and 12 took 108 and 111 iterations
    with it, 14 and 10 without). With equality constraints, simple bounds or limited-memory BFGS
    ``"auto"`` keeps the Lagrangian pair throughout: measured, the weights moved the CNN attack
    with its box as rows to worse feasibility after its 100 iterations, and L-BFGS rescales its
    base ``γ = sᵀy / yᵀy`` from every pair, so one pair weighted by a violated row shrinks all of
    ``H`` (the discrepancy-constrained deep image prior lost 0.08–0.20 dB with GRANSO's pair).
    Example A2 (full BFGS, one spectral-abscissa row): median best f over sixteen starts 11.08
    with the weights, 11.19 without; PyGRANSO 11.11 (sixteen starts).
    """

    def __init__(self, option: str, lagrangian_only: bool) -> None:
        self.kind = option
        self._changed: torch.Tensor | None = None
        self._probes = 0
        if option == "auto":
            self.kind = "lagrangian" if lagrangian_only else "pending"

    def used(self, constrained: bool) -> str:
        """The pair the run used, for the result: without constraints the penalty gradient is
        ``∇f`` (``"penalty"``); still undecided means the Lagrangian pair."""
        if not constrained:
            return "penalty"
        return "lagrangian" if self.kind == "pending" else self.kind

    def observe(self, J_a: torch.Tensor, J_b: torch.Tensor) -> str:
        """Record a steered step's inequality Jacobians at its ends (``(m_i, n)`` each) while
        undecided; returns the pair to use for this step (``"lagrangian"`` or
        :data:`VIOLATED_PAIR`)."""
        if self.kind != "pending":
            return self.kind
        if J_a.shape[0] == 0:
            self.kind = "lagrangian"
            return self.kind
        if self._changed is None:
            self._changed = torch.zeros(J_a.shape[0], dtype=torch.bool, device=J_a.device)
        rows = (~self._changed).nonzero().squeeze(1)
        # in blocks of rows: an SVM's (10 000, 5021) Jacobians copied whole cost 0.5 GB of peak
        step = max(1, _COMPARE_ELEMENTS // max(J_a.shape[1], 1))
        for lo in range(0, rows.numel(), step):
            block = rows[lo : lo + step]
            self._changed[block] = (J_b[block] != J_a[block]).any(dim=1)
        self._probes += 1
        if bool(self._changed.all()):
            self.kind = VIOLATED_PAIR
            return self.kind
        if self._probes >= PAIR_PROBES:
            self.kind = "lagrangian"
        return "lagrangian"
