"""Unit tests of ``ncvx.options.Options``: defaults, PyGRANSO conversion, validation."""

from __future__ import annotations

import math
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
import torch

from ncvx import Options, OptionsError, pygransoStruct

INF = math.inf

#: SPEC Part B §2: PyGRANSO's *code* defaults (not its docstrings').
SPEC_DEFAULTS = {
    # 2.1
    "mu0": 1,
    "checkH0": True,
    "scaleH0": True,
    "bfgs_damping": 1e-4,
    "limited_mem_size": 0,
    "limited_mem_fixed_scaling": True,
    "limited_mem_warm_start": None,
    # 2.2
    "opt_tol": 1e-8,
    "rel_tol": 0,
    "step_tol": 1e-12,
    "viol_ineq_tol": 1e-6,
    "viol_eq_tol": 1e-6,
    "evaldist": 1e-4,
    "maxit": 1000,
    "maxclocktime": INF,
    "fvalquit": -INF,
    "halt_on_quadprog_error": False,
    "halt_on_linesearch_bracket": True,
    # 2.3
    "min_fallback_level": 0,
    "max_fallback_level": 3,
    "max_random_attempts": 5,
    "steering_l1_model": True,
    "steering_ineq_margin": 1e-6,
    "steering_maxit": 10,
    "steering_c_viol": 0.1,
    "steering_c_mu": 0.9,
    "regularize_threshold": INF,
    "regularize_max_eigenvalues": False,
    "quadprog_info_msg": True,
    "stat_l2_model": True,
    # 2.4
    "wolfe1": 1e-4,
    "wolfe2": 0.5,
    "linesearch_nondescent_maxit": 0,
    "linesearch_reattempts": 0,
    "linesearch_reattempts_x0": 10,
    "linesearch_c_mu": 0.5,
    "linesearch_c_mu_x0": 0.5,
    "linesearch_maxit": INF,
    "init_step_size": 1,
    "is_backtrack_linesearch": False,
    "search_direction_rescaling": False,
    "disable_terminationcode_6": False,
    # 2.5
    "prescaling_threshold": INF,
    "prescaling_info_msg": True,
    "double_precision": True,
    "globalAD": True,
    "print_level": 1,
    "print_frequency": 1,
    "print_width": 14,
    "print_ascii": False,
    "print_use_orange": True,
    "halt_log_fn": None,
    "debug_mode": False,
}

#: Options whose ncvx default deliberately differs in form from PyGRANSO's (SPEC Part A).
NCVX_FORM = {
    "x0": None,  # seeded randn(n) drawn at solve time
    "H0": None,  # identity built at solve time
    "ngrad": None,  # resolved to min(100, 2n, n + 10)
    "torch_device": None,  # device of x0, else CPU
    "QPsolver": "auto",  # best available backend (osqp is one of them)
    "jacobian": "auto",
    "jacobian_chunk_size": None,
    "seed": 0,
    "qp_tol": 1e-9,
    "bfgs_y": "auto",
    "linesearch_warm_step": True,  # same accepted steps where decrease holds below a threshold
    "bounds": None,
    "stat_skip_qp": True,  # the termination QP only where its value can stop the run
    "stat_step_window": 5,  # no certificate while the line search stretches the steps
    "regularize_damped_threshold": 1e6,  # a condition cap once BFGS updates are mostly damped
}


def test_defaults_match_spec():
    o = Options()
    for name, value in SPEC_DEFAULTS.items():
        assert getattr(o, name) == value, name
    for name, value in NCVX_FORM.items():
        assert getattr(o, name) == value, name
    assert set(Options.names()) == set(SPEC_DEFAULTS) | set(NCVX_FORM)


@pytest.mark.parametrize(
    "n, expected", [(1, 2), (5, 10), (10, 20), (50, 60), (95, 100), (1000, 100)]
)
def test_resolved_ngrad(n, expected):
    assert Options().resolved_ngrad(n) == expected
    assert Options(ngrad=7).resolved_ngrad(n) == 7


