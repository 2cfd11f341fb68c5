"""Regenerate the option tables of docs/options.md from ``ncvx.Options``.

Names, defaults and valid ranges are read from the code (``dataclasses.fields`` and the
validators in ``ncvx/options.py``); the groups follow the comments in the class body; only the
one-line meanings and the PyGRANSO notes below are written by hand.

    python docs/_gen_options.py          # rewrite the generated part of docs/options.md
    python docs/_gen_options.py --check  # exit 1 if it is out of date (or an option is undocumented)
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import re
import sys
from pathlib import Path

from ncvx import options as options_module
from ncvx.options import Options

PAGE = Path(__file__).with_name("options.md")
BEGIN, END = "<!-- BEGIN GENERATED: docs/_gen_options.py -->", "<!-- END GENERATED -->"

#: one-line meaning of every option (ncvx's behaviour).
MEANING: dict[str, str] = {
    "x0": "starting point, any shape with n entries (cast to the working dtype/device). Default: a "
    "standard normal draw from a generator seeded with `seed`. With `ncvx.solve` it is the `x0` "
    "argument; `solve_module` uses the module's current parameters",
    "mu0": "initial penalty parameter μ (the weight of f in φ = μf + violation). Ignored, with μ = 1, "
    "when there are no constraints",
    "H0": "initial inverse-Hessian approximation, (n, n). Default: the identity. Full BFGS: dense "
    "(a sparse H0 is densified). L-BFGS: the base operator, dense or sparse",
    "checkH0": "check that a user `H0` is finite and symmetric positive definite (Cholesky). "
    "A failure raises `ProblemError`",
    "scaleH0": "full BFGS: multiply H by sᵀy/yᵀy at the first update. L-BFGS: scale the base "
    "operator by γ = sᵀy/yᵀy. Set False for warm restarts with `H0`",
    "bfgs_damping": "Powell damping threshold δ. If sᵀy < δ·sᵀHs, y is mixed with Hs so that "
    "sᵀy = δ·sᵀHs. 0 disables damping",
    "limited_mem_size": "0: full (dense n×n) BFGS. k > 0: L-BFGS keeping the newest k pairs",
    "limited_mem_fixed_scaling": "L-BFGS: compute γ once, at the first update, and keep it (False: "
    "refresh it at every update)",
    "limited_mem_warm_start": "L-BFGS restart state: a dict with `S`, `Y` (n×k), `rho` and "
    "optionally `gamma`, e.g. `soln.H_final`. The newest `limited_mem_size` pairs are kept",
    "opt_tol": "stationarity tolerance: code 0 when the stationarity measure is ≤ opt_tol at a "
    "point feasible to tolerance",
    "rel_tol": "code 1 when the relative change of φ over one step is ≤ rel_tol at a feasible "
    "point. The change is measured with one μ and is not tested in iterations where μ changed. "
    "0 means φ must not change at all",
    "step_tol": "line search stops when its bracket is narrower than step_tol·‖x‖/‖d‖",
    "viol_ineq_tol": "feasibility tolerance on max(ci, 0) (max-norm)",
    "viol_eq_tol": "feasibility tolerance on \\|ce\\| (max-norm)",
    "ngrad": "capacity of the gradient-sample cache used by the stationarity measure. None: "
    "min(100, 2n, n + 10), lowered so the cache stays within 256 MiB (a sample of a "
    "million-variable problem with two constraints is 32 MB); an explicit value is used as given",
    "evaldist": "radius: cached iterates within this (true Euclidean) distance of x contribute "
    "their gradients to the stationarity measure",
    "maxit": "maximum number of accepted iterations (code 4)",
    "maxclocktime": "wall-clock limit in seconds (code 5), checked at x0 and after each accepted "
    "iteration",
    "fvalquit": "code 2 when f ≤ fvalquit at a feasible point. The line search also stops early at "
    "such a point (it compares f, not φ)",
    "halt_on_quadprog_error": "accepted for compatibility; has no effect (also unused in PyGRANSO). "
    "QP failures move to the next fallback level",
    "halt_on_linesearch_bracket": "a line search that brackets but finds no weak-Wolfe point at a "
    "feasible iterate stops the run at once with code 6. False: try the fallback levels first",
    "min_fallback_level": "first direction tried each iteration: 0 steering with H, 1 steering "
    "with I, 2 −H∇φ, 3 −∇φ, 4 random. Raised to at least 2 without constraints",
    "max_fallback_level": "last direction allowed (4 enables random directions)",
    "max_random_attempts": "random directions tried per iteration at level 4",
    "steering_l1_model": "steering predicts the reduction of the l1 violation (False: max-norm)",
    "steering_ineq_margin": "with inequalities only: skip lowering μ when every ci < −margin. "
    "inf: never skip",
    "steering_maxit": "maximum μ reductions per iteration in steering",
    "steering_c_viol": "required fraction of the predicted violation reduction of the μ = 0 "
    "(feasibility) direction",
    "steering_c_mu": "factor applied to μ at each steering reduction",
    "regularize_threshold": "cap on the condition number of H used inside the QPs (steering and "
    "stationarity; eigenvalues clipped, full BFGS and L-BFGS; from H's low-rank form in "
    "O(n·p²) per change of H, see `ncvx.hessian.conditioning`). inf: off",
    "regularize_damped_threshold": "with `regularize_threshold = inf`: the condition cap applied "
    "automatically, for the rest of the run, once ≥ 80 % of the last 20 BFGS updates were damped "
    "(variables entering f and the constraints linearly, such as an SVM's slacks, make H grow "
    "without bound along them). inf: never",
    "regularize_max_eigenvalues": "regularize by lowering the largest eigenvalues instead of "
    "raising the smallest",
    "quadprog_info_msg": "accepted for compatibility; ignored (no QP notice box is printed)",
    "QPsolver": "QP backend: `'auto'` or one of `ncvx.qp.available_backends()` (`daqp`, `proxqp`, "
    "`piqp`, `clarabel`, `quadprog`, `osqp`, `gurobi`). An unknown or missing backend raises "
    "`ValueError` when the solve starts",
    "stat_l2_model": "stationarity measure in the 2-norm (False: max-norm)",
    "stat_step_window": "a certificate (code 0) after one of the last k accepted first-level steps "
    "was stretched to t ≥ 4 times its direction also needs t × the measure ≤ opt_tol (largest "
    "such t): H is then too small along the steps, and the H-weighted measure too optimistic "
    "(see docs/termination-codes.md). 0: off (PyGRANSO's test); ignored with "
    "`search_direction_rescaling`",
    "stat_skip_qp": "solve the termination QP only where its value can stop the run: at points "
    "feasible to tolerance whose cheap lower bound on the measure (one direction, no QP) does not "
    "already exceed `opt_tol`. Elsewhere the log shows that lower bound marked `:b` and the "
    "callback's `stat_vector` is None; the final point's measure is always the QP's. "
    "False: a QP at every iteration (PyGRANSO's log)",
    "wolfe1": "sufficient-decrease constant c1",
    "wolfe2": "weak curvature constant c2 (must be ≥ wolfe1)",
    "linesearch_nondescent_maxit": "evaluations allowed along a direction that is not a descent "
    "direction. 0: fall back at once",
    "linesearch_reattempts": "after the first iteration: how many times a line search that "
    "never brackets is retried with a smaller μ (the direction is recomputed)",
    "linesearch_reattempts_x0": "the same, in the first iteration",
    "linesearch_c_mu": "μ factor per retry (after the first iteration)",
    "linesearch_c_mu_x0": "μ factor per retry (first iteration)",
    "linesearch_maxit": "cap on evaluations per line search",
    "init_step_size": "first trial step of every line search",
    "is_backtrack_linesearch": "Armijo backtracking (halve t until sufficient decrease) instead of "
    "the weak-Wolfe search",
    "search_direction_rescaling": "normalize every direction to unit 2-norm before the line search",
    "disable_terminationcode_6": "at level 3 (−∇φ), accept the last point of a failed line search "
    "if it moved (t > 0) instead of stopping",
    "prescaling_threshold": "at x0, scale f and each constraint whose gradient norm exceeds the "
    "threshold by threshold/‖∇‖. Results are in scaled units; `soln.*_unscaled` and "
    "`Result.scalings` undo it. inf: off",
    "prescaling_info_msg": "log (INFO, logger `ncvx`) how much was rescaled, when print_level ≥ 1",
    "double_precision": "work in float64 (False: float32)",
    "torch_device": "device for all solver tensors. None: the device of x0, else CPU",
    "globalAD": "True: f, ci, ce by autograd. False: `combined_fn` returns "
    "`[f, f_grad, ci, ci_grad, ce, ce_grad]` (gradients as columns)",
    "print_level": "0 silent; ≥ 1 banner, table and summary (2 and 3 print the same as 1; "
    "diagnostics go to the `ncvx` logger)",
    "print_frequency": "print a row every k iterations",
    "print_width": "width of the penalty and objective columns",
    "print_ascii": "plain ASCII table rules",
    "print_use_orange": "ANSI orange for fallbacks and notices",
    "halt_log_fn": "PyGRANSO callback with 12 positional arguments, called at x0 and after every "
    "accepted step; a truthy return stops with code 3. Any callable",
    "debug_mode": "accepted for compatibility; has no effect",
    "jacobian": "`'auto'`: batched reverse-mode Jacobian (`is_grads_batched`), falling back to one "
    "backward pass per row if the function cannot be batched; `'batched'`; `'loop'`",
    "jacobian_chunk_size": "rows per batched backward pass. None: as many as fit 2²⁶ Jacobian "
    "entries",
    "seed": "seed for the default x0 and for the random directions of level 4",
    "qp_tol": "a QP answer is accepted when its scaled KKT residual is ≤ qp_tol. Otherwise it is "
    "retried and other backends are tried. Answers up to 1e-6 are still used but count as failures. "
    "Values above 1e-6 are rejected (`OptionsError`)",
    "linesearch_warm_step": "where a line search tries steps after its first: from the previous "
    "iteration's step (rounded onto the grid t0, t0/2, t0/4, ...), upwards (galloping, then "
    "bisection) while they have sufficient decrease, instead of halving down from t0 one "
    "evaluation at a time; after three iterations in a row with steps below t0 it starts at that "
    "guess. After a step without sufficient decrease, and from a step with it while searching "
    "upwards, the next step on the grid is the one where the quadratic through φ(0), the slope "
    "and that value stops decreasing sufficiently; a weak-Wolfe step where that quadratic "
    "predicts no sufficient decrease one grid step up is accepted without trying that step. "
    "Where sufficient decrease fails above some step and holds below it and the quadratic is "
    "right, the accepted step is the plain search's (the same iterates on A3, A3-n100, B2, svm-200 "
    "and svm-1000 of `benchmarks/`), with fewer evaluations when steps stay short (dictionary "
    "learning, n = 100: 2354 → 563). On constrained problems that stop also needs the cubic "
    "through both ends' values and slopes (the slope at the step is computed for the curvature "
    "test anyway) to predict no sufficient decrease one grid step up: a kink inside the step "
    "shows there (example A2: wrong stops 17 of 73 → 4 of 43). `False`: the plain search, as "
    "GRANSO/PyGRANSO",
    "bfgs_y": "what the BFGS update learns from. `'lagrangian'`: the change of the gradient of "
    "mu f + y_eᵀce + y_iᵀci with the steering QP's multipliers y held fixed (steered steps; other "
    "steps use the penalty gradient). `'penalty'`: the change of the penalty gradient, as "
    "GRANSO/PyGRANSO do; at constraints that are exactly active its l1 term jumps by ±∇c between "
    "iterates, which corrupts H on problems with many active linear constraints. `'auto'`: "
    "`'lagrangian'`; when the problem has no equalities, no `bounds`, full BFGS "
    "(`limited_mem_size=0`) and every inequality row's gradient changed along the first three "
    "steered steps (all constraints nonlinear inequalities), rows violated at both ends of a step "
    "weigh 1 instead of their multiplier from then on (`'lagrangian+violated'`: the penalty "
    "function's own curvature there; example A2). `Result.extra['bfgs_pair']` says which was used",
    "bounds": "simple bounds lb ≤ x ≤ ub kept by the solver itself (iterates never leave the box; "
    "no QP rows): `(lb, ub)` for every variable or `{name: (lb, ub)}`, each bound `None`, a number "
    "or a tensor broadcastable to the variable (module mode: parameter names such as "
    "`'fc.weight'`). See docs/bounds.md",
}

#: options that are not PyGRANSO's.
NCVX_ONLY = {
    "jacobian",
    "jacobian_chunk_size",
    "seed",
    "qp_tol",
    "bfgs_y",
    "linesearch_warm_step",
    "bounds",
    "stat_skip_qp",
    "stat_step_window",
    "regularize_damped_threshold",
}

#: how the default differs from PyGRANSO (code, or docstring ⚠).
PYGRANSO_NOTE: dict[str, str] = {
    "x0": "PyGRANSO: unseeded `randn`",
    "QPsolver": "PyGRANSO: `'osqp'`",
    "torch_device": "PyGRANSO: `cpu`",
    "viol_ineq_tol": "⚠ PyGRANSO docstring: 0 (its code: 1e-6)",
    "linesearch_reattempts": "⚠ PyGRANSO docstring: 10 (its code: 0)",
    "linesearch_reattempts_x0": "⚠ PyGRANSO docstring: 30 (its code: 10)",
    "regularize_threshold": "⚠ PyGRANSO docstring: −inf (its code: inf)",
    "ngrad": "same value; PyGRANSO stores the number",
    "halt_log_fn": "PyGRANSO accepts plain functions and lambdas only",
    "bfgs_damping": "0 crashes PyGRANSO",
    "prescaling_threshold": "finite values crash PyGRANSO",
    "print_level": "PyGRANSO prints extra lines at 2 and 3",
}


def _groups() -> list[tuple[str, list[str]]]:
    """Fields grouped by the ``# comment`` lines of the class body, in order."""
    names = set(Options.names())
    groups: list[tuple[str, list[str]]] = []
    for line in inspect.getsource(Options).splitlines():
        comment = re.match(r"\s{4}# (.+)$", line)
        field = re.match(r"\s{4}(\w+): ", line)
        if comment and not comment.group(1).startswith("-"):
            groups.append((comment.group(1), []))
        elif field and field.group(1) in names:
            groups[-1][1].append(field.group(1))
    return groups


