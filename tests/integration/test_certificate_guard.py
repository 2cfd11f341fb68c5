"""The certificate's guard against stretched steps (option ``stat_step_window``)."""

from __future__ import annotations

import collections
import types

import pytest
import torch

import ncvx
from ncvx._solver import BFGSSQP


def _solver_state(window: int, steps: list[float], rescaling: bool = False) -> object:
    opts = types.SimpleNamespace(
        opt_tol=1e-6, stat_step_window=window, search_direction_rescaling=rescaling
    )
    recent = collections.deque(steps, maxlen=max(window, 1))
    return types.SimpleNamespace(opts=opts, _recent_steps=recent)


@pytest.mark.parametrize(
    "window, steps, stat, holds",
    [
        (5, [], 9e-7, True),  # no step yet (iteration 0): the measure alone
        (5, [1.0, 0.5, 2.0], 9e-7, True),  # unit, shorter or once-doubled steps: the measure alone
        (5, [1.0, 53.8, 2.0, 1.25, 1.0], 8.6e-7, False),  # svm-2000's end: 8.6e-7·53.8 > 1e-6
        (5, [1.0, 53.8, 1.0], 1e-8, True),  # 1e-8·53.8 <= 1e-6
        (5, [4.0, 1.0, 1.0], 3e-7, False),  # two doublings count
        (3, [53.8, 1.0, 1.0, 1.0], 9e-7, True),  # out of the window
        (0, [1.0, 53.8, 1.0], 9e-7, True),  # off
    ],
)
def test_the_rule(window: int, steps: list[float], stat: float, holds: bool) -> None:
    state = _solver_state(window, steps)
    assert BFGSSQP._certificate_holds(state, stat) is holds  # type: ignore[arg-type]


def test_ignored_with_search_direction_rescaling() -> None:
    state = _solver_state(5, [1.0, 54.0], rescaling=True)
    assert BFGSSQP._certificate_holds(state, 9e-7) is True  # type: ignore[arg-type]


def _hs21(x: torch.Tensor):
    """Hock–Schittkowski 21: min 0.01 x0² + x1² − 100 s.t. 10 x0 − x1 ≥ 10, box; f* = −99.96."""
    f = 0.01 * x[0] ** 2 + x[1] ** 2 - 100
    ci = torch.stack([10 - 10 * x[0] + x[1], 2 - x[0], x[0] - 50, -50 - x[1], x[1] - 50])
    return f, ci, None


def test_unit_steps_certify_as_without_the_guard() -> None:
    x0 = torch.tensor([-1.0, -1.0], dtype=torch.float64)
    runs = [
        ncvx.solve(_hs21, x0, print_level=0, opt_tol=1e-8, stat_step_window=w) for w in (0, 5)
    ]
    assert runs[0].status == runs[1].status == ncvx.Status.STATIONARY
    assert runs[0].iters == runs[1].iters
    assert torch.equal(runs[0].final.x, runs[1].final.x)
    assert abs(float(runs[1].final.f) + 99.96) < 1e-6
