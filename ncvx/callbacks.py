"""What the main loop tells its observers after each iteration."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from .penalty import PenaltyPoint

DIRECTION_LABELS = {0: "S", 1: "SI", 2: "QN", 3: "GD", 4: "R"}


@dataclass(frozen=True)
class IterationRecord:
    """One row of the iteration log (iteration 0 is the starting point).

    Attributes:
        iteration: accepted iterations so far.
        point: the current iterate with its penalty data (``point.x`` is ``(n,)``).
        constrained: whether the problem has constraints.
        direction: ``(n,)`` search direction that produced the step (zeros at iteration 0).
        fallback_level: 0 steering, 1 steering with H=I, 2 quasi-Newton, 3 gradient, 4 random.
        random_attempt: attempt number at level 4 (0 otherwise).
        ls_evals: function evaluations in this iteration (failed attempts included).
        alpha: accepted step size.
        n_samples: gradient samples used by the stationarity measure.
        stat_value: stationarity measure.
        stat_form: 0 smooth shortcut, 1 QP with H, 2 QP with I, -1 failed, 3 a lower
            bound (no QP: the measure cannot stop the run here; option ``stat_skip_qp``).
        stat_vector: the stationarity vector (``(n,)``) or ``None`` (forms -1 and 3).
        hessian: the inverse-Hessian object (call ``.state()`` for a copy).
        extra: further data; ``"H_regularized"`` is a function returning the condition-capped
            ``(n, n)`` H the QPs used (``regularize_threshold``), or ``None`` when the cap left
            H unchanged.
    """

    iteration: int
    point: PenaltyPoint
    constrained: bool
    direction: torch.Tensor
    fallback_level: int
    random_attempt: int
    ls_evals: int
    alpha: float
    n_samples: int
    stat_value: float
    stat_form: int
    stat_vector: torch.Tensor | None
    hessian: Any
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def direction_label(self) -> str:
        if self.iteration == 0:
            return "-"
        label = DIRECTION_LABELS[self.fallback_level]
        return f"{label}{self.random_attempt}" if self.fallback_level == 4 else label

    @property
    def is_fallback(self) -> bool:
        return self.fallback_level > (0 if self.constrained else 2)


#: ``callback(record) -> bool | None``; returning True stops the run (status USER_HALT).
Callback = Callable[[IterationRecord], Any]


class History:
    """A callback that records f, violation, mu and stationarity per iteration, for plotting."""

    def __init__(self) -> None:
        self.iteration: list[int] = []
        self.f: list[float] = []
        self.tv: list[float] = []
        self.mu: list[float] = []
        self.stat_value: list[float] = []

    def __call__(self, record: IterationRecord) -> None:
        self.iteration.append(record.iteration)
        self.f.append(record.point.f)
        self.tv.append(record.point.viol.tv)
        self.mu.append(record.point.mu)
        self.stat_value.append(record.stat_value)
