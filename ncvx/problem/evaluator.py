"""Evaluate the user's function: values first, derivatives on demand, batched Jacobians.

An :class:`Evaluation` holds ``f``, the flattened inequality values ``ci`` (shape ``(m_i,)``) and
equality values ``ce`` (``(m_e,)``) at one point ``x`` (``(n,)``). Its derivatives ``grad_f``
(``(n,)``), ``J_i`` (``(m_i, n)``) and ``J_e`` (``(m_e, n)``) are computed only when
:meth:`Evaluation.ensure_gradients` is called: one batched reverse pass
(``torch.autograd.grad(..., is_grads_batched=True)``) over the stacked outputs ``[f, ci, ce]``,
chunked for memory, with a one-row-at-a-time fallback for functions that cannot be batched.
"""

from __future__ import annotations

import logging
import math
import warnings
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import ProblemError
from ..sparse_coo import trusted_coo
from .binding import Binding
from .sparsity import MIN_GAIN, ColumnColouring, colour_columns

logger = logging.getLogger("ncvx")

#: Number of Jacobian entries one batched backward pass may produce, when no chunk size is set.
#: On the CPU the batched backward's intermediates are chunk × (output size) arrays; kept near
#: the cache size (2²¹ entries = 16 MB) the SVM's 10 000 × 5021 Jacobian took 0.75 s instead of
#: 1.6 s in one pass. On a GPU fewer, larger passes are better.
_JACOBIAN_BUDGET = 2**26
_JACOBIAN_BUDGET_CPU = 2**21

#: Constraint tensors with at least this many entries get their Jacobian's pattern learned and,
#: when few colours cover it, column-compressed Jacobians (:mod:`ncvx.problem.sparsity`).
COMPRESS_MIN_ROWS = 512
#: The random probe ``J r`` must match the decompressed Jacobian to this relative accuracy
#: (float64; float32: 1000 ulps). A missed entry shows as an error of the order of the entry.
_PROBE_RTOL = 1e-8
#: A constraint tensor whose pattern missed entries this many times is not compressed again.
_MAX_PATTERN_MISSES = 3

#: With at least this many scalar constraints, a penalty gradient needed before the Jacobian
#: (a line-search trial point) is formed by weighted reverse passes instead.
WEIGHTED_MIN_ROWS = 256
#: Zero-filled Jacobians of at least this many entries (on the CPU) come from a few buffers
#: that are reused once no tensor refers to them any more: a fresh 10 000 × 5021 zero matrix
#: costs ~0.1 s, mostly page faults of new memory, where zeroing a reused one costs ~0.02 s.
POOL_MIN_ENTRIES = 4_000_000
_POOL_SIZE = 3


class UserFunctionError(RuntimeError):
    """Wraps an exception raised inside the user's function during the run."""

    def __init__(self, original: BaseException) -> None:
        self.original = original
        super().__init__(f"the user's function raised {type(original).__name__}: {original}")


