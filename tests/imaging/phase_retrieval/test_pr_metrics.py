"""Metrics remove exactly the trivial ambiguities and nothing else."""

import pytest
import torch

from ncvx_imaging.phase_retrieval import (
    align_fourier,
    align_global_phase,
    psnr,
    relative_error_fourier,
    relative_error_global_phase,
    success,
)


def cplx(shape, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.complex(
        torch.randn(shape, dtype=torch.float64, generator=g),
        torch.randn(shape, dtype=torch.float64, generator=g),
    )


def twin(x):
    return torch.roll(torch.flip(x, (-2, -1)), (1, 1), (-2, -1)).conj()


def test_global_sign_and_phase():
    x = torch.randn(4, 10, dtype=torch.float64)
    assert float(relative_error_global_phase(-x, x).max()) == 0.0
    z = cplx((4, 10), 1)
    rot = z * torch.exp(1j * torch.tensor([0.3, 1.0, -2.0, 3.0], dtype=torch.float64)).unsqueeze(1)
    assert float(relative_error_global_phase(rot, z).max()) < 1e-14
    torch.testing.assert_close(align_global_phase(rot, z), z)
    # a genuinely different signal is not forgiven
    assert float(relative_error_global_phase(z.flip(-1), z).min()) > 0.5


@pytest.mark.parametrize("shift", [(0, 0), (3, -5), (-7, 2)])
@pytest.mark.parametrize("flip", [False, True])
def test_fourier_alignment_invariances(shift, flip):
    x = torch.zeros(2, 16, 16, dtype=torch.complex128)
    x[..., 4:10, 5:12] = cplx((2, 6, 7), 2)
    z = twin(x) if flip else x
    z = torch.roll(z, shift, (-2, -1)) * torch.exp(torch.tensor(1.234j, dtype=torch.complex128))
    aligned, err = align_fourier(z, x)
    assert float(err.max()) < 1e-12
    torch.testing.assert_close(aligned, x)


def test_fourier_real_and_no_flip_option():
    x = torch.zeros(12, 12, dtype=torch.float64)
    x[3:8, 2:6] = torch.rand(5, 4, dtype=torch.float64)
    z = -torch.roll(twin(x).real, (2, 3), (0, 1))
    aligned, err = align_fourier(z, x)
    assert not aligned.is_complex() and float(err) < 1e-12
    assert float(relative_error_fourier(z, x, allow_flip=False)) > 0.1
    other = torch.zeros_like(x)
    other[3:8, 2:6] = torch.rand(5, 4, dtype=torch.float64)
    assert float(relative_error_fourier(other, x)) > 0.1


def test_psnr_and_success():
    x = torch.ones(2, 8, 8, dtype=torch.float64)
    z = x + 0.1
    torch.testing.assert_close(psnr(z, x), torch.full((2,), 20.0, dtype=torch.float64))
    flags = success(torch.tensor([1e-5, 1e-1, float("nan")]), 1e-4)
    assert flags.tolist() == [True, False, False]
    with pytest.raises(ValueError):
        success(torch.tensor([0.0]), 0.0)
