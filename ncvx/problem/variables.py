"""Layout of named tensor variables inside one flat vector ``x`` of length ``n``.

Variables are stored consecutively in insertion order; each is flattened row-major
(``torch.reshape``), which is PyGRANSO's convention.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from ..errors import ProblemError


@dataclass(frozen=True)
class VariableLayout:
    """Names, shapes and offsets of the variables inside ``x``.

    Attributes:
        names: variable names in order.
        shapes: one shape per variable.
        offsets: start index of each variable in ``x``.
        n: total number of scalar variables.
    """

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    offsets: tuple[int, ...]
    n: int

    @staticmethod
    def from_shapes(spec: Mapping[str, Sequence[int] | int | torch.Size]) -> VariableLayout:
        """Build a layout from ``{"name": shape}`` (shape a list/tuple of ints or one int)."""
        if not isinstance(spec, Mapping):
            raise ProblemError(
                f"var_spec must be a dict of variable shapes or an nn.Module, got {type(spec).__name__}"
            )
        if len(spec) == 0:
            raise ProblemError(
                "var_spec is empty: declare at least one variable, e.g. {'x': [2, 1]}"
            )
        names, shapes, offsets = [], [], []
        n = 0
        for name, shape in spec.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise ProblemError(f"variable name {name!r} must be a valid Python identifier")
            if isinstance(shape, int):
                shape = (shape,)
            try:
                dims = tuple(int(s) for s in shape)
            except (TypeError, ValueError) as exc:
                raise ProblemError(
                    f"shape of variable {name!r} must be a list of ints, got {shape!r}"
                ) from exc
            if any(d <= 0 for d in dims) or any(int(s) != s for s in shape):
                raise ProblemError(
                    f"shape of variable {name!r} must have positive integer dimensions, got {shape!r}"
                )
            names.append(name)
            shapes.append(dims)
            offsets.append(n)
            n += math.prod(dims)
        return VariableLayout(tuple(names), tuple(shapes), tuple(offsets), n)

    @property
    def sizes(self) -> tuple[int, ...]:
        """Number of scalars in each variable."""
        return tuple(math.prod(s) for s in self.shapes)

    def unpack(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Split a flat ``x`` of shape ``(n,)`` into named views of the declared shapes."""
        flat = x.reshape(-1)
        if flat.numel() != self.n:
            raise ProblemError(f"x has {flat.numel()} entries; the variables need {self.n}")
        return {
            name: flat[o : o + size].view(shape)
            for name, shape, o, size in zip(self.names, self.shapes, self.offsets, self.sizes)
        }

    def pack(self, tensors: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Concatenate named tensors (in layout order) into a flat vector of shape ``(n,)``."""
        missing = [k for k in self.names if k not in tensors]
        if missing:
            raise ProblemError(f"missing variables {missing} when packing")
        parts = []
        for name, shape in zip(self.names, self.shapes):
            t = tensors[name]
            if tuple(t.shape) != shape and t.numel() != math.prod(shape):
                raise ProblemError(
                    f"variable {name!r} has shape {tuple(t.shape)}, expected {shape}"
                )
            parts.append(t.reshape(-1))
        return torch.cat(parts)