@dataclass
class Evaluation:
    """Values at one point, with derivatives filled in on demand (see module docstring)."""

    x: torch.Tensor
    f: torch.Tensor
    ci: torch.Tensor
    ce: torch.Tensor
    grad_f: torch.Tensor | None = None
    J_i: torch.Tensor | None = None
    J_e: torch.Tensor | None = None
    _pending: Callable[[], tuple[torch.Tensor, torch.Tensor, torch.Tensor]] | None = None
    _C: torch.Tensor | None = None
    # (w_i, w_e) -> (grad_f, w_iᵀJ_i + w_eᵀJ_e) by two reverse passes, without the Jacobian
    _weighted: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = (
        None
    )
    _weighted_cache: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None = None
    # (rows, cols) of C's possible nonzeros when its Jacobians came from known patterns
    _pattern: tuple[torch.Tensor, torch.Tensor] | None = None
    _C_sparse: torch.Tensor | None = None

    @property
    def has_gradients(self) -> bool:
        return self.grad_f is not None

    @property
    def C(self) -> torch.Tensor:
        """``[J_e; J_i]`` (``(m_e + m_i, n)``, equalities first), concatenated once."""
        if self._C is None:
            self.ensure_gradients()
            assert self.J_e is not None and self.J_i is not None
            # no copy of many rows when one block is empty (10 000 x 5000 rows are 400 MB);
            # few rows are concatenated as before: a transposed (1, n) view of explicit
            # gradients has other strides, and its products round differently
            if self.J_e.shape[0] == 0 and self.J_i.shape[0] >= WEIGHTED_MIN_ROWS:
                self._C = self.J_i
            elif self.J_i.shape[0] == 0 and self.J_e.shape[0] >= WEIGHTED_MIN_ROWS:
                self._C = self.J_e
            else:
                self._C = torch.cat([self.J_e, self.J_i])
        return self._C

    def sparse_C(self) -> torch.Tensor:
        """``C`` as a coalesced sparse COO tensor (made once; from the Jacobians' nonzero
        patterns when they are known, which saves scanning all ``m n`` entries)."""
        if self._C_sparse is None:
            C = self.C.detach()
            if self._pattern is None:
                self._C_sparse = C.to_sparse().coalesce()
            else:
                rows, cols = self._pattern
                values = C[rows, cols]
                keep = values != 0  # exactly the entries to_sparse would keep
                self._C_sparse = trusted_coo(
                    torch.stack([rows[keep], cols[keep]]), values[keep], C.shape
                )
        return self._C_sparse

    def ensure_gradients(self) -> None:
        """Compute ``grad_f``, ``J_i``, ``J_e`` if not done yet (then free the graph)."""
        if self.grad_f is None:
            if self._pending is None:
                raise RuntimeError("no gradients available for this evaluation")
            self.grad_f, self.J_i, self.J_e = self._pending()
            self._pending = None

    def weighted_gradients(
        self, w_i: torch.Tensor, w_e: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(∇f, w_iᵀJ_i + w_eᵀJ_e)`` (both ``(n,)``) for weights ``w_i`` (``(m_i,)``), ``w_e``.

        From the Jacobians when they exist; otherwise, with many constraints, by two reverse
        passes that keep the graph (a line search's trial point that is then rejected never
        needs the Jacobian: with 10 000 constraints that is 0.75 s against a few ms).
        """
        if self.grad_f is None and self._weighted is not None and self._pending is not None:
            c = self._weighted_cache
            if c is not None and torch.equal(c[0], w_i) and torch.equal(c[1], w_e):
                return c[2], c[3]
            grad_f, gv = self._weighted(w_i, w_e)
            self._weighted_cache = (w_i, w_e, grad_f, gv)
            return grad_f, gv
        self.ensure_gradients()
        assert self.grad_f is not None and self.J_i is not None and self.J_e is not None
        return self.grad_f, w_i @ self.J_i + w_e @ self.J_e

    def drop_graph(self) -> None:
        """Forget the autograd graph when gradients will not be needed."""
        self._pending = None
        self._weighted = None


def flatten_constraints(value: Any, kind: str) -> tuple[list[torch.Tensor], list[str]]:
    """Flatten a constraint container into a list of 1-D tensors and their names.

    ``value`` may be ``None``, a tensor, a mapping, a sequence of tensors, or an attribute bag
    (PyGRANSO's ``pygransoStruct``); attribute and key order is kept, each tensor is flattened
    row-major.
    """
    if value is None:
        return [], []
    if isinstance(value, torch.Tensor):
        items: list[tuple[str, Any]] = [(kind, value)]
    elif isinstance(value, Mapping):
        items = [(f"{kind}.{k}", v) for k, v in value.items()]
    elif isinstance(value, Sequence) and not isinstance(value, str):
        items = [(f"{kind}[{i}]", v) for i, v in enumerate(value)]
    elif hasattr(value, "__dict__"):
        items = [(f"{kind}.{k}", v) for k, v in vars(value).items() if not k.startswith("_")]
    else:
        raise ProblemError(
            f"{kind} must be None, a tensor, a dict/list of tensors or a pygransoStruct of tensors; "
            f"got {type(value).__name__}"
        )
    tensors, names = [], []
    for name, t in items:
        if t is None:
            continue
        if not isinstance(t, torch.Tensor):
            raise ProblemError(
                f"constraint {name} must be a torch.Tensor, got {type(t).__name__}; build it from "
                "the variables with torch operations (not floats or numpy) so it has gradients"
            )
        if t.is_complex():
            raise ProblemError(f"constraint {name} is complex; constraints must be real")
        tensors.append(t.reshape(-1))
        names.append(name)
    return tensors, names


class Evaluator:
    """Calls the user's function and produces :class:`Evaluation` objects.

    Args:
        fn: the user's function of the bound argument, returning ``(f, ci, ce)`` (AD mode) or
            ``(f, f_grad, ci, ci_grad, ce, ce_grad)`` (``explicit_gradients=True``, gradients as
            columns, shapes ``(n, 1)`` and ``(n, m)``).
        binding: how ``x`` becomes the function's argument.
        dtype, device: of ``x`` and of every tensor the solver keeps.
        jacobian: ``"auto"`` (batched, falling back to a row loop), ``"batched"`` or ``"loop"``.
        chunk_size: rows per batched backward pass (``None``: by a memory budget).
        explicit_gradients: PyGRANSO's ``globalAD=False`` mode.
    """

    def __init__(
        self,
        fn: Callable[[Any], Any],
        binding: Binding,
        *,
        dtype: torch.dtype,
        device: torch.device,
        jacobian: str = "auto",
        chunk_size: int | None = None,
        explicit_gradients: bool = False,
    ) -> None:
        self.fn = fn
        self.binding = binding
        self.n = binding.n
        self.dtype = dtype
        self.device = device
        self.jacobian = jacobian
        self.chunk_size = chunk_size
        self.explicit = explicit_gradients
        self.m_i: int | None = None
        self.m_e: int | None = None
        self.ci_names: list[str] = []
        self.ce_names: list[str] = []
        self.n_values = 0
        self.n_gradients = 0
        #: per constraint tensor (by position): its column colouring, or None if not worth it
        self._colourings: dict[int, ColumnColouring | None] = {}
        self.n_compressed = 0  # Jacobians obtained by compression (for tests and profiles)
        self._pattern_misses: dict[int, int] = {}
        self._pool: list[tuple[torch.Tensor, int]] = []  # (buffer, its storage's own use count)
        self._used_colouring: ColumnColouring | None = None  # of the last _jacobian_of call
        self._last_pattern: tuple[torch.Tensor, torch.Tensor] | None = None
        self.seconds_in_user = 0.0
        self._empty: torch.Tensor | None = None
        # prescaling factors (1 = unscaled); set by :meth:`set_scaling`
        self.scale_f = 1.0
        self.scale_ci: torch.Tensor | None = None
        self.scale_ce: torch.Tensor | None = None

    # ---------------------------------------------------------------------------- public
    def evaluate(self, x: torch.Tensor, *, first: bool = False) -> Evaluation:
        """Evaluate values at ``x`` (shape ``(n,)``); gradients are prepared lazily.

        ``first=True`` validates the output shapes and finiteness (raises ``ProblemError``);
        otherwise exceptions from the user's function are wrapped in :class:`UserFunctionError`.
        """
        self.n_values += 1
        if self.explicit:
            return self._evaluate_explicit(x, first)
        return self._evaluate_autograd(x, first)

    def set_scaling(self, scale_f: float, scale_ci: torch.Tensor, scale_ce: torch.Tensor) -> None:
        """Multiply f, ci, ce (and their derivatives) by these factors from now on."""
        self.scale_f = scale_f
        self.scale_ci = scale_ci
        self.scale_ce = scale_ce

    @property
    def is_scaled(self) -> bool:
        return self.scale_ci is not None

    # ---------------------------------------------------------------------------- autograd mode
    def _call_user(self, arg: Any, first: bool) -> Any:
        try:
            return self.fn(arg)
        except (KeyboardInterrupt, ProblemError):
            raise
        except Exception as exc:
            if first:
                raise ProblemError(
                    f"combined_fn raised {type(exc).__name__} at the starting point: {exc}"
                ) from exc
            raise UserFunctionError(exc) from exc

    def _evaluate_autograd(self, x: torch.Tensor, first: bool) -> Evaluation:
        inputs, arg = self.binding.bind(x, requires_grad=True)
        with torch.enable_grad():
            out = self._call_user(arg, first)
            f_t, ci_list, ce_list = self._unpack_autograd(out, first)
        f_val = self._to_solver(f_t.detach().reshape(()))
        ci = self._cat_values(ci_list)
        ce = self._cat_values(ce_list)
        f_val, ci, ce = self._scale_values(f_val, ci, ce)
        outputs = [f_t.reshape(1), *ci_list, *ce_list]
        generation = getattr(self.binding, "generation", None)

        def graph() -> tuple[list[torch.Tensor], list[torch.Tensor]]:
            """This point's outputs and inputs; evaluated again when the binding has overwritten
            the inputs in place since (an ``nn.Module``'s parameters, see ModuleBinding)."""
            if generation is None or self.binding.generation == generation:
                return outputs, inputs
            again, arg = self.binding.bind(x, requires_grad=True)
            with torch.enable_grad():
                f2, ci2, ce2 = self._unpack_autograd(self._call_user(arg, False), False)
            return [f2.reshape(1), *ci2, *ce2], again

        owner: list[weakref.ref[Evaluation]] = []

        def pending() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            out = self._gradients(*graph())
            ev = owner[0]() if owner else None
            if ev is not None:
                ev._pattern = self._last_pattern
            return out

        directional = None
        if ci.numel() + ce.numel() >= WEIGHTED_MIN_ROWS:

            def directional(
                w_i: torch.Tensor, w_e: torch.Tensor
            ) -> tuple[torch.Tensor, torch.Tensor]:
                return self._weighted_gradients(*graph(), w_i, w_e)

        ev = Evaluation(x=x, f=f_val, ci=ci, ce=ce, _pending=pending, _weighted=directional)
        owner.append(weakref.ref(ev))
        return ev

    def _unpack_autograd(
        self, out: Any, first: bool
    ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        if not isinstance(out, Sequence) or isinstance(out, str) or len(out) != 3:
            raise ProblemError(
                "combined_fn must return three items [f, ci, ce] (use None for absent constraint "
                f"groups); got {_describe(out)}"
            )
        f, ci, ce = out
        self._check_objective(f)
        ci_list, ci_names = flatten_constraints(ci, "ci")
        ce_list, ce_names = flatten_constraints(ce, "ce")
        if first:
            self._record_sizes(ci_list, ci_names, ce_list, ce_names)
            for t, name in zip(ci_list + ce_list, ci_names + ce_names):
                if not t.requires_grad:
                    raise ProblemError(
                        f"constraint {name} is not connected to the variables (it has no autograd "
                        "graph): compute it from the variables with torch operations; avoid "
                        ".item(), float(), numpy and torch.tensor([...]) (use torch.stack/cat)"
                    )
            if not f.requires_grad:
                logger.warning(
                    "the objective does not depend on the variables; its gradient is taken as 0"
                )
        else:
            self._check_sizes(ci_list, ce_list)
        return f, ci_list, ce_list

    def _gradients(
        self, outputs: list[torch.Tensor], inputs: list[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Gradient of f and Jacobian of the constraints, as separate reverse passes.

        Keeping f apart means an infinite derivative inside one constraint (``0 * inf``) cannot
        turn the objective's gradient into NaN.
        """
        self.n_gradients += 1
        self._last_pattern = None
        f, constraints = outputs[0], outputs[1:]
        try:
            if f.requires_grad:
                g = torch.autograd.grad(
                    f.sum(),
                    inputs,
                    retain_graph=bool(constraints),
                    allow_unused=True,
                    materialize_grads=True,
                )
                grad_f = self.binding.flatten_grads(list(g), None)
            else:
                grad_f = torch.zeros(self.n, dtype=self.dtype, device=self.device)
            m = sum(c.numel() for c in constraints)
            if m == 0:
                jac = torch.zeros(0, self.n, dtype=self.dtype, device=self.device)
            else:
                # one Jacobian per constraint tensor: a batched backward through the stacked
                # constraints would run every row's seed through every tensor's graph (an
                # attack's 1568 box rows through the network: 123 of 156 s of the run)
                dtype = constraints[0].dtype
                patterns: list[tuple[torch.Tensor, torch.Tensor]] | None = []
                if len(constraints) == 1:
                    jac = self._jacobian_of(constraints[0].to(dtype), inputs, 0)
                    patterns = self._block_pattern(constraints[0], 0, patterns)
                else:  # filled block by block: no second copy of a large Jacobian
                    jac = self._zeros(m, dtype, constraints[0].device)
                    at = 0
                    for k, c in enumerate(constraints):
                        rows = jac[at : at + c.numel()]
                        block = self._jacobian_of(c.to(dtype), inputs, k, out=rows)
                        if block is not rows:
                            rows.copy_(block)
                        patterns = self._block_pattern(c, at, patterns)
                        at += c.numel()
                if patterns:
                    self._last_pattern = self._pattern_of_C(patterns)
        except RuntimeError as exc:
            raise UserFunctionError(exc) from exc
        grad_f, jac = self._to_solver(grad_f), self._to_solver(jac)
        m_i = self.m_i or 0
        return self._scale_gradients(grad_f, jac[:m_i], jac[m_i:])

    def _weighted_gradients(
        self,
        outputs: list[torch.Tensor],
        inputs: list[torch.Tensor],
        w_i: torch.Tensor,
        w_e: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``∇f`` and ``Σ_j w_j ∇c_j`` (scaled as the Jacobians are) by two reverse passes that
        keep the graph (f apart, as in :meth:`_gradients`)."""
        f, constraints = outputs[0], outputs[1:]
        w = (
            torch.cat([w_i * self.scale_ci, w_e * self.scale_ce])
            if self.is_scaled
            else (torch.cat([w_i, w_e]))
        )
        try:
            if f.requires_grad:
                g = torch.autograd.grad(
                    f.sum(), inputs, retain_graph=True, allow_unused=True, materialize_grads=True
                )
                grad_f = self.binding.flatten_grads(list(g), None)
            else:
                grad_f = torch.zeros(self.n, dtype=self.dtype, device=self.device)
            total = None
            at = 0
            for c in constraints:
                k = c.numel()
                if c.requires_grad:
                    term = (w[at : at + k].to(c) * c.reshape(-1)).sum()
                    total = term if total is None else total + term
                at += k
            if total is None:
                gv = torch.zeros(self.n, dtype=self.dtype, device=self.device)
            else:
                g = torch.autograd.grad(
                    total, inputs, retain_graph=True, allow_unused=True, materialize_grads=True
                )
                gv = self.binding.flatten_grads(list(g), None)
        except RuntimeError as exc:
            raise UserFunctionError(exc) from exc
        grad_f = self._to_solver(grad_f)
        if self.is_scaled:
            grad_f = grad_f * self.scale_f
        return grad_f, self._to_solver(gv)

    def _jacobian_of(
        self,
        c: torch.Tensor,
        inputs: list[torch.Tensor],
        slot: int | None = None,
        out: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``(c.numel(), n)`` Jacobian of one constraint tensor (zeros if it is constant).

        ``slot``: the tensor's position among the constraints; large tensors (at least
        :data:`COMPRESS_MIN_ROWS` entries) are column-compressed once their pattern is known
        and few colours cover it. ``out``: a zero-filled ``(c.numel(), n)`` block that a
        compressed Jacobian is written into (then returned)."""
        self._used_colouring = None
        if not c.requires_grad:
            return out if out is not None else c.new_zeros(c.numel(), self.n)
        compress = slot is not None and self.jacobian == "auto" and c.numel() >= COMPRESS_MIN_ROWS
        colouring = self._colourings.get(slot) if compress else None
        if colouring is not None:
            if out is None:
                out = self._zeros(c.numel(), c.dtype, c.device)
            try:
                J = self._jacobian_compressed(c, inputs, colouring, out)
            except RuntimeError as exc:  # e.g. an operation without a double backward
                logger.info("compressed Jacobians switched off for ci/ce tensor %d: %s", slot, exc)
                self._colourings[slot] = colouring = None
                J = None
            if J is not None:
                self.n_compressed += 1
                self._used_colouring = colouring
                return J
        self._used_colouring = None
        J = self._jacobian(c, inputs)
        if compress and (slot not in self._colourings or colouring is not None):
            # learn the pattern (again, after a probe mismatch: it missed an entry; a pattern
            # that keeps missing is given up)
            misses = self._pattern_misses.get(slot, -1) + 1
            self._pattern_misses[slot] = misses
            self._colourings[slot] = (
                colour_columns(J, max(1, c.numel() // MIN_GAIN - 1), previous=colouring)
                if misses <= _MAX_PATTERN_MISSES
                else None
            )
        return J

    def _block_pattern(
        self,
        c: torch.Tensor,
        offset: int,
        patterns: list[tuple[torch.Tensor, torch.Tensor]] | None,
    ) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
        """``patterns`` with the nonzero pattern of the block just computed (rows shifted by
        ``offset``), or ``None`` once a block's pattern is not known (a dense Jacobian)."""
        if patterns is None:
            return None
        if not c.requires_grad:  # a zero block: no entries
            return patterns
        colouring = self._used_colouring
        if colouring is None:
            return None
        return [*patterns, (colouring.rows + offset, colouring.cols)]

    def _pattern_of_C(
        self, patterns: list[tuple[torch.Tensor, torch.Tensor]]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The pattern in ``C = [J_e; J_i]``'s rows from blocks in the Jacobian's row order
        (inequalities first)."""
        rows = torch.cat([r for r, _ in patterns])
        cols = torch.cat([c for _, c in patterns])
        m_i, m_e = self.m_i or 0, self.m_e or 0
        rows = torch.where(rows < m_i, rows + m_e, rows - m_i)
        return rows, cols

    def _zeros(self, m: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """A zero ``(m, n)`` matrix; large ones on the CPU from the buffer pool (a buffer is
        reused only when its storage has no other user: no view of it is alive)."""
        if m * self.n < POOL_MIN_ENTRIES or device.type != "cpu":
            return torch.zeros(m, self.n, dtype=dtype, device=device)
        for buf, own in self._pool:
            if buf.shape == (m, self.n) and buf.dtype == dtype and _use_count(buf) == own:
                return buf.zero_()
        buf = torch.zeros(m, self.n, dtype=dtype, device=device)
        own = _use_count(buf)
        if own > 0:  # the count is readable: the buffer can be pooled
            self._pool = [*self._pool[-(_POOL_SIZE - 1) :], (buf, own)]
        return buf

    def _jacobian_compressed(
        self,
        c: torch.Tensor,
        inputs: list[torch.Tensor],
        colouring: ColumnColouring,
        out: torch.Tensor | None = None,
    ) -> torch.Tensor | None:
        """The Jacobian from ``J V`` (``V`` the colouring's seeds) and a random probe ``J r``,
        both by double backward (``J v = ∂/∂u (Jᵀu)ᵀv``), checked against the probe row by row
        and against one ordinary reverse pass (``wᵀJ r``); ``None`` if a check fails or the
        products are not finite (the caller goes dense)."""
        flat = c.reshape(-1)
        if colouring.shape != (flat.numel(), self.n):
            return None
        u = torch.zeros_like(flat, requires_grad=True)
        grads = torch.autograd.grad(
            flat,
            inputs,
            grad_outputs=u,
            create_graph=True,
            allow_unused=True,
            materialize_grads=True,
        )
        g = self.binding.flatten_grads(list(grads), None)  # Jᵀu, linear in u
        if not g.requires_grad:  # Jᵀu does not depend on u: J = 0
            return None
        gen = torch.Generator(device=flat.device).manual_seed(self.n_compressed)
        probe = torch.rand(self.n, generator=gen, dtype=flat.dtype, device=flat.device)
        seeds = torch.cat([colouring.seeds(flat.dtype), probe[None]])
        (JV,) = torch.autograd.grad(
            g,
            u,
            grad_outputs=seeds.to(g.dtype),
            is_grads_batched=True,
            retain_graph=True,
            allow_unused=True,
            materialize_grads=True,
        )  # (p + 1, m)
        JV = JV.to(flat.dtype).T  # (m, p + 1)
        values = colouring.values(JV[:, :-1])
        expected = JV[:, -1]
        got = colouring.matvec(values, probe)
        scale = colouring.matvec(values.abs(), probe) + expected.abs()
        rtol = max(_PROBE_RTOL, 1e3 * torch.finfo(flat.dtype).eps)
        missed = bool(((got - expected).abs() > rtol * scale).any())
        # the products above all come from the double backward; one ordinary reverse pass
        # checks them too (wᵀ J r both ways), in case part of the graph is not twice
        # differentiable in a way that does not raise (a custom backward leaving autograd)
        weights = torch.rand(flat.numel(), generator=gen, dtype=flat.dtype, device=flat.device)
        reverse = torch.autograd.grad(
            flat,
            inputs,
            grad_outputs=weights,
            retain_graph=True,
            allow_unused=True,
            materialize_grads=True,
        )
        once = float(self.binding.flatten_grads(list(reverse), None).to(flat.dtype) @ probe)
        twice = float(weights @ got)
        if abs(once - twice) > rtol * float(weights @ scale):
            missed = True
        if missed or not bool(torch.isfinite(JV).all()):
            logger.debug("compressed Jacobian: the checks disagree; learning the pattern again")
            return None
        return colouring.dense(values, out)

    def _jacobian(self, stacked: torch.Tensor, inputs: list[torch.Tensor]) -> torch.Tensor:
        rows = stacked.numel()
        if rows == 1:
            grads = torch.autograd.grad(
                stacked.sum(), inputs, retain_graph=True, allow_unused=True, materialize_grads=True
            )
            return self.binding.flatten_grads(list(grads), None).reshape(1, -1)
        if self.jacobian != "loop":
            try:
                return self._jacobian_batched(stacked, inputs)
            except RuntimeError as exc:
                if self.jacobian == "batched":
                    raise
                logger.warning(
                    "batched Jacobian failed (%s); falling back to one backward pass per row", exc
                )
                self.jacobian = "loop"
        out = []
        for r in range(rows):
            grads = torch.autograd.grad(
                stacked[r], inputs, retain_graph=True, allow_unused=True, materialize_grads=True
            )
            out.append(self.binding.flatten_grads(list(grads), None))
        return torch.stack(out)

    def _jacobian_batched(self, stacked: torch.Tensor, inputs: list[torch.Tensor]) -> torch.Tensor:
        rows = stacked.numel()
        budget = _JACOBIAN_BUDGET_CPU if stacked.device.type == "cpu" else _JACOBIAN_BUDGET
        # at least 16 rows per pass: a batched pass through a large network costs less than
        # as many single ones
        chunk = self.chunk_size or min(rows, max(16, budget // max(self.n, 1)))
        out: torch.Tensor | None = None
        for start in range(0, rows, chunk):
            stop = min(rows, start + chunk)
            # the rows start..stop of the identity, built per chunk (eye(10 000) is 800 MB)
            seeds = torch.zeros(stop - start, rows, dtype=stacked.dtype, device=stacked.device)
            seeds[torch.arange(stop - start), torch.arange(start, stop)] = 1.0
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                grads = torch.autograd.grad(
                    stacked,
                    inputs,
                    grad_outputs=seeds,
                    retain_graph=True,
                    is_grads_batched=True,
                    allow_unused=True,
                    materialize_grads=True,
                )
            for w in caught:
                logger.debug("batched Jacobian: %s", w.message)
            block = self.binding.flatten_grads(list(grads), seeds.shape[0])
            if start == 0 and stop == rows:
                return block
            if out is None:
                out = block.new_empty(rows, block.shape[1])
            out[start:stop] = block
        assert out is not None
        return out

    # ---------------------------------------------------------------------------- explicit mode
    def _evaluate_explicit(self, x: torch.Tensor, first: bool) -> Evaluation:
        self.n_gradients += 1
        _, arg = self.binding.bind(x, requires_grad=False)
        with torch.no_grad():
            out = self._call_user(arg, first)
        if not isinstance(out, Sequence) or len(out) != 6:
            raise ProblemError(
                "with globalAD=False combined_fn must return six items "
                f"[f, f_grad, ci, ci_grad, ce, ce_grad]; got {_describe(out)}"
            )
        f, f_grad, ci, ci_grad, ce, ce_grad = out
        self._check_objective(f)
        f_val = self._to_solver(f.detach().reshape(()))
        grad_f = self._explicit_matrix(f_grad, 1, "f_grad").reshape(-1)
        ci_list, ci_names = flatten_constraints(ci, "ci")
        ce_list, ce_names = flatten_constraints(ce, "ce")
        if first:
            self._record_sizes(ci_list, ci_names, ce_list, ce_names)
        else:
            self._check_sizes(ci_list, ce_list)
        ci_v = self._cat_values(ci_list)
        ce_v = self._cat_values(ce_list)
        J_i = self._explicit_matrix(ci_grad, ci_v.numel(), "ci_grad").T
        J_e = self._explicit_matrix(ce_grad, ce_v.numel(), "ce_grad").T
        f_val, ci_v, ce_v = self._scale_values(f_val, ci_v, ce_v)
        grad_f, J_i, J_e = self._scale_gradients(grad_f, J_i, J_e)
        return Evaluation(x=x, f=f_val, ci=ci_v, ce=ce_v, grad_f=grad_f, J_i=J_i, J_e=J_e)

    def _explicit_matrix(self, g: Any, m: int, name: str) -> torch.Tensor:
        if m == 0:
            return torch.zeros(self.n, 0, dtype=self.dtype, device=self.device)
        if not isinstance(g, torch.Tensor):
            raise ProblemError(
                f"{name} must be a tensor of shape ({self.n}, {m}), got {_describe(g)}"
            )
        ok = tuple(g.shape) == (self.n, m) or (
            m == 1
            and g.numel() == self.n
            and g.dim() <= 2
            and (g.dim() < 2 or g.shape[0] == self.n)
        )
        if not ok:
            raise ProblemError(
                f"{name} has shape {tuple(g.shape)}; expected ({self.n}, {m}) (gradients as columns)"
            )
        return self._to_solver(g.detach().reshape(self.n, m))

    # ---------------------------------------------------------------------------- helpers
    def _check_objective(self, f: Any) -> None:
        if not isinstance(f, torch.Tensor):
            raise ProblemError(
                f"the objective f must be a scalar torch.Tensor, got {type(f).__name__}; compute "
                "it from the variables with torch operations"
            )
        if f.numel() != 1:
            raise ProblemError(
                f"the objective f must be a scalar, got a tensor of shape {tuple(f.shape)} "
                "(reduce it, e.g. with .sum() or .mean())"
            )
        if f.is_complex():
            raise ProblemError("the objective f is complex; it must be real")

    def _record_sizes(self, ci_list, ci_names, ce_list, ce_names) -> None:
        self.m_i = sum(t.numel() for t in ci_list)
        self.m_e = sum(t.numel() for t in ce_list)
        self.ci_names, self.ce_names = ci_names, ce_names

    def _check_sizes(self, ci_list, ce_list) -> None:
        m_i = sum(t.numel() for t in ci_list)
        m_e = sum(t.numel() for t in ce_list)
        if (m_i, m_e) != (self.m_i, self.m_e):
            raise ProblemError(
                f"the number of constraints changed during the run: ci {self.m_i} -> {m_i}, "
                f"ce {self.m_e} -> {m_e}"
            )

    def _cat_values(self, tensors: list[torch.Tensor]) -> torch.Tensor:
        if not tensors:
            if self._empty is None:  # shared: an empty tensor has nothing to change
                self._empty = torch.zeros(0, dtype=self.dtype, device=self.device)
            return self._empty
        return self._to_solver(torch.cat([t.detach().to(tensors[0].dtype) for t in tensors]))

    def _to_solver(self, t: torch.Tensor) -> torch.Tensor:
        return t.to(device=self.device, dtype=self.dtype)

    def _scale_values(self, f, ci, ce):
        if not self.is_scaled:
            return f, ci, ce
        return f * self.scale_f, ci * self.scale_ci, ce * self.scale_ce

    def _scale_gradients(self, grad_f, J_i, J_e):
        if not self.is_scaled:
            return grad_f, J_i, J_e
        return grad_f * self.scale_f, J_i * self.scale_ci[:, None], J_e * self.scale_ce[:, None]


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    if isinstance(value, Sequence) and not isinstance(value, str):
        return f"a {type(value).__name__} of {len(value)} items"
    return f"a {type(value).__name__}"


def is_finite_evaluation(ev: Evaluation) -> bool:
    """True when f and all constraint values are finite (one host sync)."""
    vals = torch.cat([ev.f.reshape(1), ev.ci, ev.ce])
    return bool(torch.isfinite(vals).all())


def nonfinite_report(ev: Evaluation, ci_names: list[str], ce_names: list[str]) -> str:
    """Human-readable description of which outputs are not finite."""
    bad = []
    if not math.isfinite(float(ev.f)):
        bad.append(f"f = {float(ev.f)}")
    for vals, kind in ((ev.ci, "ci"), (ev.ce, "ce")):
        idx = torch.nonzero(~torch.isfinite(vals)).reshape(-1).tolist()
        if idx:
            bad.append(f"{kind} entries {idx[:10]}{'...' if len(idx) > 10 else ''}")
    return ", ".join(bad)


def _use_count(t: torch.Tensor) -> int:
    """How many holders ``t``'s storage has (tensors and views; 0 if this torch cannot say)."""
    try:
        return int(torch._C._storage_Use_Count(t.untyped_storage()._cdata))
    except (AttributeError, RuntimeError):
        return 0
