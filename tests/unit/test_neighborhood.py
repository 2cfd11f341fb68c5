"""Unit tests of ``ncvx.neighborhood.NeighborhoodCache`` (intended GRANSO semantics)."""

from __future__ import annotations

from unittest import mock

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from ncvx.neighborhood import NeighborhoodCache

F64 = torch.float64


def _grads(tag: float, m: int = 2, n: int = 3) -> torch.Tensor:
    """A ``(1 + m, n)`` gradient set whose entries all equal ``tag`` (identifies the sample)."""
    return torch.full((1 + m, n), float(tag), dtype=F64)


def _tags(samples: torch.Tensor) -> list[float]:
    return [float(s[0, 0]) for s in samples]


def test_sizes_grow_to_capacity_for_close_points():
    cache = NeighborhoodCache(capacity=5, radius=1e-4)
    base = torch.tensor([1.0, -2.0, 0.5], dtype=F64)
    g = torch.Generator().manual_seed(0)
    sizes = []
    for k in range(8):
        # all 8 points lie within 7e-6 of each other (each within 3.5e-6 of base)
        step = torch.randn(3, generator=g, dtype=F64)
        x = base + 3.4e-6 * step / step.norm()
        cache.push(x, _grads(k))
        sizes.append(cache.neighbours(x).shape[0])
    assert sizes == [1, 2, 3, 4, 5, 5, 5, 5]
    assert len(cache) == 5


def test_ring_overwrite_keeps_newest_most_recent_first():
    cache = NeighborhoodCache(capacity=5, radius=1.0)
    x = torch.zeros(3, dtype=F64)
    for k in range(8):
        cache.push(x + 1e-3 * k, _grads(k))
    samples = cache.neighbours(x + 7e-3)
    assert samples.shape == (5, 3, 3)
    assert _tags(samples) == [7.0, 6.0, 5.0, 4.0, 3.0]


def test_far_points_excluded():
    cache = NeighborhoodCache(capacity=10, radius=1e-4)
    x = torch.tensor([0.0, 0.0, 0.0], dtype=F64)
    cache.push(x + torch.tensor([1e-3, 0, 0], dtype=F64), _grads(0))  # far
    cache.push(x + torch.tensor([0, 5e-5, 0], dtype=F64), _grads(1))  # near
    cache.push(x + torch.tensor([0, 0, 2e-4], dtype=F64), _grads(2))  # far
    cache.push(x + torch.tensor([0, 7e-5, 7e-5], dtype=F64), _grads(3))  # 9.9e-5: near
    cache.push(x, _grads(4))  # the current point
    assert _tags(cache.neighbours(x)) == [4.0, 3.0, 1.0]


def test_radius_is_a_true_euclidean_distance_not_a_bound():
    """A sample is re-admitted once the iterates come back near it (no stale upper bounds)."""
    cache = NeighborhoodCache(capacity=10, radius=0.5)
    a = torch.zeros(2, dtype=F64)
    b = torch.tensor([3.0, 4.0], dtype=F64)
    cache.push(a, _grads(0))
    cache.push(b, _grads(1))
    assert _tags(cache.neighbours(b)) == [1.0]
    cache.push(a + 0.1, _grads(2))
    assert _tags(cache.neighbours(a + 0.1)) == [2.0, 0.0]


def test_current_point_always_included():
    cache = NeighborhoodCache(capacity=4, radius=0.0)
    for k in range(3):
        x = torch.full((2,), float(k), dtype=F64)
        cache.push(x, _grads(k))
        assert _tags(cache.neighbours(x)) == [float(k)]
    # even a query away from every sample returns the most recent one
    assert _tags(cache.neighbours(torch.full((2,), 100.0, dtype=F64))) == [2.0]


