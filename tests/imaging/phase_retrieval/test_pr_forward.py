"""Forward models against explicit matrices, adjoint identities, gradients, noise models."""

import math

import pytest
import torch

from ncvx_imaging.phase_retrieval import (
    CodedDiffraction,
    FarField,
    GaussianMeasurement,
    gaussian_noise,
    poisson_noise,
)


def dft_matrix(n: int) -> torch.Tensor:
    k = torch.arange(n, dtype=torch.float64)
    return torch.exp(-2j * math.pi * torch.outer(k, k) / n) / math.sqrt(n)


def rand(shape, cplx, gen, dtype=torch.float64):
    x = torch.randn(shape, dtype=dtype, generator=gen)
    if cplx:
        x = torch.complex(x, torch.randn(shape, dtype=dtype, generator=gen))
    return x


@pytest.mark.parametrize("cplx", [False, True])
def test_gaussian_matches_matrix_and_batches(cplx):
    gen = torch.Generator().manual_seed(0)
    model = GaussianMeasurement.random(12, 5, complex_valued=cplx, seed=1)
    x = rand((3, 5), cplx, gen)
    y = model(x)
    for b in range(3):
        expected = (model.A @ x[b]).abs() ** 2
        torch.testing.assert_close(y[b], expected)
    assert y.dtype == torch.float64 and y.shape == (3, 12)


@pytest.mark.parametrize("cplx", [False, True])
def test_gaussian_adjoint_identity(cplx):
    gen = torch.Generator().manual_seed(2)
    model = GaussianMeasurement.random(9, 4, complex_valued=True, seed=3)
    x, z = rand(4, True, gen), rand(9, True, gen)
    lhs = torch.vdot(z, model.linear(x))
    rhs = torch.vdot(model.adjoint(z), x)
    torch.testing.assert_close(lhs, rhs)


def test_gaussian_float32_and_errors():
    model = GaussianMeasurement.random(6, 3, dtype=torch.float32, seed=0)
    assert model(torch.ones(3)).dtype == torch.float32
    with pytest.raises(ValueError, match="last dimension"):
        model(torch.ones(4))
    with pytest.raises(ValueError, match="2-D"):
        GaussianMeasurement(torch.ones(3))


def test_farfield_matches_kron_dft():
    gen = torch.Generator().manual_seed(4)
    ff = FarField((3, 2), (6, 5), offset=(1, 2))
    x = rand((3, 2), True, gen)
    padded = torch.zeros(6, 5, dtype=torch.complex128)
    padded[1:4, 2:4] = x
    F = dft_matrix(6) @ padded @ dft_matrix(5).T  # 2-D unitary DFT
    torch.testing.assert_close(ff.linear(x), F)
    torch.testing.assert_close(ff(x), F.abs() ** 2)
    assert ff.oversampling == pytest.approx(5.0)
    # Parseval: total intensity equals the object energy
    torch.testing.assert_close(ff(x).sum(), x.abs().square().sum())


def test_farfield_adjoint_and_ambiguities():
    gen = torch.Generator().manual_seed(5)
    ff = FarField((4, 4), oversampling=4)
    assert ff.field_shape == (8, 8)
    x, z = rand((2, 4, 4), True, gen), rand((2, 8, 8), True, gen)
    torch.testing.assert_close((z.conj() * ff.linear(x)).sum(), (ff.adjoint(z).conj() * x).sum())
    field = ff.pad(x[0])
    Y = torch.fft.fft2(field, norm="ortho").abs() ** 2
    shifted = torch.roll(field, (3, -2), (0, 1))
    twin = torch.roll(torch.flip(field, (0, 1)), (1, 1), (0, 1)).conj()
    for other in (shifted, twin, 1j * field):
        torch.testing.assert_close(torch.fft.fft2(other, norm="ortho").abs() ** 2, Y)


def test_farfield_bad_input():
    with pytest.raises(ValueError, match="smaller"):
        FarField((8, 8), (4, 8))
    with pytest.raises(ValueError, match="outside"):
        FarField((4, 4), (8, 8), offset=(6, 0))
    with pytest.raises(ValueError, match="end with shape"):
        FarField((4, 4), (8, 8))(torch.ones(3, 4))


def test_coded_diffraction_matches_explicit():
    gen = torch.Generator().manual_seed(6)
    cdp = CodedDiffraction.random(3, (4, 5), seed=7)
    # octanary mask values: |d| in {1/sqrt 2, sqrt 3}, phase multiple of pi/2
    mags = cdp.masks.abs()
    ok = torch.isclose(mags, torch.tensor(2**-0.5, dtype=torch.float64)) | torch.isclose(
        mags, torch.tensor(3**0.5, dtype=torch.float64)
    )
    assert bool(ok.all())
    x = rand((4, 5), True, gen)
    y = cdp(x)
    assert y.shape == (3, 4, 5)
    for l in range(3):
        F = dft_matrix(4) @ (cdp.masks[l] * x) @ dft_matrix(5).T
        torch.testing.assert_close(y[l], F.abs() ** 2)
    z = rand((3, 4, 5), True, gen)
    torch.testing.assert_close((z.conj() * cdp.linear(x)).sum(), (cdp.adjoint(z).conj() * x).sum())


