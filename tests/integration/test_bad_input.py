"""Bad input is rejected before the first iteration with a clear error (SPEC Part A).

Option errors raise ``ncvx.OptionsError``, problem-definition errors ``ncvx.ProblemError``; both
are ``ValueError`` subclasses whose message names the culprit. Each test also checks that the
run never got as far as iteration 0 (no ``halt_log_fn`` call).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import ncvx
from ncvx import OptionsError, ProblemError, pygranso, pygransoStruct

D = torch.float64
N = 3


# ---------------------------------------------------------------------------------- helpers


class Tracker:
    """Counts calls of the user's function and of halt_log_fn."""

    def __init__(self) -> None:
        self.fn_calls = 0
        self.log_calls = 0

    def log(self, *_args) -> bool:
        self.log_calls += 1
        return False


def opts(tracker: Tracker | None = None, **kw) -> pygransoStruct:
    o = pygransoStruct(print_level=0)
    if tracker is not None:
        o.halt_log_fn = tracker.log
    for k, v in kw.items():
        setattr(o, k, v)
    return o


def x0(n: int = N) -> torch.Tensor:
    return torch.linspace(0.5, 1.5, n, dtype=D).reshape(n, 1)


def good_fn(tracker: Tracker):
    def fn(X):
        tracker.fn_calls += 1
        x = X.x
        ci = pygransoStruct(c=x[0] - 2)
        return ((x - 1) ** 2).sum(), ci, None

    return fn


def assert_rejected(exc_type, match: str, var_spec, make_fn, **options) -> Tracker:
    t = Tracker()
    with pytest.raises(exc_type, match=match) as info:
        pygranso(var_spec, make_fn(t), opts(t, **options))
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, ncvx.NcvxError)
    assert t.log_calls == 0, "the error must come before iteration 0"
    return t


def test_error_classes_are_value_errors() -> None:
    assert issubclass(OptionsError, ValueError) and issubclass(ProblemError, ValueError)


# ---------------------------------------------------------------------------------- options


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        ("maxiter", "maxit"),
        ("opttol", "opt_tol"),
        ("viol_ineq_toll", "viol_ineq_tol"),
        ("print_levl", "print_level"),
        ("limited_mem_sise", "limited_mem_size"),
    ],
)
def test_unknown_option_suggests_closest_name(name: str, suggestion: str) -> None:
    t = assert_rejected(
        OptionsError, rf"{name}.*did you mean '{suggestion}'", {"x": [N]}, good_fn, **{name: 3}
    )
    assert t.fn_calls == 0


def test_unknown_option_without_close_match_is_still_rejected() -> None:
    assert_rejected(OptionsError, "zzz_not_an_option", {"x": [N]}, good_fn, zzz_not_an_option=1)


def test_unknown_option_native_api_and_dict_options() -> None:
    with pytest.raises(OptionsError, match="did you mean 'maxit'"):
        ncvx.solve(lambda x: ((x**2).sum(), None, None), torch.ones(2, dtype=D), maxiter=3)
    with pytest.raises(OptionsError, match="did you mean 'maxit'"):
        pygranso({"x": [2]}, lambda X: ((X.x**2).sum(), None, None), {"maxiter": 3})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("maxit", -1),
        ("maxit", 2.5),
        ("maxit", "10"),
        ("opt_tol", -1.0),
        ("opt_tol", float("nan")),
        ("print_level", 5),
        ("print_width", 30),
        ("wolfe1", 0.7),
        ("wolfe2", 1.0),
        ("mu0", -1.0),
        ("mu0", True),
        ("bfgs_damping", 2.0),
        ("step_tol", 0.0),
        ("viol_eq_tol", float("nan")),
        ("evaldist", -1.0),
        ("init_step_size", float("inf")),
        ("maxclocktime", 0),
        ("fvalquit", float("nan")),
        ("ngrad", 0),
        ("limited_mem_size", -1),
        ("max_fallback_level", 5),
        ("min_fallback_level", -1),
        ("steering_c_mu", 1.0),
        ("steering_c_viol", 0.0),
        ("linesearch_c_mu", 1.5),
        ("checkH0", "yes"),
        ("globalAD", 2),
        ("QPsolver", ""),
        ("torch_device", 3),
        ("torch_device", "gpu"),
        ("halt_log_fn", 5),
        ("H0", [[1.0, 0.0], [0.0, 1.0]]),
        ("x0", [0.0, 0.0, 0.0]),
        ("limited_mem_warm_start", "not a dict"),
        ("limited_mem_warm_start", {"S": torch.zeros(N, 1, dtype=D)}),
    ],
)
def test_option_of_wrong_type_or_range(name: str, value) -> None:
    t = Tracker()
    with pytest.raises(OptionsError, match=f"option {name}=") as info:
        pygranso({"x": [N]}, good_fn(t), opts(**{name: value}))
    assert isinstance(info.value, ValueError)
    assert t.fn_calls == 0


