"""Unit tests of ``ncvx.problem.variables.VariableLayout``."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from ncvx.errors import ProblemError
from ncvx.problem.variables import VariableLayout

shapes = st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple)
specs = st.dictionaries(
    st.from_regex(r"[a-z][a-z0-9_]{0,5}", fullmatch=True), shapes, min_size=1, max_size=5
)


def _random_like(layout: VariableLayout, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        name: torch.randn(shape, generator=g, dtype=torch.float64)
        for name, shape in zip(layout.names, layout.shapes)
    }


@given(spec=specs, seed=st.integers(0, 2**31 - 1))
def test_pack_unpack_round_trip(spec, seed):
    layout = VariableLayout.from_shapes(spec)
    assert layout.n == sum(math.prod(s) for s in spec.values())
    assert layout.names == tuple(spec)
    x = torch.randn(layout.n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    parts = layout.unpack(x)
    assert list(parts) == list(spec)
    for name, shape in spec.items():
        assert parts[name].shape == torch.Size(shape)
    assert torch.equal(layout.pack(parts), x)

    d = _random_like(layout, seed)
    back = layout.unpack(layout.pack(d))
    assert list(back) == list(d)
    for name in d:
        assert torch.equal(back[name], d[name])


@given(spec=specs)
def test_offsets_are_consecutive_in_insertion_order(spec):
    layout = VariableLayout.from_shapes(spec)
    offset = 0
    for o, size in zip(layout.offsets, layout.sizes):
        assert o == offset
        offset += size
    assert offset == layout.n


def test_row_major_order():
    layout = VariableLayout.from_shapes({"A": [2, 3], "b": [2], "C": [2, 1, 2]})
    x = torch.arange(layout.n, dtype=torch.float64)
    parts = layout.unpack(x)
    assert torch.equal(parts["A"], torch.tensor([[0.0, 1, 2], [3, 4, 5]], dtype=torch.float64))
    assert torch.equal(parts["b"], torch.tensor([6.0, 7], dtype=torch.float64))
    assert torch.equal(parts["C"], torch.arange(8, 12, dtype=torch.float64).reshape(2, 1, 2))
    # pack flattens row-major (torch.reshape), not column-major
    A = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    packed = VariableLayout.from_shapes({"A": [2, 2]}).pack({"A": A})
    assert packed.tolist() == [1.0, 2.0, 3.0, 4.0]


def test_int_shape_and_torch_size_accepted():
    layout = VariableLayout.from_shapes({"a": 3, "b": torch.Size([2, 2])})
    assert layout.shapes == ((3,), (2, 2))
    assert layout.n == 7


def test_unpack_returns_views():
    layout = VariableLayout.from_shapes({"a": [2, 2], "b": [3]})
    x = torch.zeros(layout.n, dtype=torch.float64)
    parts = layout.unpack(x)
    for t in parts.values():
        assert t.untyped_storage().data_ptr() == x.untyped_storage().data_ptr()
    parts["a"][1, 0] = 5.0
    parts["b"][2] = -1.0
    assert x[2] == 5.0 and x[6] == -1.0
    x[4] = 3.0
    assert parts["b"][0] == 3.0


def test_unpack_views_carry_autograd():
    layout = VariableLayout.from_shapes({"a": [2], "b": [2, 1]})
    x = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64, requires_grad=True)
    p = layout.unpack(x)
    (p["a"].sum() * 2 + (p["b"] ** 2).sum()).backward()
    assert x.grad.tolist() == [2.0, 2.0, 6.0, 8.0]


def test_unpack_accepts_column_vector():
    layout = VariableLayout.from_shapes({"a": [3]})
    x = torch.arange(3.0).reshape(3, 1)
    assert layout.unpack(x)["a"].tolist() == [0.0, 1.0, 2.0]


@pytest.mark.parametrize(
    "spec",
    [
        {},
        {"a": [0]},
        {"a": [2, -1]},
        {"a": [1.5]},
        {"a": None},
        {"not valid": [1]},
        {"1a": [1]},
        {3: [1]},
    ],
)
def test_bad_specs_rejected(spec):
    with pytest.raises(ProblemError):
        VariableLayout.from_shapes(spec)


@pytest.mark.parametrize("shape", ["3x", "ab"])
def test_string_shape_rejected(shape):
    with pytest.raises(ProblemError, match="'a'"):
        VariableLayout.from_shapes({"a": shape})


def test_non_mapping_rejected():
    with pytest.raises(ProblemError, match="var_spec"):
        VariableLayout.from_shapes([("a", [1])])


def test_pack_rejects_wrong_size_and_missing():
    layout = VariableLayout.from_shapes({"a": [2, 3], "b": [2]})
    with pytest.raises(ProblemError, match="'a'"):
        layout.pack({"a": torch.zeros(2, 2), "b": torch.zeros(2)})
    with pytest.raises(ProblemError, match="'b'"):
        layout.pack({"a": torch.zeros(2, 3), "b": torch.zeros(3)})
    with pytest.raises(ProblemError, match="missing"):
        layout.pack({"a": torch.zeros(2, 3)})


def test_unpack_rejects_too_short_x():
    layout = VariableLayout.from_shapes({"a": [2, 3], "b": [4]})
    with pytest.raises((ProblemError, RuntimeError)):
        layout.unpack(torch.zeros(layout.n - 1))


def test_unpack_rejects_too_long_x():
    layout = VariableLayout.from_shapes({"a": [2, 3], "b": [4]})
    with pytest.raises((ProblemError, RuntimeError)):
        layout.unpack(torch.zeros(layout.n + 1))