def test_dtype():
    assert Options().dtype == torch.float64
    assert Options(double_precision=False).dtype == torch.float32


def _halt(*args):
    return False


#: A valid, non-default value for every option.
NON_DEFAULTS = {
    "x0": torch.arange(3.0).reshape(3, 1),
    "mu0": 0.25,
    "H0": 2 * torch.eye(3),
    "checkH0": False,
    "scaleH0": False,
    "bfgs_damping": 0.0,
    "limited_mem_size": 7,
    "limited_mem_fixed_scaling": False,
    "limited_mem_warm_start": {"S": torch.ones(3, 1), "Y": torch.ones(3, 1), "rho": [[1.0]]},
    "opt_tol": 1e-6,
    "rel_tol": 1e-9,
    "step_tol": 1e-10,
    "viol_ineq_tol": 0.0,
    "viol_eq_tol": 1e-3,
    "ngrad": 4,
    "evaldist": 1e-2,
    "maxit": 17,
    "maxclocktime": 30.0,
    "fvalquit": -5.0,
    "halt_on_quadprog_error": True,
    "halt_on_linesearch_bracket": False,
    "min_fallback_level": 1,
    "max_fallback_level": 4,
    "max_random_attempts": 2,
    "steering_l1_model": False,
    "steering_ineq_margin": INF,
    "steering_maxit": 3,
    "steering_c_viol": 0.3,
    "steering_c_mu": 0.5,
    "regularize_threshold": 1e8,
    "regularize_max_eigenvalues": True,
    "quadprog_info_msg": False,
    "QPsolver": "osqp",
    "stat_l2_model": False,
    "wolfe1": 0.01,
    "wolfe2": 0.9,
    "linesearch_nondescent_maxit": 3,
    "linesearch_reattempts": 2,
    "linesearch_reattempts_x0": 30,
    "linesearch_c_mu": 0.1,
    "linesearch_c_mu_x0": 0.2,
    "linesearch_maxit": 25,
    "init_step_size": 1e-2,
    "is_backtrack_linesearch": True,
    "search_direction_rescaling": True,
    "disable_terminationcode_6": True,
    "prescaling_threshold": 100.0,
    "prescaling_info_msg": False,
    "double_precision": False,
    "torch_device": torch.device("cpu"),
    "globalAD": False,
    "print_level": 0,
    "print_frequency": 5,
    "print_width": 20,
    "print_ascii": True,
    "print_use_orange": False,
    "halt_log_fn": _halt,
    "debug_mode": True,
    "jacobian": "loop",
    "jacobian_chunk_size": 8,
    "seed": 12,
    "qp_tol": 1e-7,
    "bfgs_y": "penalty",
    "linesearch_warm_step": False,
    "stat_skip_qp": False,
    "stat_step_window": 0,
    "regularize_damped_threshold": INF,
    "bounds": (0.0, 1.0),
}


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def test_non_default_table_covers_every_option():
    assert set(NON_DEFAULTS) == set(Options.names())
    o = Options()
    for name, value in NON_DEFAULTS.items():
        assert not _same(value, getattr(o, name)), name


def test_from_pygranso_round_trip():
    opts = pygransoStruct()
    for name, value in NON_DEFAULTS.items():
        setattr(opts, name, value)
    o = Options.from_pygranso(opts)
    for name, value in NON_DEFAULTS.items():
        assert _same(getattr(o, name), value), name
    # and back: an Options written out as a struct converts to the same options
    back = pygransoStruct(**{name: getattr(o, name) for name in Options.names()})
    o2 = Options.from_pygranso(back)
    for name in Options.names():
        assert _same(getattr(o2, name), getattr(o, name)), name
    # a dict works too, an Options passes through, None gives the defaults
    o3 = Options.from_pygranso(dict(NON_DEFAULTS))
    assert all(_same(getattr(o3, k), v) for k, v in NON_DEFAULTS.items())
    assert Options.from_pygranso(o) is o
    assert Options.from_pygranso(None) == Options()