def test_inconsistent_option_pairs() -> None:
    assert_rejected(OptionsError, "wolfe2", {"x": [N]}, good_fn, wolfe1=0.4, wolfe2=0.3)
    assert_rejected(
        OptionsError,
        "max_fallback_level",
        {"x": [N]},
        good_fn,
        min_fallback_level=3,
        max_fallback_level=1,
    )


def test_native_api_validates_overrides() -> None:
    with pytest.raises(OptionsError, match="opt_tol"):
        ncvx.solve(lambda x: ((x**2).sum(), None, None), torch.ones(2, dtype=D), opt_tol=-1.0)
    with pytest.raises(OptionsError, match="print_level"):
        ncvx.Options(print_level=9)


def test_unknown_qp_solver_name() -> None:
    assert_rejected(OptionsError, "QPsolver", {"x": [N]}, good_fn, QPsolver="no_such_solver")


def test_user_opts_of_wrong_type() -> None:
    with pytest.raises(OptionsError, match=r"user_opts|options"):
        pygranso({"x": [N]}, good_fn(Tracker()), 5)


@pytest.mark.parametrize(
    "name", ["maxit", "steering_maxit", "ngrad", "jacobian_chunk_size", "seed"]
)
def test_infinite_integer_option_is_rejected_or_honoured(name: str) -> None:
    def fn(X):  # active constraint from x0 = 0: steering reduces mu in the first iteration
        x = X.x
        ci = pygransoStruct(c=x[0] + x[1] - 1)
        return ((x - torch.tensor([1.0, 2.0], dtype=D)) ** 2).sum(), ci, None

    try:
        soln = pygranso({"x": [2]}, fn, opts(x0=torch.zeros(2, 1, dtype=D), **{name: float("inf")}))
    except OptionsError as exc:
        assert name in str(exc)
        return
    assert soln.termination_code == 0


# ---------------------------------------------------------------------------------- x0


def test_x0_of_wrong_size() -> None:
    t = assert_rejected(
        ProblemError, r"x0 has 4 entries.*need 3", {"x": [N]}, good_fn, x0=torch.zeros(4, 1)
    )
    assert t.fn_calls == 0


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_x0_not_finite(bad: float) -> None:
    x = x0()
    x[1, 0] = bad
    t = assert_rejected(ProblemError, "x0 contains NaN or Inf", {"x": [N]}, good_fn, x0=x)
    assert t.fn_calls == 0


def test_x0_complex() -> None:
    assert_rejected(
        ProblemError,
        "x0 must be real",
        {"x": [N]},
        good_fn,
        x0=torch.zeros(N, 1, dtype=torch.cdouble),
    )


def test_native_x0_of_wrong_type() -> None:
    with pytest.raises(ProblemError, match="x0 must be a tensor or a dict"):
        ncvx.solve(lambda x: ((x**2).sum(), None, None), [1.0, 2.0])


# ---------------------------------------------------------------------------------- combined_fn output


@pytest.mark.parametrize("k", [1, 2, 4, 6])
def test_combined_fn_returning_wrong_number_of_items(k: int) -> None:
    def make(t):
        def fn(X):
            items = [(X.x**2).sum(), None, None, None, None, None]
            return items[:k]

        return fn

    assert_rejected(
        ProblemError, rf"three items \[f, ci, ce\].*{k} items", {"x": [N]}, make, x0=x0()
    )


