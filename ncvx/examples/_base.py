"""The :class:`Example` record shared by the bundled problems."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..compat import pygranso, pygransoStruct


@dataclass
class Example:
    """A ready-to-solve problem.

    Attributes:
        name: short identifier (``"A1"`` ... ``"C3"`` in SPEC Part B §7).
        var_spec: PyGRANSO variable spec (dict of shapes or an ``nn.Module``).
        combined_fn: ``combined_fn(X) -> [f, ci, ce]``.
        options: PyGRANSO option names -> values.
        f_ref: reference optimal (or published) objective value, when known.
        notes: where ``f_ref`` comes from.
        check: optional extra success check of a ``soln`` (returns a message or None).
    """

    name: str
    var_spec: Any
    combined_fn: Callable[..., Any]
    options: dict[str, Any] = field(default_factory=dict)
    f_ref: float | None = None
    notes: str = ""
    check: Callable[[Any], str | None] | None = None

    def opts(self, **overrides: Any) -> pygransoStruct:
        """The options as a PyGRANSO struct, with overrides applied."""
        return pygransoStruct(**{**self.options, **overrides})

    def solve(self, **overrides: Any) -> pygransoStruct:
        """Run :func:`ncvx.pygranso` on this example."""
        return pygranso(self.var_spec, self.combined_fn, self.opts(**overrides))
