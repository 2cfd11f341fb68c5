"""How the flat vector ``x`` is handed to the user's function.

A *binding* turns ``x`` (shape ``(n,)``) into the argument the user's function expects and into
the list of tensors autograd differentiates with respect to:

* :class:`DictBinding`: named tensors (views of one leaf copy of ``x``), passed as a dict, a
  single tensor, or an attribute bag (PyGRANSO's ``X`` struct) through ``make_arg``;
* :class:`ModuleBinding`: the parameters of an ``nn.Module`` are overwritten with ``x`` and the
  module itself is passed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

import torch
from torch import nn

from ..errors import ProblemError
from .variables import VariableLayout


class Binding(Protocol):
    """Maps ``x`` to the user's argument and the autograd inputs."""

    n: int

    def bind(self, x: torch.Tensor, requires_grad: bool) -> tuple[list[torch.Tensor], Any]:
        """Return ``(inputs, arg)``: tensors to differentiate w.r.t., and the user's argument."""
        ...

    def flatten_grads(self, grads: list[torch.Tensor], batch: int | None) -> torch.Tensor:
        """Concatenate per-input gradients into ``(n,)`` or ``(batch, n)``."""
        ...


class DictBinding:
    """Variables declared as ``{name: shape}``, all views of one leaf tensor.

    Differentiating with respect to the single leaf gives the full flat gradient directly, and
    variables a function does not use get zeros.
    """

    def __init__(
        self,
        layout: VariableLayout,
        make_arg: Callable[[Mapping[str, torch.Tensor]], Any],
    ) -> None:
        self.layout = layout
        self.make_arg = make_arg
        self.n = layout.n

    def bind(self, x: torch.Tensor, requires_grad: bool) -> tuple[list[torch.Tensor], Any]:
        leaf = x.detach().clone().requires_grad_(requires_grad)
        return [leaf], self.make_arg(self.layout.unpack(leaf))

    def flatten_grads(self, grads: list[torch.Tensor], batch: int | None) -> torch.Tensor:
        (g,) = grads
        if batch is None:
            return g
        if g.dim() == 1:  # unbatched zeros: no output depends on the variables
            return g.reshape(1, -1).expand(batch, -1)
        return g.reshape(batch, self.n)


class ModuleBinding:
    """The parameters of ``module`` (in ``module.parameters()`` order) are the variables."""

    def __init__(self, module: nn.Module) -> None:
        if not isinstance(module, nn.Module):
            raise ProblemError(f"expected an nn.Module, got {type(module).__name__}")
        self.module = module
        named = list(module.named_parameters())  # the same order as module.parameters()
        self.params = [p for _, p in named]
        self.n = sum(p.numel() for p in self.params)
        if self.n == 0:
            raise ProblemError("the nn.Module has no parameters: there is nothing to optimise")
        self._requires_grad = [p.requires_grad for p in self.params]
        #: bumped by every :meth:`bind`: the parameters are overwritten in place, so an earlier
        #: evaluation's autograd graph is stale once this has moved on
        self.generation = 0
        offsets = [0]
        for p in self.params[:-1]:
            offsets.append(offsets[-1] + p.numel())
        #: parameter names (``"fc.weight"``), shapes and offsets inside ``x`` (for ``bounds``)
        self.layout = VariableLayout(
            tuple(name for name, _ in named),
            tuple(tuple(p.shape) for p in self.params),
            tuple(offsets),
            self.n,
        )

    def bind(self, x: torch.Tensor, requires_grad: bool) -> tuple[list[torch.Tensor], Any]:
        self.generation += 1
        offset = 0
        with torch.no_grad():
            for p in self.params:
                k = p.numel()
                p.copy_(x[offset : offset + k].view_as(p))
                offset += k
        for p in self.params:
            p.requires_grad_(requires_grad)
        return self.params, self.module

    def flatten_grads(self, grads: list[torch.Tensor], batch: int | None) -> torch.Tensor:
        if batch is None:
            return torch.cat([g.reshape(-1) for g in grads])
        # an input no output depends on comes back as one unbatched zero tensor
        rows = [
            g.reshape(batch, -1) if g.dim() == p.dim() + 1 else g.reshape(1, -1).expand(batch, -1)
            for g, p in zip(grads, self.params)
        ]
        return torch.cat(rows, dim=1)

    def current_x(self) -> torch.Tensor:
        """The module's parameters as one flat vector (detached)."""
        return torch.cat([p.detach().reshape(-1) for p in self.params])

    def restore_flags(self) -> None:
        """Give the parameters back their original ``requires_grad`` flags."""
        for p, flag in zip(self.params, self._requires_grad):
            p.requires_grad_(flag)