def test_combined_fn_returning_a_bare_tensor() -> None:
    assert_rejected(
        ProblemError, "three items", {"x": [N]}, lambda t: lambda X: (X.x**2).sum(), x0=x0()
    )


def test_combined_fn_not_callable() -> None:
    with pytest.raises(ProblemError, match="combined_fn must be callable"):
        pygranso({"x": [N]}, "not a function", opts())


def test_objective_not_scalar() -> None:
    assert_rejected(
        ProblemError,
        r"objective f must be a scalar.*shape \(3,\)",
        {"x": [N]},
        lambda t: lambda X: (X.x.reshape(-1) ** 2, None, None),
        x0=x0(),
    )


def test_objective_python_float() -> None:
    def make(t):
        def fn(X):
            return float(X.x.detach().sum()), None, None

        return fn

    assert_rejected(
        ProblemError,
        "objective f must be a scalar torch.Tensor, got float",
        {"x": [N]},
        make,
        x0=x0(),
    )


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_objective_not_finite_at_x0(bad: float) -> None:
    assert_rejected(
        ProblemError,
        r"non-finite values at the starting point x0: f = (nan|inf)",
        {"x": [N]},
        lambda t: lambda X: ((X.x**2).sum() + bad, None, None),
        x0=x0(),
    )


def test_inequality_not_finite_at_x0() -> None:
    def make(t):
        def fn(X):
            x = X.x
            ci = pygransoStruct(ok=x[0] - 5, bad=torch.log(x[1] - x[1]))  # log(0) = -inf
            return (x**2).sum(), ci, None

        return fn

    assert_rejected(ProblemError, r"non-finite .*ci entries \[1\]", {"x": [N]}, make, x0=x0())


def test_equality_not_finite_at_x0() -> None:
    def make(t):
        def fn(X):
            x = X.x
            ce = pygransoStruct(c=x[0] / (x[1] - x[1]))  # 0.5 / 0 = inf
            return (x**2).sum(), None, ce

        return fn

    assert_rejected(ProblemError, r"non-finite .*ce entries \[0\]", {"x": [N]}, make, x0=x0())


def test_objective_gradient_not_finite_at_x0() -> None:
    def make(t):
        return lambda X: (torch.sqrt(X.x).sum(), None, None)

    assert_rejected(
        ProblemError, "gradient of f is not finite", {"x": [N]}, make, x0=torch.zeros(N, 1, dtype=D)
    )


def test_constraint_gradient_not_finite_at_x0_is_blamed_on_the_constraint() -> None:
    def make(t):
        def fn(X):
            x = X.x
            ci = pygransoStruct(c=torch.sqrt(x[0]) - 1)  # d/dx sqrt at 0 = inf
            return (x**2).sum(), ci, None

        return fn

    assert_rejected(
        ProblemError,
        "gradient of ci is not finite",
        {"x": [N]},
        make,
        x0=torch.zeros(N, 1, dtype=D),
    )


@pytest.mark.parametrize("group", ["ci", "ce"])
def test_constraint_not_connected_to_variables(group: str) -> None:
    def make(t):
        def fn(X):
            x = X.x
            # built from python floats: no autograd graph back to x
            c = torch.tensor([float(x[0].detach()) - 1.0, 2.0 * float(x[1].detach())], dtype=D)
            s = pygransoStruct(c=c)
            return (x**2).sum(), *((s, None) if group == "ci" else (None, s))

        return fn

    assert_rejected(
        ProblemError,
        rf"constraint {group}\.c is not connected to the variables",
        {"x": [N]},
        make,
        x0=x0(),
    )


def test_constraint_python_float() -> None:
    def make(t):
        return lambda X: ((X.x**2).sum(), pygransoStruct(c=1.0), None)

    assert_rejected(
        ProblemError, "constraint ci.c must be a torch.Tensor, got float", {"x": [N]}, make, x0=x0()
    )


def test_constraint_container_of_wrong_type() -> None:
    def make(t):
        return lambda X: ((X.x**2).sum(), None, 3)

    assert_rejected(ProblemError, "ce must be None, a tensor", {"x": [N]}, make, x0=x0())


