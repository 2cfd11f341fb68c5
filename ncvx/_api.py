"""Native API: ``solve(fn, x0)`` and ``solve_module(module, fn)``.

``fn`` receives the variables in the form ``x0`` was given (a tensor of any shape, or a dict of
named tensors) and returns ``(f, ci, ce)``: a scalar tensor and two constraint containers
(``None``, a tensor, or a dict/list of tensors of any shape, meaning ``ci <= 0`` and ``ce == 0``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ._solver import BFGSSQP, Observer
from .bounds import resolve_bounds
from .callbacks import Callback
from .errors import OptionsError, ProblemError, SolveFailed
from .options import Options
from .printer import TablePrinter
from .problem.binding import Binding, DictBinding, ModuleBinding
from .problem.evaluator import Evaluator
from .problem.variables import VariableLayout
from .result import Result


def resolve_device(options: Options, x0: torch.Tensor | None) -> torch.device:
    """``torch_device`` if set, else the device of ``x0``, else CPU."""
    if options.torch_device is not None:
        return torch.device(options.torch_device)
    if x0 is not None:
        return x0.device
    return torch.device("cpu")


def default_x0(n: int, options: Options, device: torch.device) -> torch.Tensor:
    """Seeded standard normal start (reproducible, unlike PyGRANSO's unseeded ``randn``)."""
    gen = torch.Generator().manual_seed(options.seed)
    return torch.randn(n, generator=gen, dtype=options.dtype).to(device)


def check_x0(x0: Any, n: int, options: Options, device: torch.device) -> torch.Tensor:
    """Validate a user ``x0`` (``n`` entries, real, finite) and flatten it to ``(n,)``."""
    if not isinstance(x0, torch.Tensor):
        raise ProblemError(f"x0 must be a torch.Tensor with {n} entries, got {type(x0).__name__}")
    if x0.is_complex():
        raise ProblemError("x0 must be real")
    if x0.numel() != n:
        raise ProblemError(
            f"x0 has {x0.numel()} entries (shape {tuple(x0.shape)}); the variables need {n} "
            f"(shape ({n}, 1))"
        )
    x = x0.detach().reshape(-1).to(device=device, dtype=options.dtype).clone()
    if not bool(torch.isfinite(x).all()):
        raise ProblemError("x0 contains NaN or Inf")
    return x


def run_solver(
    fn: Callable[[Any], Any],
    binding: Binding,
    x0: torch.Tensor | None,
    options: Options,
    extra_observers: Sequence[Observer] = (),
) -> Result:
    """Shared driver of every front end: build the evaluator, printer and loop; run."""
    device = resolve_device(options, x0)
    x = (
        check_x0(x0, binding.n, options, device)
        if x0 is not None
        else default_x0(binding.n, options, device)
    )
    evaluator = Evaluator(
        fn,
        binding,
        dtype=options.dtype,
        device=device,
        jacobian=options.jacobian,
        chunk_size=options.jacobian_chunk_size,
        explicit_gradients=not options.globalAD,
    )
    observers: list[Observer] = []
    box = None
    if options.bounds is not None:
        layout = getattr(binding, "layout", None)
        if layout is None:
            raise OptionsError("bounds need named variables (a dict var_spec or an nn.Module)")
        box = resolve_bounds(options.bounds, layout, options.dtype, device)
    solver = BFGSSQP(evaluator, x, options, observers, box=box)
    printer: TablePrinter | None = None

    def lazy_printer(record: Any) -> None:
        nonlocal printer
        if printer is None:
            printer = TablePrinter(
                n=binding.n,
                m_i=evaluator.m_i or 0,
                m_e=evaluator.m_e or 0,
                width=options.print_width,
                frequency=options.print_frequency,
                ascii=bool(options.print_ascii),
                color=bool(options.print_use_orange),
                limited_memory=options.limited_mem_size,
            )
            printer.banner(str(getattr(solver.qp, "backend", "?")))
        printer(record)

    if options.print_level >= 1:
        observers.append(lazy_printer)
    observers.extend(extra_observers)
    solver.observers = observers
    try:
        result = solver.run()
    finally:
        if isinstance(binding, ModuleBinding):
            binding.restore_flags()
    if printer is not None:
        printer.summary(result)
        sys.stdout.flush()
    return result


def solve(
    fn: Callable[[Any], Any],
    x0: torch.Tensor | Mapping[str, torch.Tensor],
    options: Options | Mapping[str, Any] | None = None,
    *,
    callback: Callback | None = None,
    raise_on_failure: bool = False,
    **option_overrides: Any,
) -> Result:
    """Minimise ``f(x)`` subject to ``ci(x) <= 0`` and ``ce(x) == 0``.

    Args:
        fn: ``fn(x) -> (f, ci, ce)``; ``x`` has the structure of ``x0``.
        x0: starting point: a tensor (any shape) or a dict of named tensors.
        options: an :class:`Options`, a dict of option names, or ``None``.
        callback: called with an :class:`~ncvx.callbacks.IterationRecord` per iteration;
            returning True (or raising ``StopIteration``) halts the run.
        raise_on_failure: raise :class:`~ncvx.errors.SolveFailed` unless the status is a success.
        **option_overrides: option names and values, e.g. ``maxit=200, print_level=0``.

    Returns:
        A :class:`~ncvx.result.Result`; ``result.x`` is flat (``(n,)``), use
        :func:`unflatten` to get the structure of ``x0`` back.
    """
    opts = _options(options, option_overrides)
    if isinstance(x0, torch.Tensor):
        layout = VariableLayout.from_shapes({"x": tuple(x0.shape) or (1,)})
        shape = x0.shape
        binding: Binding = DictBinding(layout, lambda d: d["x"].reshape(shape))
        flat = x0.reshape(-1)
    elif isinstance(x0, Mapping):
        layout = VariableLayout.from_shapes({k: tuple(v.shape) or (1,) for k, v in x0.items()})
        shapes = {k: v.shape for k, v in x0.items()}
        binding = DictBinding(layout, lambda d: {k: d[k].reshape(shapes[k]) for k in d})
        flat = layout.pack({k: v.detach() for k, v in x0.items()})
    else:
        raise ProblemError(f"x0 must be a tensor or a dict of tensors, got {type(x0).__name__}")
    if opts.x0 is None:
        opts = opts.replace(x0=flat, torch_device=opts.torch_device or flat.device)
    result = run_solver(fn, binding, opts.x0, opts, [callback] if callback else [])
    result.extra["layout"] = layout
    if raise_on_failure and not result.success:
        raise SolveFailed(result)
    return result


def solve_module(
    module: nn.Module,
    fn: Callable[[nn.Module], Any],
    options: Options | Mapping[str, Any] | None = None,
    *,
    callback: Callback | None = None,
    raise_on_failure: bool = False,
    **option_overrides: Any,
) -> Result:
    """Optimise the parameters of ``module``: ``fn(module) -> (f, ci, ce)``.

    Starts from the module's current parameters (unless ``x0`` is given) and leaves the
    module holding the recommended answer (``result.x``).
    """
    opts = _options(options, option_overrides)
    binding = ModuleBinding(module)
    x0 = opts.x0 if opts.x0 is not None else binding.current_x()
    if opts.torch_device is None:
        opts = opts.replace(torch_device=x0.device)
    result = run_solver(fn, binding, x0, opts, [callback] if callback else [])
    binding.bind(result.x, requires_grad=False)
    binding.restore_flags()
    if raise_on_failure and not result.success:
        raise SolveFailed(result)
    return result


def unflatten(result: Result, x: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Split a flat ``x`` (default ``result.x``) into the named variables of a dict ``x0``."""
    layout: VariableLayout = result.extra["layout"]
    return layout.unpack(result.x if x is None else x)


def _options(options: Options | Mapping[str, Any] | None, overrides: Mapping[str, Any]) -> Options:
    if options is None:
        base = Options.from_mapping(overrides)
        return base
    base = options if isinstance(options, Options) else Options.from_mapping(options)
    if overrides:
        Options.from_mapping(overrides)  # name check with suggestions
        base = base.replace(**overrides)
    return base
