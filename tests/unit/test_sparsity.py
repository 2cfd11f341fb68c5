"""Column-compressed Jacobians (``ncvx.problem.sparsity``) and their use by the Evaluator."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ncvx.problem import evaluator as evaluator_module
from ncvx.problem.binding import DictBinding, ModuleBinding
from ncvx.problem.evaluator import COMPRESS_MIN_ROWS, Evaluator
from ncvx.problem.sparsity import colour_columns
from ncvx.problem.variables import VariableLayout

F64 = torch.float64


def _svm_like(m: int = 600, d: int = 7):
    """Soft-margin constraints: dense columns w, b and one slack column per row."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(m, d, generator=g, dtype=F64)
    y = torch.where(torch.rand(m, generator=g) < 0.5, -1.0, 1.0).to(F64)

    def fn(v):
        margin = 1 - v["zeta"] - y * (X @ v["w"] + v["b"])
        return 0.5 * (v["w"] ** 2).sum() + v["zeta"].sum(), [margin, -v["zeta"]], None

    shapes = {"w": [d], "b": [1], "zeta": [m]}
    return fn, shapes


def _evaluator(fn, shapes, jacobian: str = "auto") -> Evaluator:
    layout = VariableLayout.from_shapes(shapes)
    return Evaluator(
        fn,
        DictBinding(layout, lambda v: v),
        dtype=F64,
        device=torch.device("cpu"),
        jacobian=jacobian,
    )


def test_colouring_is_structurally_orthogonal_and_decompresses_exactly() -> None:
    fn, shapes = _svm_like()
    ev = _evaluator(fn, shapes, jacobian="batched")
    x = torch.randn(ev.n, dtype=F64, generator=torch.Generator().manual_seed(1))
    e = ev.evaluate(x, first=True)
    e.ensure_gradients()
    J = e.J_i[:600]  # the margin rows
    colouring = colour_columns(J, max_colours=100)
    assert colouring is not None and colouring.n_colours == 7 + 1 + 1  # w, b dense; slacks share
    colour = colouring.colour
    nz = J != 0
    for c in range(colouring.n_colours):
        rows_hit = nz[:, colour == c].sum(dim=1)
        assert int(rows_hit.max()) <= 1  # no row has two nonzeros of one colour
    JV = J @ colouring.seeds(F64).T
    assert torch.equal(colouring.dense(colouring.values(JV)), J)
    assert colour_columns(J, max_colours=5) is None  # needs 9


def test_evaluator_compresses_after_learning_the_pattern() -> None:
    fn, shapes = _svm_like()
    ev = _evaluator(fn, shapes)
    ref = _evaluator(fn, shapes, jacobian="batched")
    gen = torch.Generator().manual_seed(2)
    for k in range(3):
        x = torch.randn(ev.n, dtype=F64, generator=gen)
        e = ev.evaluate(x, first=k == 0)
        r = ref.evaluate(x, first=k == 0)
        e.ensure_gradients()
        r.ensure_gradients()
        torch.testing.assert_close(e.J_i, r.J_i, rtol=1e-14, atol=1e-14)
        torch.testing.assert_close(e.grad_f, r.grad_f, rtol=1e-14, atol=1e-14)
    assert ev.n_compressed == 2 * 2  # both constraint tensors, from the second point on
    assert ref.n_compressed == 0


def test_a_pattern_that_changes_is_caught_by_the_probe() -> None:
    """relu(x) has a diagonal Jacobian whose zeros move with x: a pattern learned at one point
    misses entries at the next; the probe notices, the dense Jacobian is used and the pattern
    grows to the union."""
    m = COMPRESS_MIN_ROWS

    def fn(v):
        x = v["x"]
        return x.sum(), torch.relu(x) - 0.5, None

    ev = _evaluator(fn, {"x": [m]})
    half = torch.arange(m) < m // 2
    points = [torch.where(half, 1.0, -1.0), torch.where(half, -1.0, 1.0), torch.ones(m)]
    for k, x in enumerate(points):
        e = ev.evaluate(x.to(F64), first=k == 0)
        e.ensure_gradients()
        torch.testing.assert_close(e.J_i, torch.diag((x > 0).to(F64)))
    # point 0 learned half the diagonal, point 1 went dense (mismatch) and learned the union,
    # point 2 was compressed with it
    assert ev.n_compressed == 1


