"""Classical baselines recover small noiseless problems."""

import torch

from ncvx_imaging.phase_retrieval import (
    FarField,
    GaussianMeasurement,
    align_fourier,
    amplitude_flow,
    hio_er,
    orthogonality_init,
    random_start,
    relative_error_global_phase,
    spectral_init,
    support_from_autocorrelation,
    wirtinger_flow,
)


def problem(n, m, cplx, seed):
    model = GaussianMeasurement.random(m, n, complex_valued=cplx, seed=seed)
    g = torch.Generator().manual_seed(seed + 100)
    x = torch.randn(n, dtype=torch.float64, generator=g)
    if cplx:
        x = torch.complex(x, torch.randn(n, dtype=torch.float64, generator=g))
    return model, x, model(x)


def test_spectral_inits_correlate_with_truth():
    model, x, y = problem(16, 160, False, 0)
    for z in (spectral_init(model, y), orthogonality_init(model, y)):
        cos = abs(float(torch.dot(z, x))) / float(z.norm() * x.norm())
        assert cos > 0.8
    # the spectral scale estimates ||x||
    assert abs(float(spectral_init(model, y).norm() / x.norm()) - 1) < 0.3


def test_wirtinger_flow_recovers_real_and_complex():
    for cplx in (False, True):
        model, x, y = problem(16, 128, cplx, 1)
        res = wirtinger_flow(model, y, max_iter=3000)
        assert float(relative_error_global_phase(res.x, x)) < 1e-6
        assert res.history[-1] < res.history[0]


def test_amplitude_flows_recover():
    for variant in ("truncated", "reweighted"):
        for cplx in (False, True):
            model, x, y = problem(16, 96, cplx, 2)
            res = amplitude_flow(model, y, variant=variant, max_iter=1500)
            assert float(relative_error_global_phase(res.x, x)) < 1e-6, (variant, cplx)


def test_autocorrelation_support_size():
    ff = FarField((7, 5), (24, 24))
    obj = torch.rand(7, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(3)) + 0.1
    assert support_from_autocorrelation(ff(obj)) == (7, 5)


def test_hio_er_tight_support_recovers_nonnegative_object():
    ff = FarField((8, 8), (16, 16))
    g = torch.Generator().manual_seed(4)
    obj = torch.rand(8, 8, dtype=torch.float64, generator=g) + 0.2
    Y = ff(obj)
    support = ff.support_mask()
    starts = random_start(support, Y.sqrt(), num=4, real=True, generator=g)
    res = hio_er(Y.sqrt(), support, starts, hio_iters=300, er_iters=100, shrinkwrap_every=0)
    _, err = align_fourier(res.x, ff.pad(obj).expand(4, 16, 16))
    assert int((err < 1e-6).sum()) >= 2
    assert bool((res.x >= 0).all()) and bool((res.x[..., ~support] == 0).all())
    assert float(res.history[-1].min()) < 1e-6