def test_partial_pygranso_struct_keeps_other_defaults():
    opts = pygransoStruct(maxit=5, print_level=0)
    o = Options.from_pygranso(opts)
    assert o.maxit == 5 and o.print_level == 0
    assert o.viol_ineq_tol == 1e-6 and o.linesearch_reattempts_x0 == 10


def test_pygranso_int_booleans_and_tensor_scalars_accepted():
    o = Options.from_pygranso(pygransoStruct(print_ascii=1, checkH0=0, mu0=torch.tensor(0.5)))
    assert o.print_ascii == 1 and o.checkH0 == 0
    assert o.mu0 == 0.5 and isinstance(o.mu0, float)


INVALID = [
    ("x0", [1.0, 2.0]),
    ("H0", np.eye(2)),
    ("mu0", -1),
    ("mu0", math.nan),
    ("mu0", INF),
    ("mu0", "abc"),
    ("checkH0", 2),
    ("checkH0", "yes"),
    ("print_ascii", None),
    ("double_precision", 0.5),
    ("bfgs_damping", -0.1),
    ("bfgs_damping", 1.5),
    ("limited_mem_size", -1),
    ("limited_mem_size", 2.5),
    ("limited_mem_size", True),
    ("limited_mem_warm_start", {"S": 1}),
    ("limited_mem_warm_start", 5),
    ("opt_tol", -1e-8),
    ("rel_tol", -1.0),
    ("step_tol", 0.0),
    ("viol_ineq_tol", -1e-6),
    ("viol_eq_tol", math.nan),
    ("ngrad", 0),
    ("ngrad", 2.0),
    ("evaldist", -1.0),
    ("maxit", -1),
    ("maxit", 10.5),
    ("maxit", math.nan),
    ("maxclocktime", 0),
    ("fvalquit", math.nan),
    ("min_fallback_level", 5),
    ("max_fallback_level", -1),
    ("max_random_attempts", -1),
    ("steering_ineq_margin", -1.0),
    ("steering_maxit", -1),
    ("steering_c_viol", 0.0),
    ("steering_c_viol", 1.0),
    ("steering_c_mu", 1.0),
    ("regularize_threshold", 1.0),
    ("QPsolver", ""),
    ("QPsolver", 3),
    ("wolfe1", 0.6),
    ("wolfe1", -0.1),
    ("wolfe2", 1.0),
    ("linesearch_nondescent_maxit", -1),
    ("linesearch_reattempts", -1),
    ("linesearch_reattempts_x0", -2),
    ("linesearch_c_mu", 0.0),
    ("linesearch_c_mu_x0", 1.5),
    ("linesearch_maxit", 0),
    ("linesearch_maxit", -INF),
    ("init_step_size", 0.0),
    ("init_step_size", INF),
    ("prescaling_threshold", 0.0),
    ("torch_device", "nonsense_device"),
    ("torch_device", 3),
    ("print_level", 4),
    ("print_frequency", 0),
    ("print_width", 8),
    ("print_width", 24),
    ("halt_log_fn", "not callable"),
    ("jacobian", "fast"),
    ("jacobian_chunk_size", 0),
    ("seed", -1),
    ("qp_tol", 0.0),
    ("qp_tol", 2.0),
    ("bfgs_y", "hessian"),
    ("linesearch_warm_step", "yes"),
    ("stat_skip_qp", "yes"),
    ("stat_step_window", -1),
    ("stat_step_window", 1.5),
    ("regularize_damped_threshold", 1.0),
    ("bounds", 3.0),
]


@pytest.mark.parametrize("name, value", INVALID, ids=[f"{n}={v!r}" for n, v in INVALID])
def test_invalid_value_raises_naming_the_field(name, value):
    with pytest.raises(OptionsError, match=name):
        Options(**{name: value})
    with pytest.raises(OptionsError, match=name):
        Options.from_pygranso(pygransoStruct(**{name: value}))
    with pytest.raises(ValueError):  # OptionsError is a ValueError
        Options().replace(**{name: value})