def test_wide_dense_jacobians_are_not_compressed() -> None:
    """A dense Jacobian needs one colour per column: worth it only for tall ones (n < m/4)."""
    m, n = COMPRESS_MIN_ROWS, 200
    A = torch.randn(m, n, dtype=F64, generator=torch.Generator().manual_seed(4))
    ev = _evaluator(lambda v: ((v["x"] ** 2).sum(), torch.tanh(A @ v["x"]), None), {"x": [n]})
    for k in range(2):
        e = ev.evaluate(torch.full((n,), 0.1 * (k + 1), dtype=F64), first=k == 0)
        e.ensure_gradients()
    assert ev._colourings == {0: None} and ev.n_compressed == 0


def test_module_parameters_are_compressed_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """Per-row scale parameters (one column per row) and a shared bias (one dense column)."""
    monkeypatch.setattr(evaluator_module, "COMPRESS_MIN_ROWS", 64)

    class Rows(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.linspace(0.5, 1.5, 100, dtype=F64))
            self.bias = nn.Parameter(torch.zeros(1, dtype=F64))

    net = Rows()
    data = torch.linspace(-1.0, 1.0, 100, dtype=F64)

    def fn(module):
        return (module.scale**2).sum(), module.scale * data**2 + module.bias - 1, None

    binding = ModuleBinding(net)
    ev = Evaluator(fn, binding, dtype=F64, device=torch.device("cpu"))
    x0 = torch.cat([p.detach().reshape(-1) for p in net.parameters()])
    for k in range(2):
        e = ev.evaluate(x0 + 0.1 * k, first=k == 0)
        e.ensure_gradients()
    expected = torch.cat([torch.diag(data**2), torch.ones(100, 1, dtype=F64)], dim=1)
    torch.testing.assert_close(e.J_i, expected)
    assert ev.n_compressed == 1


def test_float32_jacobians_are_compressed_and_match() -> None:
    """The probe's tolerance follows the dtype: float32 rounding is not a missed entry."""
    fn, shapes = _svm_like()

    def fn32(v):
        f, (margin, nonneg), _ = fn({k: t.double() for k, t in v.items()})
        return f.float(), [margin.float(), nonneg.float()], None

    layout = VariableLayout.from_shapes(shapes)
    evs = [
        Evaluator(
            fn32,
            DictBinding(layout, lambda v: v),
            dtype=torch.float32,
            device=torch.device("cpu"),
            jacobian=mode,
        )
        for mode in ("auto", "batched")
    ]
    gen = torch.Generator().manual_seed(6)
    for k in range(3):
        x = torch.randn(evs[0].n, generator=gen)
        a, b = (ev.evaluate(x, first=k == 0) for ev in evs)
        a.ensure_gradients()
        b.ensure_gradients()
        torch.testing.assert_close(a.J_i, b.J_i, rtol=1e-6, atol=1e-6)
    assert evs[0].n_compressed == 4


