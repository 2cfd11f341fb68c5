"""``linesearch_warm_step``: line searches that start from the previous step's scale follow the
same iterates as searches from t = 1 on problems whose sufficient decrease holds below a
threshold along each direction, with fewer function evaluations."""

from __future__ import annotations

import pytest
import torch

import ncvx

F64 = torch.float64


def _sparse_direction_problem(n: int = 16, m: int = 2560, seed: int = 1):
    """``(1/m)‖qᵀY‖₁`` on the sphere ``qᵀq = 1`` (dictionary learning, SPEC example A3): its
    BFGS steps overshoot the kinks, so the searches backtrack persistently."""
    g = torch.Generator().manual_seed(seed)
    Y = torch.randn(n, m, generator=g, dtype=F64) * (torch.rand(n, m, generator=g) < 0.3)
    q0 = torch.randn(n, generator=g, dtype=F64)
    q0 = q0 / q0.norm()

    def fn(q):
        return (q @ Y).abs().sum() / m, None, (q @ q - 1).reshape(1)

    return fn, q0


def _smooth_problem(n: int = 8):
    """A convex quadratic with a linear equality: BFGS steps are accepted at t = 1."""
    g = torch.Generator().manual_seed(1)
    B = torch.randn(n, n, generator=g, dtype=F64)
    A = B @ B.T + torch.eye(n, dtype=F64)

    def fn(x):
        return 0.5 * x @ A @ x + x.sum(), None, (x[:2].sum() - 1).reshape(1)

    return fn, torch.zeros(n, dtype=F64)


@pytest.mark.parametrize("make", [_sparse_direction_problem, _smooth_problem])
def test_same_iterates_fewer_evaluations(make):
    fn, x0 = make()
    runs = {}
    for warm in (False, True):
        trace: list[torch.Tensor] = []
        res = ncvx.solve(
            fn,
            x0,
            maxit=150,
            print_level=0,
            linesearch_warm_step=warm,
            callback=lambda r, trace=trace: trace.append(r.point.x.clone()),
        )
        runs[warm] = (res, torch.stack(trace))
    (plain, xs_plain), (warm, xs_warm) = runs[False], runs[True]
    assert warm.status == plain.status and warm.iters == plain.iters
    torch.testing.assert_close(xs_warm, xs_plain, rtol=0, atol=0)
    assert warm.fn_evals <= plain.fn_evals
    if make is _sparse_direction_problem:
        assert plain.fn_evals / plain.iters > 3  # the case the option is for
        assert warm.fn_evals < 0.85 * plain.fn_evals