@given(
    capacity=st.integers(1, 6),
    radius=st.floats(0.0, 2.0),
    points=st.lists(st.lists(st.floats(-2, 2), min_size=2, max_size=2), min_size=1, max_size=12),
)
def test_neighbours_match_brute_force(capacity, radius, points):
    cache = NeighborhoodCache(capacity, radius)
    xs = [torch.tensor(p, dtype=F64) for p in points]
    for k, x in enumerate(xs):
        cache.push(x, _grads(k, m=0, n=2))
        kept = list(range(max(0, k + 1 - capacity), k + 1))[::-1]  # newest first
        near = [float(j) for j in kept if float((xs[j] - x).norm()) <= radius]
        assert _tags(cache.neighbours(x)) == (near or [float(k)])
        assert len(cache) == min(k + 1, capacity)


def test_empty_cache_raises_and_clear_empties():
    cache = NeighborhoodCache(3, 1.0)
    with pytest.raises(RuntimeError):
        cache.neighbours(torch.zeros(2, dtype=F64))
    cache.push(torch.zeros(2, dtype=F64), _grads(0, n=2))
    cache.clear()
    assert len(cache) == 0
    with pytest.raises(RuntimeError):
        cache.neighbours(torch.zeros(2, dtype=F64))
    cache.push(torch.ones(2, dtype=F64), _grads(5, n=2))
    assert _tags(cache.neighbours(torch.ones(2, dtype=F64))) == [5.0]


def test_stored_values_are_copies():
    cache = NeighborhoodCache(2, 1.0)
    x = torch.zeros(2, dtype=F64)
    G = _grads(1, n=2)
    cache.push(x, G)
    x.add_(100.0)
    G.fill_(-1.0)
    assert _tags(cache.neighbours(torch.zeros(2, dtype=F64))) == [1.0]


def test_capacity_at_least_one():
    cache = NeighborhoodCache(0, 1.0)
    cache.push(torch.zeros(1, dtype=F64), _grads(3, n=1))
    cache.push(torch.zeros(1, dtype=F64), _grads(4, n=1))
    assert _tags(cache.neighbours(torch.zeros(1, dtype=F64))) == [4.0]


def test_memory_budget_caps_the_capacity():
    n, m = 50, 2
    per_sample = (n + (1 + m) * n) * 8  # x and its gradient set, float64
    cache = NeighborhoodCache(100, 1e9, max_bytes=3 * per_sample + 7)
    for k in range(5):
        cache.push(torch.zeros(n, dtype=F64), torch.full((1 + m, n), float(k), dtype=F64))
    assert cache.capacity == 3
    assert _tags(cache.neighbours(torch.zeros(n, dtype=F64))) == [4.0, 3.0, 2.0]
    tiny = NeighborhoodCache(100, 1e9, max_bytes=1)  # below one sample: one is still kept
    tiny.push(torch.zeros(n, dtype=F64), torch.zeros(1 + m, n, dtype=F64))
    assert tiny.capacity == 1


def test_pushing_row_blocks_equals_pushing_their_concatenation():
    g = torch.Generator().manual_seed(3)
    whole, parts = NeighborhoodCache(3, 10.0), NeighborhoodCache(3, 10.0)
    for k in range(5):
        x = 0.1 * k * torch.ones(4, dtype=F64)
        blocks = [torch.randn(r, 4, generator=g, dtype=F64) for r in (1, 3, 2)]
        whole.push(x, torch.cat(blocks))
        parts.push(x, blocks)
    torch.testing.assert_close(
        parts.neighbours(torch.zeros(4, dtype=F64)),
        whole.neighbours(torch.zeros(4, dtype=F64)),
        rtol=0,
        atol=0,
    )
    with pytest.raises(ValueError, match="rows"):
        parts.push(torch.zeros(4, dtype=F64), [torch.zeros(2, 4, dtype=F64)])


def _brute_force_slots(points: list[torch.Tensor], x: torch.Tensor, radius: float) -> list[int]:
    """Indices (into ``points``, newest first) of the stored points within ``radius`` of ``x``."""
    near = [k for k in range(len(points) - 1, -1, -1) if float((points[k] - x).norm()) <= radius]
    return near or [len(points) - 1]


@given(
    seed=st.integers(0, 10_000),
    capacity=st.integers(1, 7),
    radius=st.floats(0.01, 2.0),
)
def test_pruned_distances_find_exactly_the_near_samples(seed, capacity, radius):
    """The triangle-inequality bounds skip only samples that are truly far: the near set is the
    brute-force one along a walk of small and large steps, revisits and ring overwrites."""
    with mock.patch("ncvx.neighborhood._SMALL", -1):  # bounds at every size
        _walk_and_check(seed, capacity, radius)