def test_a_backward_that_leaves_autograd_is_caught_by_the_reverse_check() -> None:
    """A custom Function whose backward leaves autograd has a double backward that silently
    drops its term (the probe, computed the same way, agrees with it); the ordinary reverse
    pass does not, and the dense Jacobian is used."""

    class Cube(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x**3

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return (grad * 3 * x**2).detach()  # not differentiable in grad

    m = COMPRESS_MIN_ROWS

    def fn(v):
        x = v["x"]
        return x.sum(), Cube.apply(x) + x - 1, None

    ev = _evaluator(fn, {"x": [m]})
    x = torch.linspace(0.5, 1.5, m, dtype=F64)
    ev.evaluate(x, first=True)
    # the diagonal pattern, as a batched first pass would have learned it (this function's
    # Jacobian takes the one-row-at-a-time path, which learns nothing)
    ev._colourings[0] = colour_columns(torch.eye(m, dtype=F64), max_colours=8)
    e = ev.evaluate(x + 0.1)
    e.ensure_gradients()
    torch.testing.assert_close(e.J_i, torch.diag(3 * (x + 0.1) ** 2 + 1))
    assert ev.n_compressed == 0 and ev._pattern_misses == {0: 0}


def test_large_jacobians_reuse_buffers_only_when_nothing_refers_to_them(monkeypatch) -> None:
    """Pooled zero matrices: a live evaluation's Jacobian is never overwritten; a dropped
    one's buffer is reused (and zeroed first)."""
    monkeypatch.setattr(evaluator_module, "POOL_MIN_ENTRIES", 1000)
    fn, shapes = _svm_like()
    ev = _evaluator(fn, shapes)
    g = torch.Generator().manual_seed(2)
    points = [torch.randn(ev.n, dtype=F64, generator=g) for _ in range(6)]
    reference = _evaluator(fn, shapes, jacobian="batched")
    kept = []
    for k, x in enumerate(points):
        e = ev.evaluate(x, first=k == 0)
        e.ensure_gradients()
        if k % 2 == 0:
            kept.append((x, e))  # alive: its buffer must stay as it is
        # a dropped evaluation's buffer goes back to the pool
    assert ev.n_compressed >= 4  # the compressed path wrote into pooled buffers
    storages = {e.J_i.untyped_storage().data_ptr() for _, e in kept}
    assert len(storages) == len(kept)  # live Jacobians never share a buffer
    for x, e in kept:
        r = reference.evaluate(x, first=not reference.m_i)
        r.ensure_gradients()
        torch.testing.assert_close(e.J_i, r.J_i, rtol=0, atol=0)
    assert 0 < len(ev._pool) <= evaluator_module._POOL_SIZE
    e = ev.evaluate(points[1])
    e.ensure_gradients()
    ptr = e.J_i.untyped_storage().data_ptr()
    del e
    e = ev.evaluate(points[3])
    e.ensure_gradients()
    assert e.J_i.untyped_storage().data_ptr() == ptr  # the dropped buffer, reused
    r = reference.evaluate(points[3])
    r.ensure_gradients()
    torch.testing.assert_close(e.J_i, r.J_i, rtol=0, atol=0)  # zeroed before it was refilled


def test_sparse_C_from_the_patterns_equals_to_sparse() -> None:
    """``Evaluation.sparse_C`` built from the compressed blocks' patterns (equalities first in
    ``C``) is exactly ``C.to_sparse()``: same indices, same values."""
    g = torch.Generator().manual_seed(3)
    m, d = 600, 5
    X = torch.randn(m, d, generator=g, dtype=F64)

    def fn(v):
        margin = 1 - v["zeta"] - X @ v["w"] - v["b"]
        equal = v["zeta"] ** 2 - 0.5 * v["w"].sum() + torch.where(v["zeta"] > 0, 1.0, 0.0)
        return (v["w"] ** 2).sum(), [margin, -v["zeta"]], [equal]

    shapes = {"w": [d], "b": [1], "zeta": [m]}
    ev = _evaluator(fn, shapes)
    x = torch.randn(ev.n, dtype=F64, generator=g)
    x[d + 1 : d + 11] = 0.0  # a few slacks at 0: some pattern entries are zero here
    for k in range(3):
        e = ev.evaluate(x + 0.1 * k, first=k == 0)
        e.ensure_gradients()
        expected = e.C.to_sparse().coalesce()
        got = e.sparse_C()
        if k == 2:  # the slacks at 0 hid entries at the first point: learnt again at the second
            assert e._pattern is not None
        assert torch.equal(got.indices(), expected.indices())
        assert torch.equal(got.values(), expected.values())
        assert got.shape == expected.shape == (3 * m, ev.n)
    assert ev.n_compressed >= 3
