"""Solver options: one frozen dataclass, validated up front.

Field names and defaults are PyGRANSO's (its *code* defaults), so a PyGRANSO options struct maps
onto :class:`Options` one to one (:meth:`Options.from_pygranso`). A few fields are ncvx's own
(``jacobian``, ``jacobian_chunk_size``, ``seed``, ``qp_tol``, ``bfgs_y``,
``linesearch_warm_step``, ``bounds``, ``stat_skip_qp``,
``stat_step_window``, ``regularize_damped_threshold``). Every value is checked in
``__post_init__``; a wrong name or value raises :class:`~ncvx.errors.OptionsError` naming it.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

import torch

from .errors import OptionsError

_INF = math.inf


@dataclass(frozen=True)
class Options:
    """All options of the BFGS-SQP solver (PyGRANSO names and code defaults).

    See ``docs/options.md`` for the meaning of each field. ``x0`` and ``H0`` are tensors;
    ``ngrad=None`` means ``min(100, 2n, n + 10)``; ``torch_device=None`` means "the device of x0,
    else CPU".
    """

    # starting point and quasi-Newton
    x0: torch.Tensor | None = None
    mu0: float = 1.0
    H0: torch.Tensor | None = None
    checkH0: bool = True
    scaleH0: bool = True
    bfgs_damping: float = 1e-4
    limited_mem_size: int = 0
    limited_mem_fixed_scaling: bool = True
    limited_mem_warm_start: Mapping[str, Any] | None = None
    # tolerances and stopping
    opt_tol: float = 1e-8
    rel_tol: float = 0.0
    step_tol: float = 1e-12
    viol_ineq_tol: float = 1e-6
    viol_eq_tol: float = 1e-6
    ngrad: int | None = None
    evaldist: float = 1e-4
    maxit: int = 1000
    maxclocktime: float = _INF
    fvalquit: float = -_INF
    halt_on_quadprog_error: bool = False
    halt_on_linesearch_bracket: bool = True
    # fallbacks and steering
    min_fallback_level: int = 0
    max_fallback_level: int = 3
    max_random_attempts: int = 5
    steering_l1_model: bool = True
    steering_ineq_margin: float = 1e-6
    steering_maxit: int = 10
    steering_c_viol: float = 0.1
    steering_c_mu: float = 0.9
    regularize_threshold: float = _INF
    regularize_max_eigenvalues: bool = False
    regularize_damped_threshold: float = 1e6
    quadprog_info_msg: bool = True
    QPsolver: str = "auto"
    stat_l2_model: bool = True
    stat_skip_qp: bool = True
    stat_step_window: int = 5
    # line search
    wolfe1: float = 1e-4
    wolfe2: float = 0.5
    linesearch_nondescent_maxit: int = 0
    linesearch_reattempts: int = 0
    linesearch_reattempts_x0: int = 10
    linesearch_c_mu: float = 0.5
    linesearch_c_mu_x0: float = 0.5
    linesearch_maxit: float = _INF
    init_step_size: float = 1.0
    is_backtrack_linesearch: bool = False
    search_direction_rescaling: bool = False
    disable_terminationcode_6: bool = False
    # misc and output
    prescaling_threshold: float = _INF
    prescaling_info_msg: bool = True
    double_precision: bool = True
    torch_device: torch.device | str | None = None
    globalAD: bool = True
    print_level: int = 1
    print_frequency: int = 1
    print_width: int = 14
    print_ascii: bool = False
    print_use_orange: bool = True
    halt_log_fn: Callable[..., Any] | None = None
    debug_mode: bool = False
    # ncvx's own
    jacobian: str = "auto"
    jacobian_chunk_size: int | None = None
    seed: int = 0
    qp_tol: float = 1e-9
    bfgs_y: str = "auto"
    linesearch_warm_step: bool = True
    bounds: Any = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for spec in _CHECKS:
            spec(self)
        if self.wolfe2 < self.wolfe1:
            raise OptionsError(
                f"wolfe2={self.wolfe2} must be >= wolfe1={self.wolfe1} (weak Wolfe needs 0<=c1<=c2<1)"
            )
        if self.max_fallback_level < self.min_fallback_level:
            raise OptionsError(
                f"max_fallback_level={self.max_fallback_level} is below "
                f"min_fallback_level={self.min_fallback_level}"
            )

    # ------------------------------------------------------------------ construction helpers
    @classmethod
    def names(cls) -> tuple[str, ...]:
        """All accepted option names."""
        return tuple(f.name for f in fields(cls) if f.name != "extra")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Options:
        """Build options from a name -> value mapping; unknown names raise with a suggestion."""
        known = set(cls.names())
        for key in values:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise OptionsError(f"unknown option {key!r}{hint}")
        return cls(**dict(values))

    @classmethod
    def from_pygranso(cls, opts: Any) -> Options:
        """Convert a PyGRANSO options struct (any object with attributes), a dict, or None."""
        if opts is None:
            return cls()
        if isinstance(opts, Options):
            return opts
        if isinstance(opts, Mapping):
            return cls.from_mapping(opts)
        if not hasattr(opts, "__dict__"):
            raise OptionsError(
                f"user_opts must be a pygransoStruct, a dict or None, got {type(opts).__name__}"
            )
        values = {k: v for k, v in vars(opts).items() if not k.startswith("_")}
        return cls.from_mapping(values)

    def replace(self, **changes: Any) -> Options:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    # ------------------------------------------------------------------ derived values
    def resolved_ngrad(self, n: int) -> int:
        """Gradient-sample cache size: the option, or ``min(100, 2n, n + 10)``."""
        return self.ngrad if self.ngrad is not None else min(100, 2 * n, n + 10)

    @property
    def dtype(self) -> torch.dtype:
        """Internal floating dtype: float64 if ``double_precision`` else float32."""
        return torch.float64 if self.double_precision else torch.float32


# ---------------------------------------------------------------------------------- validation


def _is_bool(v: Any) -> bool:
    return isinstance(v, bool) or (isinstance(v, int) and v in (0, 1))


def _is_real(v: Any) -> bool:
    if isinstance(v, torch.Tensor) and v.numel() == 1:
        v = v.item()
    return isinstance(v, int | float) and not isinstance(v, bool) and not math.isnan(float(v))


def _check(name: str, ok: Callable[[Any], bool], expected: str) -> Callable[[Options], None]:
    def check(o: Options) -> None:
        value = getattr(o, name)
        if not ok(value):
            raise OptionsError(f"option {name}={value!r} is invalid: expected {expected}")
        # normalise numeric tensors / ints to float for float fields
        if isinstance(value, torch.Tensor) and value.numel() == 1 and expected.startswith("a real"):
            object.__setattr__(o, name, float(value.item()))

    return check


def _real(
    lo: float, hi: float, lo_open: bool = False, hi_open: bool = False
) -> Callable[[Any], bool]:
    def ok(v: Any) -> bool:
        if not _is_real(v):
            return False
        v = float(v.item() if isinstance(v, torch.Tensor) else v)
        above = v > lo if lo_open else v >= lo
        below = v < hi if hi_open else v <= hi
        return above and below

    return ok


def _int(lo: float, hi: float = _INF) -> Callable[[Any], bool]:
    def ok(v: Any) -> bool:
        if isinstance(v, bool):
            return False
        return isinstance(v, int) and lo <= v <= hi

    return ok


def _interval(lo: float, hi: float, lo_open: bool = False, hi_open: bool = False) -> str:
    left = "(" if lo_open else "["
    right = ")" if hi_open else "]"
    return f"a real number in {left}{lo}, {hi}{right}"


def _real_check(name: str, lo: float, hi: float, lo_open=False, hi_open=False):
    return _check(name, _real(lo, hi, lo_open, hi_open), _interval(lo, hi, lo_open, hi_open))


def _int_check(name: str, lo: float, hi: float = _INF):
    return _check(name, _int(lo, hi), f"an integer in [{lo}, {hi}]")


def _bool_check(name: str):
    return _check(name, _is_bool, "True or False")


def _tensor_or_none(name: str):
    return _check(
        name, lambda v: v is None or isinstance(v, torch.Tensor), "a torch.Tensor or None"
    )


def _qp_backend_ok(v: Any) -> bool:
    if not isinstance(v, str):
        return False
    from .qp import registry

    if v == "auto" or v in registry.BACKENDS:
        return True
    close = difflib.get_close_matches(v, [*registry.BACKENDS, "auto"], n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise OptionsError(
        f"option QPsolver={v!r} is not a known QP backend (known: 'auto', "
        f"{', '.join(sorted(registry.BACKENDS))}){hint}"
    )


def _device_ok(v: Any) -> bool:
    if v is None or isinstance(v, torch.device):
        return True
    if isinstance(v, str):
        try:
            torch.device(v)
        except RuntimeError:
            return False
        return True
    return False


_BOOLS = [
    "checkH0",
    "scaleH0",
    "limited_mem_fixed_scaling",
    "halt_on_quadprog_error",
    "halt_on_linesearch_bracket",
    "steering_l1_model",
    "regularize_max_eigenvalues",
    "quadprog_info_msg",
    "stat_l2_model",
    "stat_skip_qp",
    "is_backtrack_linesearch",
    "search_direction_rescaling",
    "disable_terminationcode_6",
    "prescaling_info_msg",
    "double_precision",
    "globalAD",
    "print_ascii",
    "print_use_orange",
    "debug_mode",
    "linesearch_warm_step",
]

_CHECKS: list[Callable[[Options], None]] = [
    *(_bool_check(b) for b in _BOOLS),
    _tensor_or_none("x0"),
    _tensor_or_none("H0"),
    _real_check("mu0", 0, _INF, hi_open=True),
    _real_check("bfgs_damping", 0, 1),
    _int_check("limited_mem_size", 0),
    _check(
        "limited_mem_warm_start",
        lambda v: v is None or (isinstance(v, Mapping) and {"S", "Y", "rho"} <= set(v)),
        "None or a dict with keys 'S', 'Y', 'rho' (and optionally 'gamma'), e.g. soln.H_final",
    ),
    _real_check("opt_tol", 0, _INF),
    _real_check("rel_tol", 0, _INF),
    _real_check("step_tol", 0, _INF, lo_open=True),
    _real_check("viol_ineq_tol", 0, _INF),
    _real_check("viol_eq_tol", 0, _INF),
    _check("ngrad", lambda v: v is None or _int(1)(v), "None or a positive integer"),
    _real_check("evaldist", 0, _INF),
    _int_check("maxit", 0),
    _real_check("maxclocktime", 0, _INF, lo_open=True),
    _check("fvalquit", lambda v: _is_real(v) or v == -_INF, "a real number (or -inf)"),
    _int_check("min_fallback_level", 0, 4),
    _int_check("max_fallback_level", 0, 4),
    _int_check("max_random_attempts", 0),
    _real_check("steering_ineq_margin", 0, _INF),
    _int_check("steering_maxit", 0),
    _real_check("steering_c_viol", 0, 1, lo_open=True, hi_open=True),
    _real_check("steering_c_mu", 0, 1, lo_open=True, hi_open=True),
    _real_check("regularize_threshold", 1, _INF, lo_open=True),
    _real_check("regularize_damped_threshold", 1, _INF, lo_open=True),
    _int_check("stat_step_window", 0),
    _check("QPsolver", lambda v: _qp_backend_ok(v), "'auto' or an installed QP backend"),
    _real_check("wolfe1", 0, 0.5),
    _real_check("wolfe2", 0, 1, hi_open=True),
    _int_check("linesearch_nondescent_maxit", 0),
    _int_check("linesearch_reattempts", 0),
    _int_check("linesearch_reattempts_x0", 0),
    _real_check("linesearch_c_mu", 0, 1, lo_open=True, hi_open=True),
    _real_check("linesearch_c_mu_x0", 0, 1, lo_open=True, hi_open=True),
    _check(
        "linesearch_maxit",
        lambda v: _int(1)(v) if not isinstance(v, float) else v == _INF or v >= 1,
        "a positive integer or inf",
    ),
    _real_check("init_step_size", 0, _INF, lo_open=True, hi_open=True),
    _real_check("prescaling_threshold", 0, _INF, lo_open=True),
    _check("torch_device", _device_ok, "a torch.device, a device string like 'cuda:0', or None"),
    _int_check("print_level", 0, 3),
    _int_check("print_frequency", 1),
    _int_check("print_width", 9, 23),
    _check("halt_log_fn", lambda v: v is None or callable(v), "None or a callable"),
    _check(
        "jacobian",
        lambda v: v in ("auto", "batched", "loop"),
        "'auto', 'batched' (is_grads_batched autograd) or 'loop' (one backward per row)",
    ),
    _check("jacobian_chunk_size", lambda v: v is None or _int(1)(v), "None or a positive integer"),
    _int_check("seed", 0),
    _check(
        "bfgs_y",
        lambda v: v in ("auto", "penalty", "lagrangian"),
        "'auto', 'penalty' (GRANSO: change of the penalty gradient) or 'lagrangian' (change of "
        "the Lagrangian gradient with the steering multipliers)",
    ),
    _real_check("qp_tol", 0, 1e-6, lo_open=True),
    _check(
        "bounds",
        lambda v: v is None or isinstance(v, Mapping) or (isinstance(v, (tuple, list)) and len(v) == 2),
        "None, a pair (lb, ub) for every variable, or a dict {name: (lb, ub)} (see ncvx.bounds)",
    ),
]
