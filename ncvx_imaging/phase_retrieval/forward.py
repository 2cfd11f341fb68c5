"""Phase-retrieval forward models: Gaussian, coded diffraction and far-field Fourier.

Every model maps a signal ``x`` to intensities ``y = |L x|^2`` through a linear operator ``L``
(exposed as :meth:`linear` with its adjoint :meth:`adjoint`). Signals are batched over leading
dimensions, may be real or complex, and live on any device/dtype; intensities are real.
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "CodedDiffraction",
    "FarField",
    "GaussianMeasurement",
    "complex_dtype_for",
    "gaussian_matrix",
]


def complex_dtype_for(dtype: torch.dtype) -> torch.dtype:
    """Complex dtype matching a real (or complex) ``dtype``: float32 -> complex64 etc."""
    if dtype.is_complex:
        return dtype
    if dtype == torch.float64:
        return torch.complex128
    if dtype in (torch.float32, torch.float16, torch.bfloat16):
        return torch.complex64
    raise TypeError(f"no complex counterpart for dtype {dtype}")


def gaussian_matrix(
    m: int,
    n: int,
    *,
    complex_valued: bool = False,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """An ``(m, n)`` i.i.d. standard Gaussian matrix.

    Real entries are N(0, 1); complex entries are (N(0, 1) + i N(0, 1)) / sqrt(2), so that
    ``E|a_ij|^2 = 1`` in both cases. ``dtype`` is the *real* dtype (float32/float64).
    """
    if m <= 0 or n <= 0:
        raise ValueError(f"m and n must be positive, got m={m}, n={n}")
    if dtype.is_complex:
        raise TypeError("dtype must be a real floating dtype; use complex_valued=True")
    a = torch.randn(m, n, dtype=dtype, generator=generator)
    if complex_valued:
        b = torch.randn(m, n, dtype=dtype, generator=generator)
        a = torch.complex(a, b) / math.sqrt(2.0)
    return a.to(device) if device is not None else a


class GaussianMeasurement:
    """``y = |A x|^2`` for a Gaussian (or any given) matrix ``A`` of shape ``(m, n)``.

    ``x`` has shape ``(..., n)`` (real or complex); ``y`` has shape ``(..., m)`` and the real
    dtype of the computation.
    """

    def __init__(self, A: torch.Tensor) -> None:
        if not isinstance(A, torch.Tensor) or A.ndim != 2:
            raise ValueError("A must be a 2-D tensor of shape (m, n)")
        self.A = A

    @classmethod
    def random(
        cls,
        m: int,
        n: int,
        *,
        complex_valued: bool = False,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
        seed: int | None = None,
    ) -> GaussianMeasurement:
        """A fresh i.i.d. Gaussian model (see :func:`gaussian_matrix`), seeded if ``seed``."""
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        return cls(
            gaussian_matrix(
                m, n, complex_valued=complex_valued, dtype=dtype, device=device, generator=gen
            )
        )

    @property
    def m(self) -> int:
        return self.A.shape[0]

    @property
    def n(self) -> int:
        return self.A.shape[1]

    @property
    def is_complex(self) -> bool:
        return self.A.is_complex()

    def _check(self, x: torch.Tensor) -> None:
        if x.shape[-1] != self.n:
            raise ValueError(f"x must have last dimension n={self.n}, got shape {tuple(x.shape)}")

    def linear(self, x: torch.Tensor) -> torch.Tensor:
        """``A x`` batched over leading dims: ``(..., n) -> (..., m)``."""
        self._check(x)
        A = self.A
        if x.is_complex() and not A.is_complex():
            A = A.to(x.dtype)
        elif A.is_complex() and not x.is_complex():
            x = x.to(A.dtype)
        return x @ A.transpose(0, 1)

    def adjoint(self, z: torch.Tensor) -> torch.Tensor:
        """``A^H z``: ``(..., m) -> (..., n)``."""
        if z.shape[-1] != self.m:
            raise ValueError(f"z must have last dimension m={self.m}, got shape {tuple(z.shape)}")
        A = self.A
        if z.is_complex() and not A.is_complex():
            A = A.to(z.dtype)
        elif A.is_complex() and not z.is_complex():
            z = z.to(A.dtype)
        return z @ A.conj()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Intensities ``|A x|^2``, shape ``(..., m)``."""
        return self.linear(x).abs().square()


