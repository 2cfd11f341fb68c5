"""Unit tests of ``ncvx.printer``: fixed-width numbers and the iteration table layout."""

from __future__ import annotations

import io
import math
import re

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import ncvx
from ncvx.callbacks import IterationRecord
from ncvx.penalty import PenaltyPoint, Violation
from ncvx.printer import TablePrinter, fixed_width
from ncvx.problem.evaluator import Evaluation

F64 = torch.float64
ANSI = re.compile(r"\x1b\[[0-9;]*m")

#: Widths the table uses for floats: print_width (9..23) and the 9-wide columns.
float_widths = st.integers(9, 23)
any_float = st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True)
edge_floats = st.sampled_from(
    [
        0.0,
        -0.0,
        5e-324,
        -5e-324,
        1e-300,
        -1e-300,
        1e-3,
        -1e-3,
        9.99999999e-4,
        -9.99999999e-4,
        0.99999999999999,
        -0.99999999999999,
        999999.9999999,
        -999999.9999999,
        1e300,
        -1e300,
        1.7976931348623157e308,
        -1.7976931348623157e308,
        math.inf,
        -math.inf,
        math.nan,
    ]
)


def _display(s: str) -> str:
    return ANSI.sub("", s)


@given(value=st.one_of(any_float, edge_floats), width=float_widths)
def test_fixed_width_floats_exact_width(value, width):
    s = fixed_width(value, width)
    assert len(s) == width, (value, s)


@given(value=st.floats(-1e15, 1e15, allow_nan=False), width=float_widths)
def test_fixed_width_float_is_readable_back(value, width):
    s = fixed_width(value, width).strip()
    back = float(s)
    # at least 2 significant digits survive (width 9 with a sign and exponent is the tightest)
    assert back == pytest.approx(value, rel=0.06, abs=1e-3 if abs(value) >= 1e-3 else 1e-300)


@given(value=st.integers(0, 10**5 - 1), width=st.integers(5, 23))
def test_fixed_width_small_ints_exact(value, width):
    s = fixed_width(value, width)
    assert len(s) == width and int(s) == value


@given(value=st.integers(-(10**99), 10**99), width=st.integers(9, 23))
def test_fixed_width_ints_exact_width(value, width):
    assert len(fixed_width(value, width)) == width


@pytest.mark.parametrize(
    "value, width",
    [(123456, 5), (10**6, 6), (-(10**100), 9)],
    ids=["1e5-w5", "1e6-w6", "-1e100-w9"],
)
def test_fixed_width_large_ints_exact_width(value, width):
    assert len(fixed_width(value, width)) == width


def test_fixed_width_none_and_examples():
    assert fixed_width(None, 9) == "    -    "
    assert fixed_width(0.0, 9) == "        0"
    assert fixed_width(42, 5) == "   42"
    assert fixed_width(1.5, 9) == "1.5000000"
    assert fixed_width(2.47e-12, 9) == " 2.47e-12"
    assert fixed_width(math.inf, 9) == "      inf"


# ---------------------------------------------------------------------------------- the table


def _point(f: float, phi: float, mu: float, tvi: float, tve: float) -> PenaltyPoint:
    ev = Evaluation(
        x=torch.zeros(2, dtype=F64),
        f=torch.tensor(f, dtype=F64),
        ci=torch.zeros(1, dtype=F64),
        ce=torch.zeros(1, dtype=F64),
    )
    viol = Violation(tvi, tve, max(tvi, tve), tvi + tve, False)
    return PenaltyPoint(ev=ev, mu=mu, viol=viol, f=f, phi=phi)


def _record(point, *, iteration=3, level=0, attempt=0, constrained=True, stat_form=1, **kw):
    base = {
        "ls_evals": 2,
        "alpha": 0.5,
        "n_samples": 3,
        "stat_value": 1e-5,
    }
    base.update(kw)
    return IterationRecord(
        iteration=iteration,
        point=point,
        constrained=constrained,
        direction=torch.zeros(2, dtype=F64),
        fallback_level=level,
        random_attempt=attempt,
        stat_form=stat_form,
        stat_vector=None,
        hessian=None,
        **base,
    )


def _table(printer: TablePrinter, records) -> list[str]:
    for r in records:
        printer(r)
    return printer.stream.getvalue().splitlines()


finite = st.floats(-1e300, 1e300, allow_nan=False)


@given(
    width=st.integers(9, 23),
    ascii_=st.booleans(),
    color=st.booleans(),
    m_i=st.integers(0, 2),
    m_e=st.integers(0, 2),
    f=st.one_of(finite, edge_floats),
    phi=st.one_of(finite, edge_floats),
    mu=st.floats(0, 1e6),
    tvi=st.floats(0, 1e300),
    tve=st.floats(0, 1e300),
    level=st.integers(0, 4),
    attempt=st.integers(1, 9),
    stat_form=st.sampled_from([-1, 0, 1, 2]),
    stat_value=st.one_of(st.floats(0, 1e300), st.just(math.inf)),
    alpha=st.floats(0, 1e10),
    ls_evals=st.integers(0, 99999),
    iteration=st.integers(0, 99999),
)
def test_header_and_rows_have_equal_display_width(
    width, ascii_, color, m_i, m_e, f, phi, mu, tvi, tve, level, attempt, stat_form,
    stat_value, alpha, ls_evals, iteration,
):  # fmt: skip
    printer = TablePrinter(
        n=2, m_i=m_i, m_e=m_e, width=width, ascii=ascii_, color=color, stream=io.StringIO()
    )
    rec = _record(
        _point(f, phi, mu, tvi, tve),
        iteration=iteration,
        level=level,
        attempt=attempt if level == 4 else 0,
        constrained=m_i + m_e > 0,
        stat_form=stat_form,
        stat_value=stat_value,
        alpha=alpha,
        ls_evals=ls_evals,
    )
    lines = _table(printer, [rec])
    assert len(lines) == 5  # rule, groups, titles, rule, row
    widths = {len(_display(line)) for line in lines}
    assert len(widths) == 1, [_display(line) for line in lines]
    if ascii_:
        assert all(line.isascii() for line in lines)
    if not color:
        assert all("\x1b" not in line for line in lines)