def _walk_and_check(seed: int, capacity: int, radius: float) -> None:
    g = torch.Generator().manual_seed(seed)
    cache = NeighborhoodCache(capacity=capacity, radius=radius)
    points: list[torch.Tensor] = []
    x = torch.zeros(4, dtype=F64)
    for k in range(25):
        scale = [1e-3, 0.05, 0.5, 3.0][int(torch.randint(4, (1,), generator=g))]
        x = x + scale * torch.randn(4, generator=g, dtype=F64)
        if k % 9 == 8 and points:  # come back next to an old iterate
            x = points[0] + 1e-3
        points.append(x)
        cache.push(x, _grads(k))
        kept = points[-capacity:]
        expected = [len(points) - len(kept) + i for i in _brute_force_slots(kept, x, radius)]
        assert _tags(cache.neighbours(x)) == [float(i) for i in expected]
        query = x + 0.3 * radius * torch.randn(4, generator=g, dtype=F64)  # off the iterates
        expected = [len(points) - len(kept) + i for i in _brute_force_slots(kept, query, radius)]
        assert _tags(cache.neighbours(query)) == [float(i) for i in expected]


def test_sample_set_answers_without_gathering():
    """Inner products and row norms of the near samples, computed on the buffer, equal those
    of the gathered samples, also with a mask of free variables."""
    g = torch.Generator().manual_seed(3)
    cache = NeighborhoodCache(capacity=6, radius=1.0)
    x = torch.zeros(5, dtype=F64)  # (small: every distance computed)
    for k in range(9):
        x = x + (0.05 if k % 3 else 4.0) * torch.randn(5, generator=g, dtype=F64)
        cache.push(x, torch.randn(3, 5, generator=g, dtype=F64))
    v = torch.randn(5, generator=g, dtype=F64)
    free = torch.tensor([True, False, True, True, False])
    for mask in (None, free):
        lazy = cache.near(x, free=mask)
        inner, norms = lazy.inner(v), lazy.row_norms()
        assert lazy._gathered is None  # nothing was copied out
        full = lazy.gather()
        assert full.shape[0] == len(lazy) > 1
        torch.testing.assert_close(inner, full @ v, rtol=1e-14, atol=1e-14)
        exact_norms = torch.linalg.vector_norm(full, dim=2)
        assert bool((norms >= exact_norms * (1 - 1e-14)).all())  # an upper bound when masked
        if mask is None:
            torch.testing.assert_close(norms, exact_norms, rtol=1e-14, atol=0)
        else:
            assert bool((full[:, :, ~mask] == 0).all())


@given(
    seed=st.integers(0, 10_000),
    capacity=st.integers(1, 6),
    pushes=st.integers(1, 12),
    blocks=st.booleans(),
    masked=st.booleans(),
)
def test_shared_rows_are_those_equal_in_every_stored_sample(seed, capacity, pushes, blocks, masked):
    """Rows 0 and 3 change at every push, row 2 once (at push 4), rows 1 and 4 never (a linear
    constraint): the rows found shared are equal in every stored sample (those that never
    changed always are), whenever they are asked for, and the inner products and the split
    samples read through them equal the gathered samples'."""
    g = torch.Generator().manual_seed(seed)
    cache = NeighborhoodCache(capacity=capacity, radius=10.0)
    constant = torch.randn(2, 4, generator=g, dtype=F64)
    once = torch.randn(2, 4, generator=g, dtype=F64)
    free = torch.tensor([True, False, True, True]) if masked else None
    x = torch.zeros(4, dtype=F64)
    for k in range(pushes):
        x = x + 0.01 * torch.randn(4, generator=g, dtype=F64)
        grads = torch.randn(5, 4, generator=g, dtype=F64)
        grads[1], grads[4] = constant
        grads[2] = once[0] if k < 4 else once[1]
        cache.push(x, [grads[:2], grads[2:]] if blocks else grads)
        if k % 3 == seed % 3 or k == pushes - 1:  # asked for at irregular times
            samples = cache.near(x, free=free)
            full = samples.gather()
            equal = (full == full[:1]).all(dim=2).all(dim=0)
            shared = cache._shared_rows()
            assert not bool((shared & ~equal).any())  # never a row that differs
            assert bool(shared[1]) and bool(shared[4])
            assert not bool(shared[0]) or len(cache) == 1
            if k < 4:  # row 2 has not changed yet
                assert bool(shared[2])
            v = torch.randn(4, generator=g, dtype=F64)
            fresh = cache.near(x, free=free)
            torch.testing.assert_close(fresh.inner(v), full @ v, rtol=1e-14, atol=1e-14)
            newest, varying, rows = cache.near(x, free=free).split()
            torch.testing.assert_close(newest, full[0], rtol=0, atol=0)
            torch.testing.assert_close(rows, full[:, varying], rtol=0, atol=0)


