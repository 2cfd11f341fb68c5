"""PyGRANSO-compatible front end: ``pygranso(var_spec, combined_fn, user_opts)``.

Existing PyGRANSO code runs after changing only the import::

    from ncvx import pygranso, pygransoStruct

The returned ``soln`` has PyGRANSO's fields (``final``, ``best``, ``most_feasible``,
``H_final``, ``termination_code``, ...), with points as ``(n, 1)`` column tensors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ._api import run_solver
from .callbacks import IterationRecord
from .errors import ProblemError
from .options import Options
from .problem.binding import Binding, DictBinding, ModuleBinding
from .problem.variables import VariableLayout
from .result import Iterate, Result


class pygransoStruct:
    """An attribute bag: options, constraint groups, the variables ``X`` and ``soln``.

    Attributes keep insertion order, which fixes the order of constraints.
    """

    def __init__(self, **fields: Any) -> None:
        for k, v in fields.items():
            setattr(self, k, v)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={_short(v)}" for k, v in vars(self).items())
        return f"pygransoStruct({inner})"


def _short(v: Any) -> str:
    if isinstance(v, torch.Tensor):
        return f"tensor{tuple(v.shape)}" if v.numel() > 3 else repr(v.detach().reshape(-1).tolist())
    return repr(v)


def pygranso(
    var_spec: Mapping[str, Any] | nn.Module,
    combined_fn: Any,
    user_opts: Any = None,
) -> pygransoStruct:
    """Solve ``min f s.t. ci <= 0, ce == 0`` the way PyGRANSO's ``pygranso`` does.

    Args:
        var_spec: ``{"name": shape}`` (variables passed to ``combined_fn`` as attributes of a
            struct ``X``) or an ``nn.Module`` (its parameters are the variables and the module
            itself is passed).
        combined_fn: ``combined_fn(X) -> [f, ci, ce]`` (``ci``/``ce`` structs of tensors or
            ``None``), or with ``globalAD=False`` ``[f, f_grad, ci, ci_grad, ce, ce_grad]``.
        user_opts: a ``pygransoStruct`` (or dict) of PyGRANSO option names, or ``None``.

    Returns:
        ``soln`` with PyGRANSO's fields; see ``docs/migrating-from-pygranso.md``.
    """
    if not callable(combined_fn):
        raise ProblemError(f"combined_fn must be callable, got {type(combined_fn).__name__}")
    opts = Options.from_pygranso(user_opts)
    binding: Binding
    if isinstance(var_spec, nn.Module):
        binding = ModuleBinding(var_spec)
    elif isinstance(var_spec, Mapping):
        layout = VariableLayout.from_shapes(var_spec)
        binding = DictBinding(layout, lambda named: pygransoStruct(**named))
    else:
        raise ProblemError(
            "var_spec must be a dict of variable shapes (e.g. {'x': [2, 1]}) or an nn.Module, "
            f"got {type(var_spec).__name__}"
        )
    observers = []
    if opts.halt_log_fn is not None:
        observers.append(_HaltLogAdapter(opts.halt_log_fn))
    result = run_solver(combined_fn, binding, opts.x0, opts, observers)
    if isinstance(binding, ModuleBinding):
        binding.bind(result.final.x, requires_grad=False)
        binding.restore_flags()
    return to_soln(result)


class _HaltLogAdapter:
    """Calls a PyGRANSO ``halt_log_fn`` with its twelve positional arguments."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def __call__(self, r: IterationRecord) -> bool:
        parts = penalty_parts(r)
        H_reg = r.extra.get("H_regularized")
        if callable(H_reg):
            H_reg = H_reg()
        return bool(
            self.fn(
                r.iteration,
                r.point.x.reshape(-1, 1),
                parts,
                r.direction.reshape(-1, 1),
                r.hessian.state,
                H_reg,
                r.ls_evals,
                r.alpha,
                r.n_samples,
                None if r.stat_vector is None else r.stat_vector.reshape(-1, 1),
                r.stat_value,
                r.fallback_level,
            )
        )