def test_header_repeats_every_20_rows_and_frequency():
    printer = TablePrinter(n=1, m_i=1, m_e=0, frequency=2, stream=io.StringIO())
    point = _point(1.0, 1.0, 1.0, 0.0, 0.0)
    lines = _table(printer, [_record(point, iteration=k) for k in range(0, 82)])
    assert printer.rows_printed == 41
    assert len(lines) == 41 + 3 * 4  # headers before rows 1, 21, 41


def test_unconstrained_columns_show_dashes():
    printer = TablePrinter(n=2, m_i=0, m_e=0, stream=io.StringIO())
    lines = _table(printer, [_record(_point(1.0, 1.0, 1.0, 0.0, 0.0), constrained=False)])
    assert "Penalty Fn" in lines[1] and "Violation" in lines[1]
    assert "Total Violation" not in lines[1]
    assert lines[4].count(" - ") >= 3  # mu, ineq, eq


def test_fallback_and_stat_form_marks():
    printer = TablePrinter(n=2, m_i=1, m_e=0, color=True, stream=io.StringIO())
    rec = _record(_point(1.0, 1.0, 1.0, 0.0, 0.0), level=4, attempt=3, stat_form=2)
    row = _table(printer, [rec])[-1]
    assert "R3" in row and ":2" in row and "\x1b[33m" in row
    plain = TablePrinter(n=2, m_i=1, m_e=0, color=False, stream=io.StringIO())
    row = _table(plain, [rec])[-1]
    assert "\x1b" not in row and "R3" in row and ":2" in row


def test_whole_ascii_run_is_ascii(capsys):
    def fn(x):
        return (x - 1).abs().sum() + (x**2).sum(), x[0] - 0.5, None

    ncvx.solve(fn, torch.zeros(2, dtype=F64), print_ascii=True, print_use_orange=False, maxit=3)
    out = capsys.readouterr().out
    assert out.isascii()
    table = [line for line in out.splitlines() if line.startswith(("|", "-"))]
    assert len(table) >= 5
    assert len({len(line) for line in table}) == 1


def _tiny_result() -> ncvx.Result:
    def fn(x):
        return (x * x).sum(), None, None

    return ncvx.solve(fn, torch.ones(2, dtype=F64), print_level=0)


@pytest.mark.parametrize(
    "status, updates, damped, shown",
    [
        (ncvx.Status.LINESEARCH_BRACKET_FEASIBLE, 163, 157, True),  # svm-2000's end
        (ncvx.Status.MAXIT, 100, 95, True),
        (ncvx.Status.STATIONARY, 163, 157, False),  # certified: nothing to explain
        (ncvx.Status.LINESEARCH_BRACKET_FEASIBLE, 163, 100, False),  # damping not dominant
        (ncvx.Status.LINESEARCH_BRACKET_FEASIBLE, 10, 10, False),  # too few updates to say
    ],
)
def test_summary_hints_at_the_condition_cap_after_mostly_damped_updates(
    status: ncvx.Status, updates: int, damped: int, shown: bool
) -> None:
    import dataclasses

    from ncvx.hessian import BFGSStats

    result = dataclasses.replace(
        _tiny_result(),
        status=status,
        bfgs=BFGSStats(requests=updates, updates=updates, damped_updates=damped),
    )
    printer = TablePrinter(n=2, m_i=0, m_e=0, stream=io.StringIO())
    printer.summary(result)
    text = printer.stream.getvalue()  # type: ignore[attr-defined]
    assert ("regularize_threshold=1e6" in text) is shown
    if shown:
        assert f"{damped} of {updates} BFGS updates were damped" in text


def test_summary_says_when_the_automatic_cap_started() -> None:
    import dataclasses

    base = _tiny_result()
    for start, shown in ((None, False), (21, True)):
        result = dataclasses.replace(base, extra={**base.extra, "damped_cap_from": start})
        printer = TablePrinter(n=2, m_i=0, m_e=0, stream=io.StringIO())
        printer.summary(result)
        text = printer.stream.getvalue()  # type: ignore[attr-defined]
        assert ("capped in the QPs from iteration 21" in text) is shown


def test_summary_says_when_the_bfgs_pair_weighs_violated_rows() -> None:
    import dataclasses

    base = _tiny_result()
    for start, shown in ((None, False), (3, True)):
        result = dataclasses.replace(base, extra={**base.extra, "bfgs_pair_from": start})
        printer = TablePrinter(n=2, m_i=1, m_e=0, stream=io.StringIO())
        printer.summary(result)
        text = printer.stream.getvalue()  # type: ignore[attr-defined]
        assert ("violated at both ends of a step weigh 1 from iteration 3" in text) is shown