class FarField:
    """Far-field (Fraunhofer) CDI: ``Y = |F(pad(x))|^2`` with oversampling.

    The object ``x`` of shape ``(..., h, w)`` is zero-padded into a field of shape
    ``field_shape = (H, W)`` at ``offset`` (default: centred), and ``F`` is the unitary 2-D DFT
    (``norm="ortho"``, so the total intensity equals ``||x||^2``). The oversampling ratio is
    ``H W / (h w)``; unique recovery needs it above 2 (e.g. 64x64 in 128x128 gives 4).
    """

    def __init__(
        self,
        object_shape: tuple[int, int],
        field_shape: tuple[int, int] | None = None,
        *,
        oversampling: float | None = None,
        offset: tuple[int, int] | None = None,
    ) -> None:
        h, w = (int(s) for s in object_shape)
        if h <= 0 or w <= 0:
            raise ValueError(f"object_shape must be positive, got {object_shape}")
        if field_shape is None:
            if oversampling is None:
                oversampling = 4.0
            if oversampling < 1:
                raise ValueError(f"oversampling must be >= 1, got {oversampling}")
            s = math.sqrt(oversampling)
            field_shape = (math.ceil(h * s), math.ceil(w * s))
        elif oversampling is not None:
            raise ValueError("give either field_shape or oversampling, not both")
        H, W = (int(s) for s in field_shape)
        if h > H or w > W:
            raise ValueError(
                f"field_shape {field_shape} is smaller than object_shape {object_shape}"
            )
        if offset is None:
            offset = ((H - h) // 2, (W - w) // 2)
        r, c = (int(o) for o in offset)
        if r < 0 or c < 0 or r + h > H or c + w > W:
            raise ValueError(f"offset {offset} puts the object outside the field")
        self.object_shape = (h, w)
        self.field_shape = (H, W)
        self.offset = (r, c)

    @property
    def oversampling(self) -> float:
        return (self.field_shape[0] * self.field_shape[1]) / (
            self.object_shape[0] * self.object_shape[1]
        )

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """Embed ``(..., h, w)`` into a zero ``(..., H, W)`` field at the offset."""
        h, w = self.object_shape
        if tuple(x.shape[-2:]) != (h, w):
            raise ValueError(f"x must end with shape {(h, w)}, got {tuple(x.shape)}")
        H, W = self.field_shape
        r, c = self.offset
        return torch.nn.functional.pad(x, (c, W - w - c, r, H - h - r))

    def crop(self, field: torch.Tensor) -> torch.Tensor:
        """Adjoint of :meth:`pad`: the ``(h, w)`` window at the offset."""
        h, w = self.object_shape
        r, c = self.offset
        return field[..., r : r + h, c : c + w]

    def support_mask(
        self, dtype: torch.dtype = torch.bool, device: torch.device | str | None = None
    ) -> torch.Tensor:
        """``(H, W)`` mask of the object window."""
        m = torch.zeros(self.field_shape, dtype=torch.bool, device=device)
        h, w = self.object_shape
        r, c = self.offset
        m[r : r + h, c : c + w] = True
        return m.to(dtype)

    def linear(self, x: torch.Tensor) -> torch.Tensor:
        """``F(pad(x))``: ``(..., h, w) -> (..., H, W)`` complex."""
        return torch.fft.fft2(self.pad(x), norm="ortho")

    def adjoint(self, z: torch.Tensor) -> torch.Tensor:
        """``crop(F^H z)``: ``(..., H, W) -> (..., h, w)`` complex."""
        return self.crop(torch.fft.ifft2(z, norm="ortho"))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Intensities ``|F(pad(x))|^2``, shape ``(..., H, W)``, real."""
        return self.linear(x).abs().square()


class CodedDiffraction:
    """Coded diffraction patterns: ``y_l = |F(D_l x)|^2`` for ``L`` random masks ``D_l``.

    Masks follow Candès, Li and Soltanolkotabi (2015, "Phase retrieval from coded diffraction
    patterns"): entries ``b1 * b2`` with ``b1`` uniform on ``{1, -1, i, -i}`` and ``b2`` equal to
    ``1/sqrt(2)`` with probability 0.8 and ``sqrt(3)`` with probability 0.2 (octanary masks).
    ``x``: ``(..., h, w)``; ``y``: ``(..., L, h, w)``; ``F`` is the unitary 2-D DFT.
    """

    def __init__(self, masks: torch.Tensor) -> None:
        if not isinstance(masks, torch.Tensor) or masks.ndim != 3:
            raise ValueError("masks must be a tensor of shape (L, h, w)")
        self.masks = masks

    @classmethod
    def random(
        cls,
        num_masks: int,
        shape: tuple[int, int],
        *,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
        seed: int | None = None,
    ) -> CodedDiffraction:
        """``num_masks`` octanary masks of ``shape`` (complex of the real ``dtype``)."""
        if num_masks <= 0:
            raise ValueError(f"num_masks must be positive, got {num_masks}")
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        size = (num_masks, *shape)
        phases = torch.randint(0, 4, size, generator=gen)
        b1 = torch.polar(torch.ones(size, dtype=dtype), phases.to(dtype) * (math.pi / 2))
        big = torch.rand(size, generator=gen, dtype=dtype) < 0.2
        b2 = torch.where(big, torch.tensor(math.sqrt(3.0), dtype=dtype), 1 / math.sqrt(2.0))
        masks = b1 * b2
        return cls(masks.to(device) if device is not None else masks)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.masks.shape[1], self.masks.shape[2])

    def linear(self, x: torch.Tensor) -> torch.Tensor:
        """``F(D_l x)`` for every mask: ``(..., h, w) -> (..., L, h, w)``."""
        if tuple(x.shape[-2:]) != self.shape:
            raise ValueError(f"x must end with shape {self.shape}, got {tuple(x.shape)}")
        return torch.fft.fft2(x.unsqueeze(-3) * self.masks, norm="ortho")

    def adjoint(self, z: torch.Tensor) -> torch.Tensor:
        """``sum_l conj(D_l) F^H z_l``: ``(..., L, h, w) -> (..., h, w)``."""
        return (torch.fft.ifft2(z, norm="ortho") * self.masks.conj()).sum(dim=-3)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).abs().square()
