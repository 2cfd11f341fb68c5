"""Best and most-feasible points over every evaluated point (line-search trials included)."""

from __future__ import annotations

import math

from .penalty import PenaltyPoint
from .result import Iterate


def to_iterate(point: PenaltyPoint) -> Iterate:
    """Freeze a point's values into an :class:`Iterate` (detached copies)."""
    ev = point.ev
    return Iterate(
        x=ev.x.detach().clone(),
        f=point.f,
        ci=ev.ci.detach().clone(),
        ce=ev.ce.detach().clone(),
        tvi=point.viol.tvi,
        tve=point.viol.tve,
        tv=point.viol.tv,
        feasible=point.feasible,
        mu=point.mu,
    )


class BestTracker:
    """Keeps the best feasible and the most feasible point seen (values only, no gradients)."""

    def __init__(self, constrained: bool) -> None:
        self.constrained = constrained
        self.best: Iterate | None = None
        self.most_feasible: Iterate | None = None

    def observe(self, point: PenaltyPoint) -> None:
        f, tv = point.f, point.viol.tv
        if math.isnan(f) or math.isnan(tv):
            return
        if not self.constrained:
            if math.isfinite(f) and (self.best is None or f < self.best.f):
                self.best = to_iterate(point)
            return
        mf = self.most_feasible
        if mf is None or tv < mf.tv or (tv == mf.tv and f < mf.f):
            self.most_feasible = to_iterate(point)
        if point.feasible and math.isfinite(f) and (self.best is None or f < self.best.f):
            self.best = to_iterate(point)