def penalty_parts(r: IterationRecord) -> pygransoStruct:
    """PyGRANSO's ``penaltyfn_parts`` snapshot (gradients as columns)."""
    p = r.point
    ev = p.ev
    ev.ensure_gradients()
    assert ev.grad_f is not None and ev.J_i is not None and ev.J_e is not None
    col = lambda t: t.reshape(-1, 1)  # noqa: E731
    vi_grad = (ev.ci >= 0).to(ev.J_i.dtype) @ ev.J_i
    ve_grad = torch.where(ev.ce >= 0, 1.0, -1.0).to(ev.J_e.dtype) @ ev.J_e
    return pygransoStruct(
        f=p.f,
        f_grad=col(ev.grad_f),
        ci=col(ev.ci),
        ci_grad=ev.J_i.T,
        ce=col(ev.ce),
        ce_grad=ev.J_e.T,
        tvi=p.viol.tvi,
        tve=p.viol.tve,
        tv=p.viol.tv,
        tvi_l1=float(ev.ci.clamp(min=0).sum()),
        tvi_l1_grad=col(vi_grad),
        tve_l1=float(ev.ce.abs().sum()),
        tve_l1_grad=col(ve_grad),
        tv_l1=p.viol.tv_l1,
        tv_l1_grad=col(p.grad_viol),
        p=p.phi,
        p_grad=col(p.grad_phi),
        mu=p.mu,
        x=col(p.x),
        feasible_to_tol=p.feasible,
        stat_value=r.stat_value,
    )


def _iterate_struct(it: Iterate, constrained: bool, scalings: dict | None = None) -> pygransoStruct:
    f, ci, ce = it.f, it.ci, it.ce
    if scalings is not None:
        f = f / scalings["f"]
        ci = ci / scalings["ci"]
        ce = ce / scalings["ce"]
    s = pygransoStruct(x=it.x.reshape(-1, 1), f=f)
    if constrained:
        vi = ci.clamp(min=0)
        ve = ce.abs()
        tvi = float(vi.max()) if vi.numel() else 0.0
        tve = float(ve.max()) if ve.numel() else 0.0
        s.ci = ci.reshape(-1, 1)
        s.ce = ce.reshape(-1, 1)
        s.tvi, s.tve, s.tv = (
            (it.tvi, it.tve, it.tv) if scalings is None else (tvi, tve, max(tvi, tve))
        )
        s.feasible_to_tol = it.feasible
        s.mu = it.mu
    return s


def to_soln(result: Result) -> pygransoStruct:
    """Convert a native :class:`Result` into PyGRANSO's ``soln`` struct."""
    c = result.constrained
    soln = pygransoStruct()
    soln.final = _iterate_struct(result.final, c)
    if result.best is not None:
        soln.best = _iterate_struct(result.best, c)
    if c:
        soln.most_feasible = _iterate_struct(result.most_feasible, c)
    soln.H_final = result.hessian_state
    soln.stat_value = result.stat_value
    soln.iters = result.iters
    b = result.bfgs
    soln.BFGS_updates = pygransoStruct(
        requests=b.requests,
        updates=b.updates,
        damped_requests=b.damped_requests,
        damped_updates=b.damped_updates,
        scaling_skips=b.scaling_skips,
        sty_fails=b.sty_fails,
        infnan_fails=b.infnan_fails,
    )
    soln.fn_evals = result.fn_evals
    soln.termination_code = int(result.status)
    soln.status = result.status
    soln.quadprog_failure_rate = result.qp_failure_rate
    if result.mu_lowest is not None:
        soln.mu_lowest = result.mu_lowest
    soln.error = result.error
    soln.seconds = result.seconds
    if result.scalings is not None:
        soln.scalings = result.scalings
        soln.final_unscaled = _iterate_struct(result.final, c, result.scalings)
        if result.best is not None:
            soln.best_unscaled = _iterate_struct(result.best, c, result.scalings)
        if c:
            soln.most_feasible_unscaled = _iterate_struct(result.most_feasible, c, result.scalings)
    soln.result = result
    return soln