def test_combined_fn_raising_at_x0() -> None:
    def make(t):
        def fn(X):
            raise KeyError("missing_data_key")

        return fn

    t = Tracker()
    with pytest.raises(
        ProblemError, match=r"combined_fn raised KeyError at the starting point.*missing_data_key"
    ) as info:
        pygranso({"x": [N]}, make(t), opts(t, x0=x0()))
    assert isinstance(info.value.__cause__, KeyError)
    assert t.log_calls == 0


# ---------------------------------------------------------------------------------- var_spec


@pytest.mark.parametrize("spec", [[N], [{"x": [N]}, None], ("x", N), "x", 3, None])
def test_var_spec_neither_dict_nor_module(spec) -> None:
    assert_rejected(ProblemError, "var_spec must be a dict of variable shapes", spec, good_fn)


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({"x": [0]}, "shape of variable 'x' must have positive integer dimensions"),
        ({"x": [-1, 2]}, "shape of variable 'x' must have positive integer dimensions"),
        ({"x": [2.5]}, "shape of variable 'x' must have positive integer dimensions"),
        ({"x": None}, "shape of variable 'x' must be a list of ints"),
        ({"x": [[2]]}, "shape of variable 'x' must be a list of ints"),
        ({}, "var_spec is empty"),
        ({"1x": [2]}, "variable name '1x' must be a valid Python identifier"),
        ({"x": [2], 7: [1]}, "variable name 7"),
    ],
)
def test_bad_shapes_in_var_spec(spec, match: str) -> None:
    assert_rejected(ProblemError, match, spec, good_fn)


@pytest.mark.parametrize("shape", [["a"], "ab"])
def test_non_numeric_shape_in_var_spec(shape) -> None:
    assert_rejected(ProblemError, "shape of variable 'x'", {"x": shape}, good_fn)


def test_module_without_parameters() -> None:
    def make(t):
        return lambda m: (torch.zeros((), dtype=D), None, None)

    assert_rejected(ProblemError, "parameters|empty|no variables", nn.ReLU(), make)


def test_solve_module_with_non_module() -> None:
    with pytest.raises(ProblemError, match=r"nn\.Module"):
        ncvx.solve_module({"x": torch.ones(2)}, lambda m: (m, None, None), print_level=0)


# ---------------------------------------------------------------------------------- explicit gradients


def _explicit(f_grad_shape=(N, 1), ci_grad_layout="columns", ci_grad_rows=N):
    """Explicit-gradient combined_fn: f = |x|^2, ci = [x0 - 1, x1 + x2] (m_i = 2)."""

    def make(t):
        def fn(X):
            x = X.x.reshape(-1)
            f = (x**2).sum()
            g = (2 * x).reshape(N, 1)
            if f_grad_shape != (N, 1):
                g = torch.zeros(f_grad_shape, dtype=D)
            ci = torch.stack([x[0] - 1, x[1] + x[2]]).reshape(2, 1)
            J = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]], dtype=D)  # (n, m_i)
            if ci_grad_layout == "rows":
                J = J.T.contiguous()  # (m_i, n): the transposed layout
            J = J[:ci_grad_rows]
            return f, g, ci, J, None, None

        return fn

    return make


def test_explicit_gradients_correct_shapes_work() -> None:
    soln = pygranso({"x": [N]}, _explicit()(Tracker()), opts(x0=x0(), globalAD=False))
    assert soln.termination_code == 0


def test_explicit_f_grad_of_wrong_size() -> None:
    assert_rejected(
        ProblemError,
        r"f_grad has shape \(4, 1\); expected \(3, 1\)",
        {"x": [N]},
        _explicit(f_grad_shape=(N + 1, 1)),
        x0=x0(),
        globalAD=False,
    )


def test_explicit_ci_grad_of_wrong_size() -> None:
    assert_rejected(
        ProblemError,
        r"ci_grad has shape \(2, 2\); expected \(3, 2\)",
        {"x": [N]},
        _explicit(ci_grad_rows=2),
        x0=x0(),
        globalAD=False,
    )


