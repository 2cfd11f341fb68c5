"""ncvx.fold: folded values against explicit formulas, feasibility identities, gradients."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import ncvx
from ncvx import fold

D = torch.float64

# Magnitudes are 0 or >= 1e-100 so that squares do not underflow (documented for "sumsq").
vectors = st.lists(
    st.one_of(
        st.just(0.0),
        st.floats(1e-100, 3.0).flatmap(lambda a: st.sampled_from([a, -a])),
    ),
    min_size=1,
    max_size=12,
)


def explicit(g: list[float], kind: str) -> float:
    pos = [max(v, 0.0) for v in g]
    return {
        "l2": math.sqrt(sum(p * p for p in pos)),
        "l1": sum(pos),
        "linf": max(pos),
        "max": max(g),
        "sumsq": sum(p * p for p in pos),
    }[kind]


@pytest.mark.parametrize("kind", fold.INEQ_KINDS)
@given(g=vectors)
def test_ineq_value_and_feasibility(kind: str, g: list[float]) -> None:
    t = torch.tensor(g, dtype=D)
    c = fold.fold_ineq(t, kind)
    assert c.ndim == 0
    assert float(c) == pytest.approx(explicit(g, kind), rel=1e-12, abs=1e-14)
    feasible = all(v <= 0 for v in g)
    assert (float(c) <= 0) == feasible
    if kind != "max":
        assert float(c) >= 0
        assert (float(c) == 0) == feasible


@pytest.mark.parametrize("kind", fold.EQ_KINDS)
@given(h=vectors)
def test_eq_value(kind: str, h: list[float]) -> None:
    c = float(fold.fold_eq(torch.tensor(h, dtype=D), kind))
    a = [abs(v) for v in h]
    want = {"l2": math.sqrt(sum(v * v for v in a)), "l1": sum(a), "linf": max(a),
            "sumsq": sum(v * v for v in a)}[kind]
    assert c == pytest.approx(want, rel=1e-12, abs=1e-14)
    assert (c == 0) == all(v == 0 for v in h)


def test_tolerance_meaning() -> None:
    """c <= tol bounds each g_i by tol for l2/l1/linf/max, but only by sqrt(tol) for sumsq."""
    g = torch.tensor([1e-3, -1.0], dtype=D)
    tol = 1e-6
    assert float(fold.fold_ineq(g, "sumsq")) <= tol
    for kind in ("l2", "l1", "linf", "max"):
        assert float(fold.fold_ineq(g, kind)) > tol


def test_stack_list_and_dict_shapes() -> None:
    a = torch.tensor([[-1.0, 2.0]], dtype=D)
    b = torch.tensor([3.0], dtype=D)
    for g in ([a, b], {"a": a, "b": b}):
        assert float(fold.fold_ineq(g, "l1")) == 5.0
        assert float(fold.fold_ineq(g, "l2")) == pytest.approx(math.sqrt(13.0))


@pytest.mark.parametrize("kind", fold.INEQ_KINDS)
def test_box_matches_stacked(kind: str) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(4, 5, generator=gen, dtype=D) * 1.6 - 0.3
    got = fold.box(x, 0.0, 1.0, kind)
    want = fold.fold_ineq([0.0 - x, x - 1.0], kind)
    torch.testing.assert_close(got, want)
    lo = torch.full((5,), 0.1, dtype=D)
    torch.testing.assert_close(fold.box(x, lo, None, kind), fold.fold_ineq(lo - x, kind))


def test_box_inside_is_zero_and_max_negative() -> None:
    x = torch.tensor([0.2, 0.5, 0.9], dtype=D)
    for kind in ("l2", "l1", "linf", "sumsq"):
        assert float(fold.box(x, 0.0, 1.0, kind)) == 0.0
    assert float(fold.box(x, 0.0, 1.0, "max")) == pytest.approx(-0.1)


@pytest.mark.parametrize("kind", fold.INEQ_KINDS)
def test_ineq_gradcheck_away_from_kinks(kind: str) -> None:
    # Entries away from 0 and distinct, so every kind is differentiable there.
    g = torch.tensor([0.7, -0.4, 1.3, -2.0, 0.25], dtype=D, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: fold.fold_ineq(v, kind), (g,))


@pytest.mark.parametrize("kind", fold.EQ_KINDS)
def test_eq_gradcheck_away_from_kinks(kind: str) -> None:
    h = torch.tensor([0.7, -0.4, 1.3, -2.0, 0.25], dtype=D, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: fold.fold_eq(v, kind), (h,))


def test_box_gradcheck() -> None:
    x = torch.tensor([-0.3, 0.4, 1.2, 0.9, 1.5], dtype=D, requires_grad=True)
    for kind in ("l2", "l1", "sumsq"):
        assert torch.autograd.gradcheck(lambda v, k=kind: fold.box(v, 0.0, 1.0, k), (x,))


def test_gradient_at_feasible_points_is_zero_and_finite() -> None:
    """At a feasible point the positive-part kinds return the (valid) zero subgradient, not NaN."""
    g = torch.tensor([-1.0, 0.0, -0.5], dtype=D, requires_grad=True)
    for kind in ("l2", "l1", "linf", "sumsq"):
        (grad,) = torch.autograd.grad(fold.fold_ineq(g, kind), g)
        assert torch.isfinite(grad).all()
        assert float(grad.abs().max()) == 0.0


def test_l2_gradient_is_unit_on_violated_set() -> None:
    """The l2 fold's gradient has norm 1 at any infeasible point (a sharp, exact fold)."""
    g = torch.tensor([1e-9, -1.0, 2e-9], dtype=D, requires_grad=True)
    (grad,) = torch.autograd.grad(fold.fold_ineq(g, "l2"), g)
    assert float(grad.norm()) == pytest.approx(1.0)
    (grad,) = torch.autograd.grad(fold.fold_ineq(g, "sumsq"), g)
    assert float(grad.norm()) < 1e-8


def test_float32_and_dtype_follow() -> None:
    g = torch.tensor([0.5, -1.0], dtype=torch.float32)
    for kind in fold.INEQ_KINDS:
        assert fold.fold_ineq(g, kind).dtype == torch.float32


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="unknown inequality"):
        fold.fold_ineq(torch.zeros(2, dtype=D), "l3")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown equality"):
        fold.fold_eq(torch.zeros(2, dtype=D), "max")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no constraints"):
        fold.fold_ineq([])
    with pytest.raises(ValueError, match="zero entries"):
        fold.fold_ineq(torch.zeros(0, dtype=D))
    with pytest.raises(TypeError, match="floating-point"):
        fold.fold_ineq(torch.zeros(2, dtype=torch.long))
    with pytest.raises(TypeError, match="list or dict"):
        fold.fold_ineq(3.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one"):
        fold.box(torch.zeros(2, dtype=D), None, None)


def test_folded_box_solves_to_the_same_point() -> None:
    """Projection onto a box with 16 folded bounds matches clamping, feasible to tolerance."""
    gen = torch.Generator().manual_seed(1)
    z = torch.rand(8, generator=gen, dtype=D) * 2.0 - 0.5

    def fn(x: torch.Tensor):
        return ((x - z) ** 2).sum(), fold.box(x, 0.0, 1.0, "l2"), None

    res = ncvx.solve(fn, torch.full((8,), 0.5, dtype=D), print_level=0, maxit=300)
    x = res.x
    assert float(torch.clamp(-x, min=0).max()) <= 1e-6
    assert float(torch.clamp(x - 1, min=0).max()) <= 1e-6
    torch.testing.assert_close(x, z.clamp(0, 1), atol=1e-4, rtol=0)