def _ranges() -> dict[str, str]:
    """Allowed values, read from the validators' closures in ``ncvx/options.py``."""
    out: dict[str, str] = {}
    for check in options_module._CHECKS:
        cells = dict(zip(check.__code__.co_freevars, (c.cell_contents for c in check.__closure__)))
        text = cells["expected"]
        text = re.sub(r"^a real number in ", "", text)
        text = re.sub(r"^an integer in \[(\S+), inf\]$", r"integer ≥ \1", text)
        text = re.sub(r"^an integer in ", "integer in ", text)
        out[cells["name"]] = text.replace("inf", "∞")
    out["wolfe2"] += ", ≥ wolfe1"
    out["max_fallback_level"] += ", ≥ min_fallback_level"
    return out


def _default(f: dataclasses.Field) -> str:
    value = f.default
    if value is None:
        return "None"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, str):
        return f"`{value!r}`"
    return f"`{value!r}`" if not isinstance(value, bool | int | float) else f"`{value}`"


def tables() -> str:
    fields = {f.name: f for f in dataclasses.fields(Options)}
    ranges = _ranges()
    missing = [n for n in Options.names() if n not in MEANING]
    if missing:
        raise SystemExit(f"options without a description in docs/_gen_options.py: {missing}")
    parts = []
    for title, names in _groups():
        heading = title if title.startswith("ncvx") else title[0].upper() + title[1:]
        parts.append(f"### {heading}\n")
        parts.append("| option | default | valid values | meaning | vs PyGRANSO |")
        parts.append("|---|---|---|---|---|")
        for name in names:
            note = "**ncvx addition**" if name in NCVX_ONLY else PYGRANSO_NOTE.get(name, "")
            valid = ranges.get(name, "")
            parts.append(
                f"| `{name}` | {_default(fields[name])} | {valid} | {MEANING[name]} | {note} |"
            )
        parts.append("")
    return "\n".join(parts)


def main() -> int:
    page = PAGE.read_text()
    head, rest = page.split(BEGIN)
    _, tail = rest.split(END)
    new = f"{head}{BEGIN}\n\n{tables()}\n{END}{tail}"
    if "--check" in sys.argv:
        if new != page:
            print("docs/options.md is out of date: run python docs/_gen_options.py")
            return 1
        return 0
    PAGE.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