def test_reduced_columns_read_through_shared_rows_are_unchanged():
    """The termination QP's columns from the split samples equal those from the gathered
    samples (where every row is compared), for a problem with linear and nonlinear rows."""
    from ncvx.neighborhood import SampleSet
    from ncvx.penalty import PenaltyPoint
    from ncvx.problem.evaluator import Evaluation
    from ncvx.stationarity import _reduced_columns

    g = torch.Generator().manual_seed(5)
    cache = NeighborhoodCache(capacity=5, radius=10.0)
    linear = torch.randn(3, 6, generator=g, dtype=F64)
    x = torch.zeros(6, dtype=F64)
    for _ in range(7):
        x = x + 0.01 * torch.randn(6, generator=g, dtype=F64)
        grads = torch.randn(6, 6, generator=g, dtype=F64)  # [f; 3 inequalities; 2 equalities]
        grads[[1, 3, 5]] = linear
        cache.push(x, grads)
    ev = Evaluation(
        x=x,
        f=torch.tensor(1.5, dtype=F64),
        ci=torch.tensor([0.2, -0.1, 0.0], dtype=F64),
        ce=torch.tensor([0.01, -0.02], dtype=F64),
    )
    point = PenaltyPoint.create(ev, 0.5, 1e-6, 1e-6)
    lazy = cache.near(x)
    via_split = _reduced_columns(point, lazy)
    plain = _reduced_columns(point, SampleSet.of(lazy.gather()))
    assert via_split.Gt.shape[0] == plain.Gt.shape[0] == 5 * 3 + 3  # 3 linear rows merged
    torch.testing.assert_close(via_split.Gt, plain.Gt, rtol=0, atol=0)
    for name in ("b", "lb", "ub", "is_f", "screenable"):
        assert (getattr(via_split, name) == getattr(plain, name)).all(), name


@pytest.mark.cuda
def test_pruned_neighbours_and_lazy_samples_on_cuda():
    """The same near sets, inner products and row norms on a CUDA device as on the CPU."""
    cuda = torch.device("cuda")
    g = torch.Generator().manual_seed(11)
    caches = {
        dev: NeighborhoodCache(capacity=40, radius=0.3) for dev in ("cpu", "cuda")
    }
    x = torch.zeros(2000, dtype=F64)  # 40 x 2000 entries: above the exact-distance size
    for k in range(60):
        x = x + (0.01 if k % 4 else 2.0) * torch.randn(2000, generator=g, dtype=F64) / 45
        grads = torch.randn(3, 2000, generator=g, dtype=F64)
        caches["cpu"].push(x, grads)
        caches["cuda"].push(x.to(cuda), grads.to(cuda))
        v = torch.randn(2000, generator=g, dtype=F64)
        near_cpu, near_gpu = caches["cpu"].near(x), caches["cuda"].near(x.to(cuda))
        assert near_gpu.slots.tolist() == near_cpu.slots.tolist()
        torch.testing.assert_close(near_gpu.inner(v.to(cuda)).cpu(), near_cpu.inner(v))
        torch.testing.assert_close(near_gpu.row_norms().cpu(), near_cpu.row_norms())
