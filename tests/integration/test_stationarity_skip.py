"""Skipping the termination QP where its value cannot stop the run (option ``stat_skip_qp``).

The measure does not steer the iterates, so the runs with and without skipping must take the
same steps, stop for the same reason, and report the same final measure (always the QP's)."""

from __future__ import annotations

import pytest
import torch

import ncvx

F64 = torch.float64


def _nonsmooth_constrained(x):
    # a nonsmooth objective (max of quadratics) with one nonlinear inequality
    f = torch.maximum((x - 1.0).pow(2).sum(), (x + 0.5).pow(2).sum() - 1.0) + 0.1 * x.abs().sum()
    ci = (x**2).sum(0, keepdim=True) - 2.0
    return f, ci, None


def _run(skip: bool, fn, x0, **opts):
    forms: list[int] = []
    values: list[float] = []

    def cb(rec):
        forms.append(rec.stat_form)
        values.append(rec.stat_value)

    res = ncvx.solve(fn, x0, print_level=0, stat_skip_qp=skip, callback=cb, **opts)
    return res, forms, values


@pytest.mark.parametrize("limited", [0, 5])
def test_skipping_changes_nothing_but_the_work(limited):
    x0 = torch.tensor([2.0, -1.5, 0.7, 3.0], dtype=F64)
    ref, ref_forms, ref_values = _run(False, _nonsmooth_constrained, x0, limited_mem_size=limited)
    res, forms, values = _run(True, _nonsmooth_constrained, x0, limited_mem_size=limited)
    assert res.status == ref.status and res.iters == ref.iters
    torch.testing.assert_close(res.final.x, ref.final.x, rtol=0, atol=0)
    assert res.stat_value == pytest.approx(ref.stat_value, rel=1e-6, abs=1e-12)
    assert 3 not in ref_forms
    assert forms.count(3) > 0  # some QPs were skipped...
    for form, value, exact in zip(forms, values, ref_values):
        if form == 3:  # ... and each skip reported a true lower bound
            assert value <= exact * (1 + 1e-9) + 1e-15


def _nonsmooth_unconstrained(x):
    return torch.maximum((x - 1.0).pow(2).sum(), (x + 0.5).pow(2).sum() - 1.0), None, None


def test_final_measure_is_the_qps_at_maxit():
    x0 = torch.tensor([2.0, -1.5, 0.7, 3.0], dtype=F64)
    # iteration 13 is the first with several samples and a bound above opt_tol
    res, forms, _ = _run(True, _nonsmooth_constrained, x0, maxit=15)
    ref, _, _ = _run(False, _nonsmooth_constrained, x0, maxit=15)
    assert res.status == ncvx.Status.MAXIT
    assert 3 in forms[:-1] and forms[-1] == 1  # the last iteration solves its QP
    assert res.stat_value == pytest.approx(ref.stat_value, rel=1e-6)


def test_final_measure_is_a_qps_after_a_halt():
    x0 = torch.tensor([2.0, -1.5, 0.7, 3.0], dtype=F64)
    forms: list[int] = []

    def halt(rec):
        forms.append(rec.stat_form)
        return rec.stat_form == 3

    res = ncvx.solve(_nonsmooth_constrained, x0, print_level=0, callback=halt)
    assert res.status == ncvx.Status.USER_HALT and forms[-1] == 3
    # re-measured by the QP at the stop (with H as updated after the bound was taken)
    assert 0.0 <= res.stat_value < float("inf")


def test_log_marks_bounds(capsys):
    x0 = torch.tensor([2.0, -1.5, 0.7, 3.0], dtype=F64)
    ncvx.solve(_nonsmooth_constrained, x0, maxit=15, print_level=1)
    assert ":b" in capsys.readouterr().out
