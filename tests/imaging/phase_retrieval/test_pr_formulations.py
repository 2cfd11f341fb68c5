"""ncvx formulations: exact recovery, folded constraints, the discrepancy form, restarts."""

import pytest
import torch

import ncvx
from ncvx_imaging.phase_retrieval import (
    CDIProblem,
    FarField,
    GaussianMeasurement,
    align_fourier,
    data_misfit,
    gaussian_pr_fn,
    real_projection,
    relative_error_global_phase,
    solve_with_restarts,
    to_complex,
)


@pytest.mark.parametrize("cplx", [False, True])
def test_gaussian_pr_exact_recovery_from_random_starts(cplx):
    n, m = 8, 64
    model = GaussianMeasurement.random(m, n, complex_valued=cplx, seed=0)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, dtype=torch.float64, generator=g)
    if cplx:
        x = torch.complex(x, torch.randn(n, dtype=torch.float64, generator=g))
    y = model(x)
    fn, nvar = gaussian_pr_fn(model, y, loss="intensity")
    starts = [torch.randn(nvar, dtype=torch.float64, generator=g) for _ in range(4)]
    rr = solve_with_restarts(fn, starts, maxit=300, warm_maxit=50, stop_fun=1e-20)
    z = to_complex(rr.x, cplx)
    assert float(relative_error_global_phase(z, x)) < 1e-6
    assert len(rr.rounds) >= 1 and 0 <= rr.best_start < len(rr.rounds)


def test_data_misfit_values_and_gradient():
    g = torch.Generator().manual_seed(2)
    Lx = torch.complex(
        torch.randn(5, dtype=torch.float64, generator=g),
        torch.randn(5, dtype=torch.float64, generator=g),
    )
    y = torch.rand(5, dtype=torch.float64, generator=g)
    torch.testing.assert_close(data_misfit(Lx, y, "intensity"), ((Lx.abs() ** 2 - y) ** 2).sum())
    torch.testing.assert_close(data_misfit(Lx, y, "amplitude"), ((Lx.abs() - y.sqrt()) ** 2).sum())
    z = torch.zeros(3, dtype=torch.complex128, requires_grad=True)
    data_misfit(z, torch.ones(3, dtype=torch.float64), "amplitude").backward()
    assert bool(torch.isfinite(torch.view_as_real(z.grad)).all())
    with pytest.raises(ValueError, match="loss"):
        data_misfit(Lx, y, "poisson")


def small_cdi(real=True):
    ff = FarField((6, 6), (16, 16), offset=(3, 4))
    g = torch.Generator().manual_seed(3)
    obj = torch.rand(6, 6, dtype=torch.float64, generator=g) + 0.2
    if not real:
        obj = obj * torch.exp(1j * torch.rand(6, 6, dtype=torch.float64, generator=g))
    return ff, obj, ff(obj)


def test_cdi_problem_layout_constraints_and_gradient():
    ff, obj, y = small_cdi()
    prob = CDIProblem(y, (2, 3, 8, 8), real=True, nonnegative=True)
    assert prob.nvar == 64
    img = torch.zeros(8, 8, dtype=torch.float64)
    img[1:7, 1:7] = obj
    v = prob.variables(img)
    torch.testing.assert_close(prob.image(v), img)
    torch.testing.assert_close(prob.field(v), ff.pad(obj))
    f, ci, ce = prob.fit_fn()(v)
    assert float(f) < 1e-28 and float(ci) == 0.0 and ce is None
    neg = v.clone()
    neg[0] = -0.5
    assert float(prob.constraints(neg)[0]) == pytest.approx(0.5)
    w = (v + 0.1).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda u: prob.misfit(u), (w,))
    cp = CDIProblem(y.clone(), (2, 3, 8, 8), real=False, nonnegative=False)
    assert cp.nvar == 128
    torch.testing.assert_close(
        cp.image(cp.variables(img.to(torch.complex128))), img.to(torch.complex128)
    )
    with pytest.raises(ValueError, match="nonnegative"):
        CDIProblem(y, (2, 3, 8, 8), real=False, nonnegative=True)


@pytest.mark.parametrize("real", [True, False])
def test_cdi_refinement_converges_to_truth(real):
    """From a perturbed truth, the constrained fit recovers the object exactly (up to ambiguity)."""
    ff, obj, y = small_cdi(real)
    prob = CDIProblem(y, (3, 4, 6, 6), real=real, nonnegative=real, loss="amplitude")
    g = torch.Generator().manual_seed(4)
    v0 = prob.variables(obj) + 0.02 * torch.randn(prob.nvar, dtype=torch.float64, generator=g)
    res = ncvx.solve(prob.fit_fn(), v0, maxit=120, print_level=0, opt_tol=1e-12)
    _, err = align_fourier(prob.field(res.final.x), ff.pad(obj))
    assert float(err) < 1e-5


