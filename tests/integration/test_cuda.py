"""GPU code paths: each check runs on ``cuda`` and is compared with a closed form or a CPU solve.

Every check is a function of the device (``_check_*``), so the same bodies can be dry-run on the
CPU (``python -m tests.integration.test_cuda``) where no GPU is present; under pytest they run
only on CUDA and skip cleanly elsewhere.
"""

from __future__ import annotations

import pytest
import torch

import ncvx
from ncvx import pygranso, pygransoStruct

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def _check_float32_lbfgs_closed_form(device: str) -> None:
    """min ‖x − a‖² s.t. Σx ≤ 1 in float32 with L-BFGS: x* = a − (Σa − 1)/n."""
    n = 2000
    g = torch.Generator().manual_seed(0)
    a = (torch.rand(n, generator=g) + 0.5).to(device=device, dtype=torch.float32)

    def fn(x):
        return ((x - a) ** 2).sum(), x.sum() - 1, None

    res = ncvx.solve(
        fn,
        torch.zeros(n, device=device, dtype=torch.float32),
        maxit=300,
        limited_mem_size=10,
        double_precision=False,
        print_level=0,
    )
    x_star = a - (a.sum() - 1) / n
    assert res.x.device.type == torch.device(device).type
    assert res.x.dtype == torch.float32
    assert torch.isfinite(res.x).all()
    assert float((res.x - x_star).abs().max()) < 2e-3
    assert float(res.x.sum()) <= 1 + 1e-4


def _check_constraint_tensor_matches_cpu(device: str) -> None:
    """min ‖x − a‖² s.t. x ≤ u (200 scalar constraints in one (20, 10) tensor): x* = min(a, u)."""
    g = torch.Generator().manual_seed(1)
    a64 = torch.randn(20, 10, generator=g, dtype=torch.float64)
    u64 = 0.3 * torch.randn(20, 10, generator=g, dtype=torch.float64)

    def run(dev: str) -> ncvx.Result:
        a, u = a64.to(dev), u64.to(dev)

        def fn(x):
            return ((x - a) ** 2).sum(), x - u, None

        return ncvx.solve(fn, torch.zeros(20, 10, dtype=torch.float64, device=dev),
                          maxit=200, print_level=0)

    res, ref = run(device), run("cpu")
    x_star = torch.minimum(a64, u64).reshape(-1)
    assert res.x.device.type == torch.device(device).type
    torch.testing.assert_close(res.x.cpu(), x_star, atol=1e-5, rtol=0)
    torch.testing.assert_close(res.x.cpu(), ref.x, atol=1e-5, rtol=0)
    assert res.status == ref.status
    assert abs(res.final.f - ref.final.f) <= 1e-8 * max(1.0, abs(ref.final.f))


def _check_nonsmooth_pygranso_api(device: str) -> None:
    """PyGRANSO calling convention on a device: min ‖x − a‖₁ s.t. ‖x‖² ≤ 1, a = (1.5, −1.5, 0, 0).

    Nonsmooth objective (kinks in the zero coordinates at the answer). x* = (1, −1, 0, 0)/√2 and
    f* = 3 − √2 (the dual point z = (1, −1, 0, 0) certifies it).
    """
    a64 = torch.tensor([[1.5], [-1.5], [0.0], [0.0]], dtype=torch.float64)

    def solve_on(dev: str):
        a = a64.to(dev)

        def comb_fn(X):
            x = X.x
            ci = pygransoStruct()
            ci.ball = (x * x).sum() - 1
            return (x - a).abs().sum(), ci, None

        opts = pygransoStruct()
        opts.torch_device = torch.device(dev)
        opts.x0 = torch.zeros(4, 1, dtype=torch.float64, device=dev)
        opts.print_level = 0
        opts.maxit = 300
        return pygranso(var_spec={"x": [4, 1]}, combined_fn=comb_fn, user_opts=opts)

    soln, ref = solve_on(device), solve_on("cpu")
    assert soln.final.x.device.type == torch.device(device).type
    assert soln.best.feasible_to_tol
    assert soln.best.f == pytest.approx(3 - 2**0.5, abs=1e-6)
    assert soln.best.f == pytest.approx(ref.best.f, abs=1e-6)


def _check_module_mode(device: str) -> None:
    """Least squares on an nn.Linear with ‖w‖² ≤ r²: the same answer on the device and the CPU."""
    g = torch.Generator().manual_seed(2)
    X64 = torch.randn(64, 5, generator=g, dtype=torch.float64)
    y64 = X64 @ torch.tensor([3.0, -2.0, 1.0, 0.5, 0.0], dtype=torch.float64) + 0.1

    def run(dev: str) -> tuple[torch.nn.Module, ncvx.Result]:
        torch.manual_seed(0)
        model = torch.nn.Linear(5, 1).double().to(dev)
        X, y = X64.to(dev), y64.to(dev)

        def fn(m):
            r = m(X).squeeze(1) - y
            return (r * r).mean(), (m.weight**2).sum() - 4.0, None

        return model, ncvx.solve_module(model, fn, maxit=200, print_level=0)

    (model, res), (ref_model, ref) = run(device), run("cpu")
    assert next(model.parameters()).device.type == torch.device(device).type
    assert float((model.weight.detach() ** 2).sum()) <= 4.0 + 1e-6
    torch.testing.assert_close(model.weight.detach().cpu(), ref_model.weight.detach(),
                               atol=1e-5, rtol=0)
    assert res.final.f == pytest.approx(ref.final.f, rel=1e-7)


