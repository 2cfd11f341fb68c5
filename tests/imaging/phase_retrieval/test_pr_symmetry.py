"""Canonicalisation maps every orbit to one representative."""

import math

import pytest
import torch

from ncvx_imaging.phase_retrieval import FarField, relative_error_fourier
from ncvx_imaging.symmetry import (
    canonical_fourier,
    canonical_global_phase,
    canonical_sign,
    conj_flip,
)


def test_sign_orbit_and_half_space():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 5, dtype=torch.float64, generator=g)
    x[:5, 0] = 0.0  # ties on the first coordinate fall through to the next one
    c = canonical_sign(x)
    torch.testing.assert_close(canonical_sign(-x), c)
    torch.testing.assert_close(canonical_sign(c), c)
    first = c[torch.arange(200), (c != 0).to(torch.int64).argmax(1)]
    assert bool((first > 0).all())
    assert bool(((c == x).all(1) | (c == -x).all(1)).all())
    with pytest.raises(TypeError):
        canonical_sign(torch.ones(3, dtype=torch.complex64))


def test_global_phase_orbit():
    g = torch.Generator().manual_seed(1)
    x = torch.complex(
        torch.randn(50, 5, generator=g, dtype=torch.float64),
        torch.randn(50, 5, generator=g, dtype=torch.float64),
    )
    ph = torch.exp(1j * 2 * math.pi * torch.rand(50, 1, generator=g, dtype=torch.float64))
    torch.testing.assert_close(canonical_global_phase(x * ph), canonical_global_phase(x))
    c = canonical_global_phase(x)
    assert float(c[:, 0].imag.abs().max()) < 1e-12 and bool((c[:, 0].real > 0).all())


@pytest.mark.parametrize("cplx", [False, True])
def test_fourier_orbit_maps_to_one_representative(cplx):
    g = torch.Generator().manual_seed(2)
    ff = FarField((6, 5), (16, 16))
    obj = torch.rand(8, 6, 5, dtype=torch.float64, generator=g)
    if cplx:
        obj = obj * torch.exp(1j * torch.rand(8, 6, 5, dtype=torch.float64, generator=g))
    x = ff.pad(obj)
    rep = canonical_fourier(x)
    torch.testing.assert_close(canonical_fourier(rep), rep)  # idempotent
    for k in range(6):
        shift = (
            int(torch.randint(-8, 8, (1,), generator=g)),
            int(torch.randint(-8, 8, (1,), generator=g)),
        )
        z = torch.roll(conj_flip(x) if k % 2 else x, shift, (-2, -1))
        z = -z if not cplx else z * torch.exp(torch.tensor(0.3j * (k + 1), dtype=torch.complex128))
        if not cplx:
            z = z.real
        torch.testing.assert_close(canonical_fourier(z), rep)
    # the representative is in the orbit (same data, zero aligned error)
    assert float(relative_error_fourier(rep, x).max()) < 1e-12
    torch.testing.assert_close(ff.linear(obj).abs(), torch.fft.fft2(rep, norm="ortho").abs())