def test_intensity_gradient_gradcheck():
    ff = FarField((3, 3), (6, 6))
    x = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: ff(v), (x,))
    model = GaussianMeasurement.random(7, 3, complex_valued=True, seed=0)
    v = torch.randn(3, dtype=torch.complex128, requires_grad=True)
    assert torch.autograd.gradcheck(lambda u: model(u), (v,))


def test_wirtinger_gradient_formula():
    """The gradient of (1/4m) sum(|Az|^2 - y)^2 is the WF direction (1/m) A^H((|Az|^2 - y) Az)."""
    model = GaussianMeasurement.random(20, 4, complex_valued=True, seed=1)
    gen = torch.Generator().manual_seed(8)
    xt, z = rand(4, True, gen), rand(4, True, gen)
    y = model(xt)
    zr = z.clone().requires_grad_(True)
    f = ((model(zr) - y) ** 2).sum() / (4 * model.m)
    f.backward()
    Az = model.linear(z)
    wf = model.adjoint((Az.abs() ** 2 - y) * Az) / model.m
    # torch returns 2 df/d(conj z) for real f; df/d(conj z) = wf / 2 here
    torch.testing.assert_close(zr.grad, wf)


def test_noise_models():
    gen = torch.Generator().manual_seed(9)
    y = torch.rand(64, 64, dtype=torch.float64, generator=gen)
    yn = gaussian_noise(y, sigma=0.1, generator=torch.Generator().manual_seed(1))
    assert abs(float((yn - y).std()) - 0.1) < 0.01
    yn2 = gaussian_noise(y, snr_db=20.0, generator=torch.Generator().manual_seed(1))
    snr = 10 * math.log10(float(y.square().mean() / (yn2 - y).square().mean()))
    assert abs(snr - 20) < 0.5
    counts, _scale = poisson_noise(
        y, 1e5, generator=torch.Generator().manual_seed(2), return_counts=True
    )
    assert bool((counts == counts.round()).all())
    assert abs(float(counts.sum()) - 1e5) < 5 * math.sqrt(1e5)
    # fewer photons -> larger relative error
    errs = [
        float(
            (poisson_noise(y, p, generator=torch.Generator().manual_seed(3)) - y).norm() / y.norm()
        )
        for p in (1e3, 1e5, 1e7)
    ]
    assert errs[0] > errs[1] > errs[2]
    with pytest.raises(ValueError, match="exactly one"):
        gaussian_noise(y)
    with pytest.raises(ValueError, match="non-negative"):
        poisson_noise(y - 1, 10.0)


def test_poisson_amplitude_variance_matches_sampling():
    from ncvx_imaging.phase_retrieval import poisson_amplitude_variance

    rates = torch.tensor([0.0, 0.1, 1.0, 5.0, 49.0, 51.0, 1e4], dtype=torch.float64)
    ev = poisson_amplitude_variance(rates)
    assert float(ev[0]) == 0.0
    g = torch.Generator().manual_seed(11)
    c = torch.poisson(rates.expand(200_000, 7).contiguous(), generator=g)
    mc = (c.sqrt() - rates.sqrt()).square().mean(0)
    torch.testing.assert_close(ev, mc, atol=0.01, rtol=0.03)
    assert abs(float(ev[-1]) - 0.25) < 1e-3
    with pytest.raises(ValueError):
        poisson_amplitude_variance(-rates - 1)


@pytest.mark.cuda
def test_models_and_metrics_on_cuda_float32():
    from ncvx_imaging.phase_retrieval import align_fourier, relative_error_global_phase

    dev = torch.device("cuda")
    model = GaussianMeasurement.random(40, 8, complex_valued=True, dtype=torch.float32, device=dev)
    x = torch.randn(3, 8, dtype=torch.complex64, device=dev)
    y = model(x)
    assert y.device.type == "cuda" and y.dtype == torch.float32
    assert float(relative_error_global_phase(1j * x, x).max()) < 1e-5
    ff = FarField((8, 8), (16, 16))
    obj = torch.rand(2, 8, 8, device=dev)
    field = ff.pad(obj)
    Y = ff(obj)
    assert Y.device.type == "cuda"
    _, err = align_fourier(torch.roll(field, (3, 2), (-2, -1)), field)
    assert float(err.max()) < 1e-5
    cdp = CodedDiffraction.random(2, (8, 8), dtype=torch.float32, device=dev)
    assert cdp(obj).device.type == "cuda"