def test_explicit_missing_f_grad() -> None:
    def make(t):
        return lambda X: ((X.x**2).sum(), None, None, None, None, None)

    assert_rejected(
        ProblemError, "f_grad must be a tensor", {"x": [N]}, make, x0=x0(), globalAD=False
    )


def test_explicit_mode_wrong_number_of_items() -> None:
    def make(t):
        return lambda X: ((X.x**2).sum(), None, None)

    assert_rejected(ProblemError, "six items", {"x": [N]}, make, x0=x0(), globalAD=False)


def test_explicit_ci_grad_transposed_is_rejected() -> None:
    assert_rejected(
        ProblemError,
        r"ci_grad has shape \(2, 3\)",
        {"x": [N]},
        _explicit(ci_grad_layout="rows"),
        x0=x0(),
        globalAD=False,
    )


# ---------------------------------------------------------------------------------- H0, warm start


def _smooth(t):
    def fn(X):
        t.fn_calls += 1
        return ((X.x - 1) ** 2).sum(), None, None

    return fn


@pytest.mark.parametrize(
    "H0",
    [
        -torch.eye(N, dtype=D),
        torch.zeros(N, N, dtype=D),
        torch.tensor([[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=D),
        torch.full((N, N), float("nan"), dtype=D),
    ],
    ids=["negative", "zero", "indefinite", "nan"],
)
def test_H0_not_positive_definite(H0: torch.Tensor) -> None:
    assert_rejected(
        ProblemError, "H0 is not symmetric positive definite", {"x": [N]}, _smooth, x0=x0(), H0=H0
    )


def test_H0_of_wrong_shape() -> None:
    assert_rejected(
        ProblemError,
        r"H0 must have shape \(3, 3\)",
        {"x": [N]},
        _smooth,
        x0=x0(),
        H0=torch.eye(N + 1, dtype=D),
    )


def test_H0_not_pd_accepted_with_checkH0_false() -> None:
    # the documented escape hatch: the PD test is skipped and the run goes ahead
    t = Tracker()
    soln = pygranso(
        {"x": [N]}, _smooth(t), opts(t, x0=x0(), H0=-torch.eye(N, dtype=D), checkH0=False)
    )
    assert t.log_calls >= 1
    assert soln.termination_code != 13


@pytest.mark.parametrize(
    ("state", "match"),
    [
        (
            {
                "S": torch.zeros(N + 1, 2, dtype=D),
                "Y": torch.zeros(N + 1, 2, dtype=D),
                "rho": torch.ones(1, 2, dtype=D),
            },
            r"S and Y must both be \(3, k\)",
        ),
        (
            {
                "S": torch.zeros(N, 2, dtype=D),
                "Y": torch.zeros(N, 3, dtype=D),
                "rho": torch.ones(1, 2, dtype=D),
            },
            r"S and Y must both be \(3, k\)",
        ),
    ],
    ids=["wrong_rows", "column_mismatch"],
)
def test_limited_mem_warm_start_of_wrong_shape(state, match: str) -> None:
    assert_rejected(
        ProblemError,
        match,
        {"x": [N]},
        _smooth,
        x0=x0(),
        limited_mem_size=4,
        limited_mem_warm_start=state,
    )


def test_limited_mem_warm_start_one_dimensional() -> None:
    state = {
        "S": torch.ones(N, dtype=D),
        "Y": torch.ones(N, dtype=D),
        "rho": torch.ones(1, dtype=D),
    }
    assert_rejected(
        ProblemError,
        "limited_mem_warm_start",
        {"x": [N]},
        _smooth,
        x0=x0(),
        limited_mem_size=4,
        limited_mem_warm_start=state,
    )


def test_limited_mem_warm_start_not_finite() -> None:
    state = {
        "S": torch.full((N, 1), float("nan"), dtype=D),
        "Y": torch.ones(N, 1, dtype=D),
        "rho": torch.ones(1, 1, dtype=D),
    }
    assert_rejected(
        ProblemError,
        "limited_mem_warm_start",
        {"x": [N]},
        _smooth,
        x0=x0(),
        limited_mem_size=4,
        limited_mem_warm_start=state,
    )