def test_discrepancy_form_is_feasible_and_smoother():
    _ff, obj, y = small_cdi()
    g = torch.Generator().manual_seed(5)
    noisy = (
        y + 0.01 * y.mean() * torch.randn(y.shape, dtype=torch.float64, generator=g)
    ).clamp_min(0)
    prob = CDIProblem(noisy, (3, 4, 6, 6), real=True, nonnegative=True)
    v_true = prob.variables(obj)
    delta = 1.5 * float(prob.misfit(v_true))
    fn = prob.discrepancy_fn(delta)
    f0, ci0, _ = fn(v_true)
    assert float(ci0[0]) < 0  # the truth satisfies the misfit bound
    res = ncvx.solve(fn, v_true, maxit=40, print_level=0)
    f1, ci1, _ = fn(res.x)
    assert float(ci1.max()) <= 1e-5
    assert float(f1) <= float(f0) + 1e-12
    with pytest.raises(ValueError, match="delta"):
        prob.discrepancy_fn(0.0)


def test_restarts_keep_best_and_validate():
    def fn(v):
        return ((v.square() - 1) ** 2).sum() + 0.1 * v.sum(), None, None

    starts = [torch.full((2,), s, dtype=torch.float64) for s in (2.0, -2.0)]
    rr = solve_with_restarts(fn, starts, maxit=100, warm_maxit=20, options={"limited_mem_size": 3})
    f_first = [r.fun for r in rr.rounds]
    assert rr.best_start == min(range(2), key=f_first.__getitem__)
    assert rr.result.fun <= min(f_first) + 1e-12  # the warm restart never loses the best
    assert abs(float(rr.x.mean()) + 1) < 0.1  # the -1 basin has the lower objective
    with pytest.raises(ValueError, match="start"):
        solve_with_restarts(fn, [])


def test_double_dip_decreases_misfit():
    from ncvx_imaging.phase_retrieval.dip import DoubleDIP, fit_double_dip

    ff = FarField((16, 16), (32, 32))
    g = torch.Generator().manual_seed(6)
    obj = torch.rand(16, 16, dtype=torch.float64, generator=g)
    y = ff(obj)
    with torch.no_grad():
        net0 = DoubleDIP((16, 16), real=False, width=4, seed=0).double()
        x0 = net0()
        x0 = x0 * (y.sum().sqrt() / x0.abs().norm())
    before = data_misfit(ff.linear(x0), y, "amplitude") / y.sum()
    fit = fit_double_dip(y, (8, 8, 16, 16), real=False, maxit=8, width=4, seed=0)
    assert fit.image.shape == (16, 16) and fit.image.is_complex()
    after = data_misfit(ff.linear(fit.image), y, "amplitude") / y.sum()
    torch.testing.assert_close(after, torch.tensor(fit.result.fun, dtype=torch.float64))
    assert float(after) < 0.9 * float(before)
    real = DoubleDIP((16, 16), real=True, width=4)()
    assert not real.is_complex() and bool((real >= 0).all())


def test_real_projection_undoes_a_global_phase():
    g = torch.Generator().manual_seed(7)
    x = torch.rand(4, 5, 6, dtype=torch.float64, generator=g)
    ph = torch.tensor([0.0, 0.7, torch.pi, -2.0], dtype=torch.float64).view(4, 1, 1)
    torch.testing.assert_close(real_projection(x * torch.exp(1j * ph)), x)  # incl. phase pi
    # the root is the one with the larger positive part; without the sign rule -x may come back
    z = -x[0] * (1 + 0j)
    torch.testing.assert_close(real_projection(z), x[0])
    assert bool((real_projection(z, nonnegative=False) - x[0]).abs().max() < 1e-12) or bool(
        (real_projection(z, nonnegative=False) + x[0]).abs().max() < 1e-12
    )
    # the imaginary residue is removed, negative parts clamped, real input only clamped
    w = torch.tensor([[1.0 + 0.5j, -0.2 - 0.1j]], dtype=torch.complex128)
    out = real_projection(w)
    assert out.dtype == torch.float64 and float(out.min()) >= 0
    torch.testing.assert_close(
        real_projection(torch.tensor([[-1.0, 2.0]])), torch.tensor([[0.0, 2.0]])
    )
    torch.testing.assert_close(
        real_projection(torch.zeros(2, 2, dtype=torch.complex128)),
        torch.zeros(2, 2, dtype=torch.float64),
    )


def test_complex_lift_recovers_a_real_object():
    """A real object solved in complex variables (no realness/sign constraint) and projected back
    is recovered exactly: the lift keeps the solution set (up to a global phase)."""
    ff, obj, y = small_cdi(real=True)
    prob = CDIProblem(y, (3, 4, 6, 6), real=False, nonnegative=False, loss="amplitude")
    assert prob.nvar == 2 * 36
    g = torch.Generator().manual_seed(8)
    v0 = prob.variables(obj * torch.exp(torch.tensor(0.4j, dtype=torch.complex128)))
    v0 = v0 + 0.02 * torch.randn(prob.nvar, dtype=torch.float64, generator=g)
    res = ncvx.solve(prob.fit_fn(), v0, maxit=200, print_level=0, opt_tol=1e-12)
    x = real_projection(prob.field(res.final.x))
    assert x.dtype == torch.float64 and tuple(x.shape) == (16, 16)
    _, err = align_fourier(x, ff.pad(obj))
    assert float(err) < 1e-5
