"""Unit tests of ``ncvx.problem.evaluator`` and ``ncvx.problem.binding``."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from ncvx.errors import ProblemError
from ncvx.problem.binding import DictBinding, ModuleBinding
from ncvx.problem.evaluator import Evaluator, flatten_constraints
from ncvx.problem.variables import VariableLayout

F64 = torch.float64
CPU = torch.device("cpu")

shapes = st.lists(st.integers(1, 3), min_size=1, max_size=3).map(tuple)
var_specs = st.lists(shapes, min_size=1, max_size=4).map(
    lambda ss: {f"v{i}": s for i, s in enumerate(ss)}
)
con_specs = st.lists(st.lists(st.integers(1, 3), min_size=0, max_size=3).map(tuple), max_size=3)


class RandomSmooth:
    """A random smooth ``x -> (f, [ci tensors], [ce tensors])`` on named variables."""

    def __init__(self, layout: VariableLayout, ci_shapes, ce_shapes, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        n = layout.n
        self.layout = layout

        def mats(shapes_):
            out = []
            for s in shapes_:
                m = math.prod(s)
                out.append(
                    (
                        s,
                        torch.randn(m, n, generator=g, dtype=F64),
                        torch.randn(m, n, generator=g, dtype=F64),
                        torch.randn(m, generator=g, dtype=F64),
                    )
                )
            return out

        self.wf = torch.randn(3, n, generator=g, dtype=F64)
        self.ci = mats(ci_shapes)
        self.ce = mats(ce_shapes)

    def flat(self, d) -> torch.Tensor:
        return torch.cat([d[k].reshape(-1) for k in self.layout.names])

    @staticmethod
    def _con(x, s, A, B, b):
        return (torch.sin(A @ x) * (B @ x) + torch.tanh(A @ x + b) + b * x.sum() ** 2).reshape(s)

    def on_flat(self, x: torch.Tensor):
        f = torch.log1p((self.wf @ x) ** 2).sum() + torch.cos(x).sum() * (x**3).sum()
        ci = [self._con(x, *c) for c in self.ci]
        ce = [self._con(x, *c) for c in self.ce]
        return f, ci, ce

    def __call__(self, d):
        f, ci, ce = self.on_flat(self.flat(d))
        return f, {f"c{i}": t for i, t in enumerate(ci)}, ce

    def stacked(self, x: torch.Tensor) -> torch.Tensor:
        f, ci, ce = self.on_flat(x)
        return torch.cat([f.reshape(1), *(t.reshape(-1) for t in ci), *(t.reshape(-1) for t in ce)])


def _dict_evaluator(fn, layout, **kw) -> Evaluator:
    return Evaluator(fn, DictBinding(layout, lambda d: d), dtype=F64, device=CPU, **kw)


def _jac(ev):
    ev.ensure_gradients()
    return torch.cat([ev.grad_f[None], ev.J_i, ev.J_e])


@given(
    spec=var_specs,
    ci_shapes=con_specs,
    ce_shapes=con_specs,
    seed=st.integers(0, 10_000),
)
def test_batched_jacobian_matches_autograd_functional(spec, ci_shapes, ce_shapes, seed):
    layout = VariableLayout.from_shapes(spec)
    fn = RandomSmooth(layout, ci_shapes, ce_shapes, seed)
    x = torch.randn(layout.n, generator=torch.Generator().manual_seed(seed + 1), dtype=F64)
    ref = torch.autograd.functional.jacobian(fn.stacked, x)

    evaluator = _dict_evaluator(fn, layout, jacobian="batched")
    ev = evaluator.evaluate(x, first=True)
    assert evaluator.m_i == sum(math.prod(s) for s in ci_shapes)
    assert evaluator.m_e == sum(math.prod(s) for s in ce_shapes)
    vals = fn.stacked(x)
    torch.testing.assert_close(torch.cat([ev.f[None], ev.ci, ev.ce]), vals)
    J = _jac(ev)
    assert ev.grad_f.shape == (layout.n,)
    assert ev.J_i.shape == (evaluator.m_i, layout.n)
    assert ev.J_e.shape == (evaluator.m_e, layout.n)
    torch.testing.assert_close(J, ref, rtol=1e-10, atol=1e-12)


def test_batched_jacobian_matches_per_row_loop(tol):
    layout = VariableLayout.from_shapes({"A": [2, 3], "b": [4], "c": [1]})
    fn = RandomSmooth(layout, [(2, 2), (3,)], [(1, 2)], seed=7)
    x = torch.randn(layout.n, generator=torch.Generator().manual_seed(3), dtype=F64)
    rows = []
    for r in range(fn.stacked(x).numel()):
        xr = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(fn.stacked(xr)[r], [xr])
        rows.append(g)
    ref = torch.stack(rows)
    J = _jac(_dict_evaluator(fn, layout, jacobian="batched").evaluate(x, first=True))
    torch.testing.assert_close(J, ref, rtol=tol.rtol, atol=tol.atol)


@pytest.mark.parametrize("chunk", [None, 1, 2, 7])
@pytest.mark.parametrize("mode", ["batched", "loop", "auto"])
def test_loop_batched_and_chunking_agree(mode, chunk, tol):
    layout = VariableLayout.from_shapes({"A": [3, 2], "b": [5]})
    fn = RandomSmooth(layout, [(3, 3), (2,)], [(2, 2), (1,)], seed=11)
    x = torch.randn(layout.n, generator=torch.Generator().manual_seed(5), dtype=F64)
    ref = torch.autograd.functional.jacobian(fn.stacked, x)
    evaluator = _dict_evaluator(fn, layout, jacobian=mode, chunk_size=chunk)
    J = _jac(evaluator.evaluate(x, first=True))
    torch.testing.assert_close(J, ref, rtol=tol.rtol, atol=tol.atol)
    assert evaluator.jacobian == mode  # no silent fallback on a batchable function


def test_unused_variables_get_zero_rows():
    layout = VariableLayout.from_shapes({"a": [2], "b": [3], "unused": [2, 2]})

    def fn(d):
        f = (d["a"] ** 2).sum()  # f ignores b
        ci = torch.stack([d["b"].sum(), d["b"][0] * d["b"][1]])  # ci ignores a
        ce = d["a"][0] - 1.0  # scalar constraint; ignores b
        return f, ci, ce

    x = torch.arange(1.0, layout.n + 1, dtype=F64)
    for mode in ("batched", "loop"):
        ev = _dict_evaluator(fn, layout, jacobian=mode).evaluate(x, first=True)
        ev.ensure_gradients()
        assert ev.grad_f.tolist() == [2.0, 4.0] + [0.0] * 7
        assert ev.J_i.tolist() == [
            [0, 0, 1, 1, 1, 0, 0, 0, 0],
            [0, 0, 4, 3, 0, 0, 0, 0, 0],
        ]
        assert ev.J_e.tolist() == [[1, 0, 0, 0, 0, 0, 0, 0, 0]]


def test_constant_objective_gets_zero_gradient():
    layout = VariableLayout.from_shapes({"x": [3]})

    def fn(d):
        return torch.tensor(2.0, dtype=F64), [d["x"].sum()], None

    ev = _dict_evaluator(fn, layout).evaluate(torch.ones(3, dtype=F64), first=True)
    ev.ensure_gradients()
    assert ev.grad_f.tolist() == [0.0, 0.0, 0.0]
    assert ev.J_i.tolist() == [[1.0, 1.0, 1.0]]
    assert ev.J_e.shape == (0, 3)


class _CountingSquare(torch.autograd.Function):
    backward_calls = 0

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        _CountingSquare.backward_calls += 1
        return 2 * x * g


@pytest.mark.parametrize("mode", ["batched", "loop"])
def test_values_first_no_backward_until_ensure_gradients(mode):
    _CountingSquare.backward_calls = 0
    layout = VariableLayout.from_shapes({"x": [3]})

    def fn(d):
        sq = _CountingSquare.apply(d["x"])
        return sq.sum(), {"c": sq - 1.0}, [sq[0] - sq[1]]

    evaluator = _dict_evaluator(fn, layout, jacobian=mode)
    x = torch.tensor([1.0, 2.0, 3.0], dtype=F64)
    ev = evaluator.evaluate(x, first=True)
    ev2 = evaluator.evaluate(2 * x)
    assert _CountingSquare.backward_calls == 0
    assert evaluator.n_values == 2 and evaluator.n_gradients == 0
    assert not ev.has_gradients
    assert ev.ci.tolist() == [0.0, 3.0, 8.0] and float(ev.f) == 14.0
    ev.ensure_gradients()
    calls = _CountingSquare.backward_calls
    assert calls >= 1
    assert evaluator.n_gradients == 1
    assert ev.grad_f.tolist() == [2.0, 4.0, 6.0]
    assert ev.J_e.tolist() == [[2.0, -4.0, 0.0]]
    ev.ensure_gradients()  # idempotent: no second backward
    assert _CountingSquare.backward_calls == calls and evaluator.n_gradients == 1
    ev2.drop_graph()
    with pytest.raises(RuntimeError):
        ev2.ensure_gradients()
    assert evaluator.n_gradients == 1


class _Net(nn.Module):
    def __init__(self, unused: bool = False) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.lin = nn.Linear(3, 4).double()
        self.out = nn.Linear(4, 2).double()
        self.scale = nn.Parameter(torch.randn(2, 2, generator=g, dtype=F64))
        if unused:
            self.unused = nn.Parameter(torch.ones(3, dtype=F64))
        self.register_buffer("data", torch.randn(5, 3, generator=g, dtype=F64))

    def forward(self):
        return self.out(torch.tanh(self.lin(self.data)))  # (5, 2)


def _module_fn(net: _Net):
    y = net()
    f = (y**2).mean() + (net.scale**2).sum()
    ci = {"rows": (y @ net.scale).reshape(5, 2) - 0.5, "w": net.lin.weight.sum(1)}
    ce = [net.out.bias.sum() - 1.0]
    return f, ci, ce


def _functional_jacobian(net: _Net, x: torch.Tensor) -> torch.Tensor:
    """Reference: ``torch.func.functional_call`` + ``jacrev`` over ``parameters()`` order."""
    named = list(net.named_parameters())
    names = [k for k, _ in named]
    shapes = [p.shape for _, p in named]
    sizes = [p.numel() for _, p in named]

    def stacked(flat):
        params = dict(zip(names, (t.reshape(s) for t, s in zip(flat.split(sizes), shapes))))
        y = torch.func.functional_call(net, params, ())
        f = (y**2).mean() + (params["scale"] ** 2).sum()
        ci = torch.cat([((y @ params["scale"]) - 0.5).reshape(-1), params["lin.weight"].sum(1)])
        ce = params["out.bias"].sum().reshape(1) - 1.0
        return torch.cat([f.reshape(1), ci, ce])

    return torch.func.jacrev(stacked)(x)


def _perturbed_x(binding: ModuleBinding) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return binding.current_x() + 0.1 * torch.randn(binding.n, generator=g, dtype=F64)


@pytest.mark.parametrize("mode", ["batched", "loop", "auto"])
def test_module_binding_matches_functional_call_jacrev(mode, tol):
    net = _Net()
    binding = ModuleBinding(net)
    assert binding.n == sum(p.numel() for p in net.parameters())
    x = _perturbed_x(binding)
    evaluator = Evaluator(_module_fn, binding, dtype=F64, device=CPU, jacobian=mode)
    ev = evaluator.evaluate(x, first=True)
    assert torch.equal(binding.current_x(), x)  # parameters overwritten with x
    J = _jac(ev)
    torch.testing.assert_close(J, _functional_jacobian(_Net(), x), rtol=tol.rtol, atol=tol.atol)
    assert evaluator.jacobian == mode


def _unused_param_columns(net: _Net) -> slice:
    start = 0
    for name, p in net.named_parameters():
        if name == "unused":
            return slice(start, start + p.numel())
        start += p.numel()
    raise AssertionError("no unused parameter")


def test_module_binding_unused_parameter_gets_zero_columns_loop(tol):
    net = _Net(unused=True)
    binding = ModuleBinding(net)
    x = _perturbed_x(binding)
    evaluator = Evaluator(_module_fn, binding, dtype=F64, device=CPU, jacobian="loop")
    J = _jac(evaluator.evaluate(x, first=True))
    torch.testing.assert_close(
        J, _functional_jacobian(_Net(unused=True), x), rtol=tol.rtol, atol=tol.atol
    )
    assert torch.count_nonzero(J[:, _unused_param_columns(net)]) == 0


@pytest.mark.parametrize("mode", ["batched", "auto"])
def test_module_binding_unused_parameter_batched(mode, tol):
    net = _Net(unused=True)
    binding = ModuleBinding(net)
    x = _perturbed_x(binding)
    evaluator = Evaluator(_module_fn, binding, dtype=F64, device=CPU, jacobian=mode)
    J = _jac(evaluator.evaluate(x, first=True))
    torch.testing.assert_close(
        J, _functional_jacobian(_Net(unused=True), x), rtol=tol.rtol, atol=tol.atol
    )
    assert evaluator.jacobian == mode


def test_module_binding_restores_requires_grad_flags():
    net = _Net(unused=True)
    net.unused.requires_grad_(False)
    flags = [p.requires_grad for p in net.parameters()]
    binding = ModuleBinding(net)
    ev = Evaluator(_module_fn, binding, dtype=F64, device=CPU, jacobian="loop")
    ev.evaluate(binding.current_x(), first=True)
    assert all(p.requires_grad for p in net.parameters())
    binding.restore_flags()
    assert [p.requires_grad for p in net.parameters()] == flags


def test_module_binding_lazy_gradients_survive_a_later_evaluation(tol):
    """The module's parameters are overwritten in place by a later evaluation: the earlier one's
    gradients are then computed from a fresh evaluation at its own point."""
    net = _Net()
    binding = ModuleBinding(net)
    evaluator = Evaluator(_module_fn, binding, dtype=F64, device=CPU)
    x1 = binding.current_x()
    ev1 = evaluator.evaluate(x1, first=True)
    evaluator.evaluate(x1 + 0.5)
    J1 = _jac(ev1)
    torch.testing.assert_close(J1, _functional_jacobian(_Net(), x1), rtol=tol.rtol, atol=tol.atol)


def test_dict_binding_lazy_gradients_survive_a_later_evaluation(tol):
    layout = VariableLayout.from_shapes({"a": [2, 2], "b": [3]})
    fn = RandomSmooth(layout, [(2,)], [(3,)], seed=2)
    evaluator = _dict_evaluator(fn, layout)
    x1 = torch.randn(layout.n, generator=torch.Generator().manual_seed(9), dtype=F64)
    ev1 = evaluator.evaluate(x1, first=True)
    ev2 = evaluator.evaluate(x1 + 0.5)
    torch.testing.assert_close(
        _jac(ev1), torch.autograd.functional.jacobian(fn.stacked, x1), rtol=tol.rtol, atol=tol.atol
    )
    torch.testing.assert_close(
        _jac(ev2),
        torch.autograd.functional.jacobian(fn.stacked, x1 + 0.5),
        rtol=tol.rtol,
        atol=tol.atol,
    )


def _nonsmooth(x: torch.Tensor) -> torch.Tensor:
    """Nonsmooth, differentiable almost everywhere: maxima, absolute values, relu."""
    f = torch.maximum(x[0] + 2 * x[1], x[2] ** 2 - x[3]) + (x[0] - x[1]).abs()
    ci = torch.stack([torch.relu(x[1] * x[2] - 0.3), (x[:3] - x[1:]).abs().max()])
    ce = torch.stack([x.abs().sum() - 2.0, torch.minimum(x[0], x[3]) * x[2]])
    return torch.cat([f.reshape(1), ci, ce])


@given(seed=st.integers(0, 10_000))
def test_gradients_match_central_differences_at_generic_points(seed):
    layout = VariableLayout.from_shapes({"x": [4]})
    x = torch.randn(4, generator=torch.Generator().manual_seed(seed), dtype=F64)

    def fn(d):
        out = _nonsmooth(d["x"])
        return out[0], out[1:3], out[3:]

    ev = _dict_evaluator(fn, layout).evaluate(x, first=True)
    J = _jac(ev)
    h = 1e-6
    fd = torch.stack(
        [
            (_nonsmooth(x + h * e) - _nonsmooth(x - h * e)) / (2 * h)
            for e in torch.eye(4, dtype=F64)
        ],
        dim=1,
    )
    # Skip the rare sample lying within h of a kink (FD is meaningless there).
    kinked = ((fd - J).abs() > 1e-2).any(dim=1)
    assert int(kinked.sum()) <= 1
    torch.testing.assert_close(J[~kinked], fd[~kinked], rtol=1e-5, atol=1e-6)


def test_explicit_gradient_mode_transposes_columns():
    layout = VariableLayout.from_shapes({"x": [2]})

    def fn(d):
        x = d["x"]
        return (
            (x**2).sum(),
            (2 * x).reshape(2, 1),
            x.sum().reshape(1),
            torch.ones(2, 1, dtype=F64),
            torch.stack([x[0], x[1] ** 2]),
            torch.tensor([[1.0, 0.0], [0.0, 2 * float(x[1])]], dtype=F64),
        )

    evaluator = Evaluator(
        fn, DictBinding(layout, lambda d: d), dtype=F64, device=CPU, explicit_gradients=True
    )
    ev = evaluator.evaluate(torch.tensor([1.0, 3.0], dtype=F64), first=True)
    assert ev.has_gradients and evaluator.n_gradients == 1
    assert ev.grad_f.tolist() == [2.0, 6.0]
    assert ev.J_i.tolist() == [[1.0, 1.0]]
    assert ev.J_e.tolist() == [[1.0, 0.0], [0.0, 6.0]]


def test_float32_outputs_are_cast_to_solver_dtype():
    layout = VariableLayout.from_shapes({"x": [3]})

    def fn(d):
        x32 = d["x"].float()
        return (x32**2).sum(), [x32 - 1], None

    ev = _dict_evaluator(fn, layout).evaluate(torch.ones(3, dtype=F64), first=True)
    ev.ensure_gradients()
    for t in (ev.f, ev.ci, ev.grad_f, ev.J_i, ev.J_e):
        assert t.dtype == F64


@pytest.mark.parametrize(
    "out, match",
    [
        ((torch.ones(2, requires_grad=True), None, None), "scalar"),
        ((1.0, None, None), "torch.Tensor"),
        ((torch.ones((), requires_grad=True), None), "three items"),
        ((torch.ones((), requires_grad=True), [torch.ones(2)], None), "not connected"),
        ((torch.ones((), requires_grad=True), [3.0], None), "ci"),
    ],
)
def test_bad_outputs_rejected_at_x0(out, match):
    layout = VariableLayout.from_shapes({"x": [2]})
    evaluator = _dict_evaluator(lambda d: out, layout)
    with pytest.raises(ProblemError, match=match):
        evaluator.evaluate(torch.zeros(2, dtype=F64), first=True)


def test_changing_constraint_count_is_an_error():
    layout = VariableLayout.from_shapes({"x": [2]})
    k = {"m": 2}

    def fn(d):
        return d["x"].sum(), d["x"][: k["m"]], None

    evaluator = _dict_evaluator(fn, layout)
    evaluator.evaluate(torch.zeros(2, dtype=F64), first=True)
    k["m"] = 1
    with pytest.raises(ProblemError, match="changed"):
        evaluator.evaluate(torch.zeros(2, dtype=F64))


def test_flatten_constraints_orders_and_names():
    class Bag:
        pass

    bag = Bag()
    bag.z = torch.arange(4.0).reshape(2, 2)
    bag.a = torch.tensor(9.0)
    bag._private = torch.ones(1)
    tensors, names = flatten_constraints(bag, "ci")
    assert names == ["ci.z", "ci.a"]
    assert torch.cat(tensors).tolist() == [0.0, 1.0, 2.0, 3.0, 9.0]
    tensors, names = flatten_constraints({"b": torch.ones(1, 2), "a": None}, "ce")
    assert names == ["ce.b"] and tensors[0].shape == (2,)
    assert flatten_constraints(None, "ci") == ([], [])
    with pytest.raises(ProblemError):
        flatten_constraints(3.0, "ci")


@pytest.mark.cuda
@pytest.mark.parametrize("mode", ["batched", "loop"])
def test_cuda_jacobian_matches_cpu(mode, tol):
    layout = VariableLayout.from_shapes({"A": [3, 2], "b": [5]})
    fn = RandomSmooth(layout, [(3, 3), (2,)], [(2, 2)], seed=4)
    x = torch.randn(layout.n, generator=torch.Generator().manual_seed(8), dtype=F64)
    ref = _jac(_dict_evaluator(fn, layout, jacobian=mode).evaluate(x, first=True))

    def on_device(d):
        return fn({k: v.cpu() for k, v in d.items()})

    cuda = torch.device("cuda")
    evaluator = Evaluator(
        on_device, DictBinding(layout, lambda d: d), dtype=F64, device=cuda, jacobian=mode
    )
    ev = evaluator.evaluate(x.to(cuda), first=True)
    J = _jac(ev)
    assert J.device.type == "cuda" and ev.ci.device.type == "cuda"
    torch.testing.assert_close(J.cpu(), ref, rtol=tol.rtol, atol=tol.atol)