def _check_benchmark_problem_builds_on_device(device: str) -> None:
    """The scale suite's TV problem keeps its data on the device (the GPU benchmark path)."""
    from benchmarks import problems

    var_spec, comb_fn, opts, _ = problems.build(
        "tv_denoise", pygransoStruct, device=device, n=400, maxit=5
    )
    o = pygransoStruct()
    for k, v in opts.items():
        setattr(o, k, v.to(device) if isinstance(v, torch.Tensor) else v)
    o.torch_device = torch.device(device)
    o.print_level = 0
    soln = pygranso(var_spec=var_spec, combined_fn=comb_fn, user_opts=o)
    assert soln.final.x.device.type == torch.device(device).type
    assert soln.best.feasible_to_tol
    f0 = comb_fn(type("V", (), {"x": opts["x0"].to(device).reshape(20, 20)}))[0]
    assert soln.best.f < float(f0)


def _check_deblurring_on_device(device: str) -> None:
    """Non-blind TV-discrepancy deconvolution on the device improves PSNR over the blurry input."""
    from ncvx_imaging.deblurring import gaussian_kernel
    from ncvx_imaging.deblurring.nonblind import deconv_tv_discrepancy
    from ncvx_imaging.deblurring.synthetic import make_blur_problem
    from ncvx_imaging.metrics import psnr

    P = make_blur_problem("camera", 32, gaussian_kernel(7, 1.5), 0.01, seed=3)
    out = deconv_tv_discrepancy(P.y.to(device), P.k.to(device), P.sigma, maxit=80)
    assert out.x.device.type == torch.device(device).type
    assert psnr(out.x.cpu(), P.x) > psnr(P.y, P.x) + 1.0


def _check_bounds_on_device(device: str) -> None:
    """Nonnegative least squares with ``bounds=`` on the device, against scipy's NNLS."""
    import scipy.optimize

    g = torch.Generator().manual_seed(3)
    A64 = torch.randn(120, 80, generator=g, dtype=torch.float64)
    b64 = torch.randn(120, generator=g, dtype=torch.float64)
    x_star, rnorm = scipy.optimize.nnls(A64.numpy(), b64.numpy())
    A, b = A64.to(device), b64.to(device)

    def fn(x):
        r = A @ x - b
        return 0.5 * (r * r).sum(), None, None

    res = ncvx.solve(fn, torch.zeros(80, dtype=torch.float64, device=device),
                     bounds=(0.0, None), limited_mem_size=10, print_level=0)
    assert res.x.device.type == torch.device(device).type
    assert res.final.f == pytest.approx(0.5 * rnorm**2, rel=1e-10)
    torch.testing.assert_close(res.x.cpu(), torch.from_numpy(x_star), atol=1e-6, rtol=0)


def _check_compressed_jacobian(device: str) -> None:
    """Column-compressed Jacobians (double backward on the device) equal the batched ones, and
    an SVM solved with them matches the CPU solve."""
    from ncvx.problem.binding import DictBinding
    from ncvx.problem.evaluator import Evaluator
    from ncvx.problem.variables import VariableLayout

    g = torch.Generator().manual_seed(5)
    m, d = 800, 6
    X = torch.randn(m, d, generator=g, dtype=torch.float64).to(device)
    y = torch.where(torch.rand(m, generator=g) < 0.5, -1.0, 1.0).to(torch.float64).to(device)

    def fn(v):
        margin = 1 - v["zeta"] - y * (X @ v["w"] + v["b"])
        return 0.5 * (v["w"] ** 2).sum() + v["zeta"].sum() / m, [margin, -v["zeta"]], None

    shapes = {"w": [d], "b": [1], "zeta": [m]}
    evs = [
        Evaluator(
            fn,
            DictBinding(VariableLayout.from_shapes(shapes), lambda v: v),
            dtype=torch.float64,
            device=torch.device(device),
            jacobian=mode,
        )
        for mode in ("auto", "batched")
    ]
    for k in range(3):
        x = torch.randn(d + 1 + m, generator=g, dtype=torch.float64).to(device)
        a, b = (ev.evaluate(x, first=k == 0) for ev in evs)
        a.ensure_gradients()
        b.ensure_gradients()
        torch.testing.assert_close(a.J_i, b.J_i, rtol=1e-14, atol=1e-14)
    assert evs[0].n_compressed == 4 and a.J_i.device.type == torch.device(device).type
    x0 = {"w": torch.zeros(d, dtype=torch.float64), "b": torch.zeros(1, dtype=torch.float64),
          "zeta": torch.ones(m, dtype=torch.float64)}
    res = ncvx.solve(fn, {k: v.to(device) for k, v in x0.items()}, maxit=200, print_level=0)
    X, y = X.cpu(), y.cpu()
    ref = ncvx.solve(fn, x0, maxit=200, print_level=0)
    assert res.final.f == pytest.approx(ref.final.f, rel=1e-6)


CHECKS = [
    _check_float32_lbfgs_closed_form,
    _check_constraint_tensor_matches_cpu,
    _check_nonsmooth_pygranso_api,
    _check_module_mode,
    _check_benchmark_problem_builds_on_device,
    _check_deblurring_on_device,
    _check_bounds_on_device,
    _check_compressed_jacobian,
]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("_check_"))
def test_on_cuda(check) -> None:
    check("cuda")


if __name__ == "__main__":  # dry run of the same bodies on the CPU
    for check in CHECKS:
        check("cpu")
        print("ok", check.__name__)
