"""Iteration table and summary, printed by an observer of the main loop.

Columns (PyGRANSO's): Iter | Mu, Penalty value | Objective | Ineq, Eq violation (l∞) |
search direction, evaluations, step | gradient samples, stationarity. The layout is data
(:data:`COLUMNS`); the printer only formats records.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import TextIO

from .callbacks import IterationRecord
from .result import Result, Status

#: Below this many BFGS updates the share of damped ones says little.
_HINT_MIN_UPDATES = 20
#: Share of damped BFGS updates from which an uncertified run gets the hint.
_HINT_DAMPED_SHARE = 0.9

_ORANGE = "\033[33m"
_RESET = "\033[0m"


def fixed_width(value: float | int | None, width: int) -> str:
    """Format a number in exactly ``width`` characters (exponent form when needed)."""
    if value is None:
        return "-".center(width)
    if isinstance(value, int) and not isinstance(value, bool):
        s = str(value)
        return s.rjust(width) if len(s) <= width else _exponent(float(value), width)
    v = float(value)
    if math.isnan(v) or math.isinf(v):
        return str(v).rjust(width)[-width:]
    if v == 0:
        return "0".rjust(width)
    mag = abs(v)
    whole = len(str(int(mag))) + (v < 0)
    if mag < 1e-3 or whole > width - 3:
        return _exponent(v, width)
    decimals = max(width - whole - 1, 0)
    return f"{v:.{decimals}f}"[:width].rjust(width)


def _exponent(v: float, width: int) -> str:
    """Exponent notation in at most ``width`` characters (fewer digits, then a compact form)."""
    for digits in range(max(width - 7, 0), -1, -1):
        s = f"{v:.{digits}e}"
        if len(s) <= width:
            return s.rjust(width)
        compact = s.replace("e+", "e").replace("e-0", "e-").replace("e0", "e")
        if len(compact) <= width:
            return compact.rjust(width)
    return "#" * width


@dataclass(frozen=True)
class Column:
    group: str
    title: str
    width: int


class TablePrinter:
    """Prints one row per ``print_frequency`` iterations, and the final summary."""

    def __init__(
        self,
        *,
        n: int,
        m_i: int,
        m_e: int,
        width: int = 14,
        frequency: int = 1,
        ascii: bool = False,
        color: bool = True,
        stream: TextIO | None = None,
        limited_memory: int = 0,
    ) -> None:
        self.n, self.m_i, self.m_e = n, m_i, m_e
        self.constrained = m_i + m_e > 0
        self.frequency = frequency
        self.bar = "|" if ascii else "│"
        self.rule = "-" if ascii else "═"
        self.color = color
        self.stream = stream or sys.stdout
        self.limited_memory = limited_memory
        self.rows_printed = 0
        pen = "Penalty Function" if self.constrained else "Penalty Fn"
        viol = "Total Violation" if self.constrained else "Violation"
        self.columns = [
            [Column("", "Iter", 5)],
            [Column(pen, "Mu", 9), Column(pen, "Value", width)],
            [Column("", "Objective", width)],
            [Column(viol, "Ineq", 9), Column(viol, "Eq", 9)],
            [
                Column("Line Search", "SD", 3),
                Column("Line Search", "Evals", 5),
                Column("Line Search", "t", 9),
            ],
            [Column("Stationarity", "Grads", 5), Column("Stationarity", "Value", 11)],
        ]

    # ----------------------------------------------------------------------- output helpers
    def _write(self, text: str) -> None:
        self.stream.write(text + "\n")

    def _orange(self, text: str) -> str:
        return f"{_ORANGE}{text}{_RESET}" if self.color else text

    def _join(self, groups: list[list[str]]) -> str:
        return f"{self.bar} " + f" {self.bar} ".join(" ".join(g) for g in groups) + f" {self.bar}"

    def _group_width(self, group: list[Column]) -> int:
        return sum(c.width for c in group) + len(group) - 1

    # ----------------------------------------------------------------------- banner and header
    def banner(self, qp_backend: str) -> None:
        self._write(
            f"ncvx: BFGS-SQP for constrained nonsmooth optimization (QP backend: {qp_backend})"
        )
        self._write(
            f"  variables: {self.n}   inequality constraints: {self.m_i}   "
            f"equality constraints: {self.m_e}"
        )
        if self.limited_memory:
            self._write(
                self._orange(
                    f"  limited-memory BFGS with {self.limited_memory} pairs (full BFGS is "
                    "usually more robust on nonsmooth problems)"
                )
            )

    def header(self) -> None:
        top = [g[0].group.center(self._group_width(g)) for g in self.columns]
        self._write(self.rule * len(self._join([[t] for t in top])))
        self._write(self._join([[t] for t in top]))
        self._write(self._join([[c.title.center(c.width) for c in g] for g in self.columns]))
        self._write(self.rule * len(self._join([[t] for t in top])))

    # ----------------------------------------------------------------------- rows
    def __call__(self, record: IterationRecord) -> None:
        if record.iteration % self.frequency:
            return
        if self.rows_printed % 20 == 0:
            self.header()
        self.rows_printed += 1
        p = record.point
        mu = fixed_width(p.mu, 9) if self.constrained else "-".center(9)
        tvi = fixed_width(p.viol.tvi, 9) if self.m_i else "-".center(9)
        tve = fixed_width(p.viol.tve, 9) if self.m_e else "-".center(9)
        sd = record.direction_label.center(3)
        if record.is_fallback:
            sd = self._orange(sd)
        stat = fixed_width(record.stat_value, 9)
        if record.stat_form in (2, -1):
            stat += self._orange(f":{record.stat_form if record.stat_form > 0 else 'x'}")
        elif record.stat_form == 3:  # a lower bound: the termination QP was not needed
            stat += ":b"
        else:
            stat += "  "
        width = self.columns[1][1].width
        cells = [
            [fixed_width(record.iteration, 5)],
            [mu, fixed_width(p.phi, width)],
            [fixed_width(p.f, width)],
            [tvi, tve],
            [sd, fixed_width(record.ls_evals, 5), fixed_width(record.alpha, 9)],
            [fixed_width(record.n_samples, 5), stat],
        ]
        self._write(self._join(cells))

    # ----------------------------------------------------------------------- summary
    def summary(self, result: Result) -> None:
        self._write("Optimization results:")
        self._write("  F = final iterate, B = best (feasible to tolerance), MF = most feasible")
        rows = [("F", result.final), ("B", result.best)]
        if result.constrained:
            rows.append(("MF", result.most_feasible))
        for label, it in rows:
            if it is None:
                self._write(f"  {label:>2}: (no point feasible to tolerance was found)")
                continue
            line = f"  {label:>2}: f = {it.f: .12g}"
            if result.constrained:
                line += f"   tvi = {it.tvi:.3g}   tve = {it.tve:.3g}"
            self._write(line)
        self._write(f"Iterations:           {result.iters}")
        self._write(f"Function evaluations: {result.fn_evals}")
        self._write(f"Stationarity measure: {result.stat_value:.3g}")
        self._write(f"ncvx termination code: {int(result.status)} --- {result.status.message}")
        if result.qp_failure_rate > 1:
            self._write(
                self._orange(f"warning: {result.qp_failure_rate:.1f}% of QP solves needed a retry")
            )
        capped_from = result.extra.get("damped_cap_from")
        if capped_from is not None:
            self._write(
                f"H's condition number capped in the QPs from iteration {capped_from} on "
                "(most BFGS updates were damped; regularize_damped_threshold)"
            )
        pair_from = result.extra.get("bfgs_pair_from")
        if pair_from is not None:
            self._write(
                f"BFGS pair: rows violated at both ends of a step weigh 1 from iteration {pair_from} "
                "on (every constraint a nonlinear inequality; bfgs_y='auto')"
            )
        hint = damping_hint(result)
        if hint is not None:
            self._write(self._orange(hint))
        if result.error is not None:
            self._write(f"error: {type(result.error).__name__}: {result.error}")


def damping_hint(result: Result) -> str | None:
    """A hint for a run that ended without a certificate after nearly all of its BFGS updates
    were damped (``None`` otherwise).

    That is the signature of variables that enter f and the constraints linearly (an SVM's
    slacks): the Lagrangian pair has ``y = 0`` along them, GRANSO's damping then lets each update
    grow H along the step by up to ``1/bfgs_damping``, and the QPs become too ill-conditioned
    to steer well. Capping H's condition number in the QPs helped in every such case measured
    (docs/performance.md, session 11).
    """
    stats = result.bfgs
    if result.status == Status.STATIONARY or stats.updates < _HINT_MIN_UPDATES:
        return None
    if result.extra.get("damped_cap_from") is not None:
        return None  # the automatic cap (regularize_damped_threshold) was already on
    if stats.damped_updates < _HINT_DAMPED_SHARE * stats.updates:
        return None
    return (
        f"note: {stats.damped_updates} of {stats.updates} BFGS updates were damped (variables "
        "entering f and the constraints linearly?); H may be badly conditioned in the QPs: "
        "try regularize_threshold=1e6 (docs/termination-codes.md, code 6)"
    )