_INT_OPTIONS = [
    "limited_mem_size",
    "ngrad",
    "maxit",
    "max_random_attempts",
    "steering_maxit",
    "linesearch_nondescent_maxit",
    "linesearch_reattempts",
    "linesearch_reattempts_x0",
    "print_frequency",
    "jacobian_chunk_size",
    "seed",
]


@pytest.mark.parametrize("name", _INT_OPTIONS)
def test_integer_options_reject_minus_infinity(name):
    with pytest.raises(OptionsError, match=name):
        Options(**{name: -INF})


def test_seed_rejects_infinity():
    with pytest.raises(OptionsError, match="seed"):
        Options(seed=INF)


def test_cross_field_checks():
    with pytest.raises(OptionsError, match=r"wolfe2.*wolfe1"):
        Options(wolfe1=0.3, wolfe2=0.2)
    with pytest.raises(OptionsError, match=r"max_fallback_level.*min_fallback_level"):
        Options(min_fallback_level=3, max_fallback_level=2)
    Options(wolfe1=0.5, wolfe2=0.5)
    Options(min_fallback_level=4, max_fallback_level=4)


@pytest.mark.parametrize(
    "typo, suggestion",
    [
        ("viol_ineq_tl", "viol_ineq_tol"),
        ("maxiter", "maxit"),
        ("linesearch_reattempt", "linesearch_reattempts"),
        ("print_lvl", "print_level"),
        ("qpsolver", "QPsolver"),
        ("limited_memory_size", "limited_mem_size"),
    ],
)
def test_unknown_name_suggests_closest(typo, suggestion):
    with pytest.raises(OptionsError, match=f"unknown option '{typo}'.*did you mean '{suggestion}'"):
        Options.from_mapping({typo: 1})
    with pytest.raises(OptionsError, match=f"did you mean '{suggestion}'"):
        Options.from_pygranso(pygransoStruct(**{typo: 1}))


def test_unknown_name_without_close_match():
    with pytest.raises(OptionsError, match="unknown option 'zzzz'") as info:
        Options.from_mapping({"zzzz": 1})
    assert "did you mean" not in str(info.value)


def test_replace_validates_and_keeps_others():
    o = Options(maxit=3)
    o2 = o.replace(opt_tol=1e-4)
    assert (o2.maxit, o2.opt_tol, o.opt_tol) == (3, 1e-4, 1e-8)
    with pytest.raises(OptionsError, match="opt_tol"):
        o.replace(opt_tol=-1.0)


def test_options_are_frozen():
    o = Options()
    with pytest.raises(AttributeError):
        o.maxit = 5  # type: ignore[misc]


_BOOL_OPTIONS = [
    f.name for f in fields(Options) if isinstance(f.default, bool) and f.name != "extra"
]


def test_every_option_has_an_invalid_case():
    """No option is silently unchecked: each appears in INVALID or is a boolean."""
    assert {name for name, _ in INVALID} | set(_BOOL_OPTIONS) == set(Options.names())


@pytest.mark.parametrize("name", _BOOL_OPTIONS)
def test_boolean_options_reject_non_booleans(name):
    with pytest.raises(OptionsError, match=name):
        Options(**{name: "yes"})
    with pytest.raises(OptionsError, match=name):
        Options(**{name: 2})


def test_the_options_page_matches_the_options() -> None:
    """docs/options.md's tables are generated from ``Options`` (``docs/_gen_options.py``): an
    option added without a description, or a default changed, shows here."""
    root = Path(__file__).resolve().parents[2]
    run = subprocess.run(
        [sys.executable, str(root / "docs" / "_gen_options.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=root,
    )
    assert run.returncode == 0, run.stdout + run.stderr
