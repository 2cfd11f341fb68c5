"""Blind deconvolution with an over-specified kernel size and a noise-level misfit bound (ncvx).

Model: ``y = k * x + n`` with the 'valid' blur (``y`` is ``(h, w)``, the latent image ``x`` is
``(h + kh - 1, w + kw - 1)``, so nothing is assumed outside the photograph), and

    minimise   ||grad x||_1 / ||grad x||_2                  (scale-invariant sparsity ratio)
    subject to ||k * x - y||^2 / (tau sigma^2 N) - 1 <= 0     (misfit at the noise level)
               ||(-k)_+||_2 <= 0,  sum(k) - 1 = 0            (k on the probability simplex)
               ||(x - 1)_+||_2 + ||(-x)_+||_2 <= 0           (0 <= x <= 1)

over pixels ``x`` and ``k`` (the specified kernel size may exceed the true one; any extra support
should come out zero). ``sigma`` may be estimated from ``y``. The recovered pair is defined only up
to a translation (``k`` one way, ``x`` the other): evaluate with
:func:`ncvx_imaging.metrics.psnr_aligned`.

A generator option (``x = G_x(z_x)``, ``k = G_k(z_k)`` from :mod:`ncvx_imaging.dip`) keeps the same
constraints with the networks' weights as variables: :func:`blind_deblur_dip`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

import ncvx

from .kernels import gaussian_kernel, pad_kernel
from .noise import estimate_noise_sigma
from .nonblind import box_violation
from .operators import conv_valid
from .regularizers import l1_over_l2
from .simplex import project_simplex

__all__ = [
    "BlindResult",
    "blind_deblur",
    "blind_problem",
    "crop_latent",
    "crop_latent_centred",
    "drop_small_pieces",
    "kernel_pieces",
    "pad_latent",
]


@dataclass
class BlindResult:
    """Latent image ``x`` (``(h + kh - 1, w + kw - 1)``), kernel ``k`` (``(kh, kw)``), the ncvx
    result, seconds, the noise level used, and the final misfit ratio ``||k*x-y||^2/(sigma^2 N)``.

    ``k`` is always exactly on the simplex: a solver's answer is projected onto it and
    ``kernel_projection`` records how far that moved it (l2; 0 when it was feasible)."""

    x: torch.Tensor
    k: torch.Tensor
    result: Any
    seconds: float
    sigma: float
    misfit_ratio: float
    kernel_projection: float = 0.0

    @property
    def image(self) -> torch.Tensor:
        """The latent image cropped to the size of ``y`` (aligned with ``y``'s pixels)."""
        return crop_latent(self.x, tuple(self.k.shape))


def pad_latent(y: torch.Tensor, kernel_shape: tuple[int, int]) -> torch.Tensor:
    """Edge-replicate ``y`` ``(h, w)`` to the latent size ``(h + kh - 1, w + kw - 1)``."""
    kh, kw = kernel_shape
    pad = (kw // 2, kw - 1 - kw // 2, kh // 2, kh - 1 - kh // 2)
    return F.pad(y[None, None], pad, mode="replicate")[0, 0]


def crop_latent(x: torch.Tensor, kernel_shape: tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`pad_latent`'s geometry: the ``(h, w)`` part of ``x`` under ``y``."""
    kh, kw = kernel_shape
    H, W = x.shape[-2:]
    return x[..., kh // 2 : H - (kh - 1 - kh // 2), kw // 2 : W - (kw - 1 - kw // 2)]


def crop_latent_centred(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """The ``(h, w)`` part of the latent image ``x`` (``(h + kh - 1, w + kw - 1)``) that lines up
    with ``y`` once the kernel ``k`` is moved so that its centre of mass is at the centre of its
    support (nearest pixel): the blind problem fixes ``k * x`` only, so an off-centre kernel
    shifts the estimate by as much as ``(kh - 1) / 2`` pixels. :func:`crop_latent` uses the
    support's centre instead; both agree for a centred kernel."""
    if k.dim() != 2 or x.dim() < 2:
        raise ValueError(f"need a 2-D kernel and an image, got {tuple(k.shape)}, {tuple(x.shape)}")
    kh, kw = k.shape
    H, W = x.shape[-2:]
    w = k.clamp_min(0)
    tot = w.sum()
    if float(tot) <= 0:
        raise ValueError("kernel has no positive mass")
    r = float((w.sum(1) * torch.arange(kh, dtype=w.dtype, device=w.device)).sum() / tot)
    c = float((w.sum(0) * torch.arange(kw, dtype=w.dtype, device=w.device)).sum() / tot)
    # y[i] = sum_a k[a] x[i + kh - 1 - a]: mass at row r puts y's row 0 at latent row kh - 1 - r
    r0 = min(max(kh - 1 - round(r), 0), kh - 1)
    c0 = min(max(kw - 1 - round(c), 0), kw - 1)
    return x[..., r0 : r0 + H - kh + 1, c0 : c0 + W - kw + 1]


def blind_problem(
    y: torch.Tensor,
    sigma: float,
    tau: float = 1.0,
    box: bool = True,
    interior: bool = True,
    kernel_scale: float = 1.0,
) -> Any:
    """``fn(v) -> (f, ci, ce)`` for ncvx with ``v = {"x": latent image, "k": kernel}``.

    ``interior``: measure the sparsity ratio on the part of ``x`` under ``y`` only (the outer band
    is seen through few kernel taps; left in, it invites fake strong edges that lower the ratio).
    ``kernel_scale``: the variable ``v["k"]`` is ``kernel_scale * k`` (a change of units that
    balances the curvature in ``k`` against the curvature in ``x`` for the quasi-Newton method).
    """
    N = y.numel()
    bound = tau * sigma**2 * N

    def fn(v: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict, torch.Tensor]:
        x, k = v["x"], v["k"] / kernel_scale
        r = conv_valid(x, k) - y
        ci = {
            "misfit": (r**2).sum() / bound - 1,
            "k_nonneg": torch.linalg.vector_norm(torch.relu(-k)),
        }
        if box:
            ci["x_box"] = box_violation(x)
        ce = k.sum() - 1
        inner = crop_latent(x, tuple(k.shape)) if interior else x
        return l1_over_l2(inner) / (2 * inner.numel()) ** 0.5, ci, ce

    return fn


def blind_deblur(
    y: torch.Tensor,
    kernel_size: int | tuple[int, int],
    sigma: float | None = None,
    tau: float = 1.0,
    k0: torch.Tensor | None = None,
    x0: torch.Tensor | None = None,
    init_sd: float | None = None,
    maxit: int = 1000,
    limited_mem_size: int = 20,
    box: bool = True,
    kernel_scale: float | None = None,
    callback: Any = None,
    **options: Any,
) -> BlindResult:
    """Blind deblurring of ``y`` (``(h, w)``) with a ``kernel_size`` kernel (may be over-sized).

    Args:
        sigma: noise level; ``None`` estimates it from ``y`` (Donoho's wavelet MAD).
        tau: misfit allowance factor.
        k0: start kernel (default: a centred Gaussian of sd ``init_sd``, default ``kh / 10``).
        x0: start latent image (default: ``y`` edge-padded).
        kernel_scale: units of the kernel variable (default ``sqrt(h * w)``); see
            :func:`blind_problem`.
        maxit, limited_mem_size, callback, options: passed to :func:`ncvx.solve`.
    """
    if y.dim() != 2:
        raise ValueError(f"y must be (h, w), got {tuple(y.shape)}")
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    if kh < 1 or kw < 1 or kh > y.shape[0] or kw > y.shape[1]:
        raise ValueError(f"kernel size {(kh, kw)} invalid for a {tuple(y.shape)} image")
    if sigma is None:
        sigma = float(estimate_noise_sigma(y))
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    if k0 is None:
        sd = init_sd if init_sd is not None else max(min(kh, kw) / 10, 0.5)
        m = min(kh, kw) // 2 * 2 + 1
        k0 = pad_kernel(gaussian_kernel(m, sd, dtype=y.dtype), (kh, kw)).to(y.device)
    if x0 is None:
        x0 = pad_latent(y, (kh, kw))
    ks = float(y.numel()) ** 0.5 if kernel_scale is None else float(kernel_scale)
    fn = blind_problem(y, sigma, tau, box, kernel_scale=ks)
    opts = {"print_level": 0, "opt_tol": 1e-8, "viol_ineq_tol": 1e-6, "viol_eq_tol": 1e-6}
    opts.update(options)
    t0 = time.perf_counter()
    res = ncvx.solve(
        fn,
        {"x": x0.to(y), "k": ks * k0.to(y)},
        maxit=maxit,
        limited_mem_size=limited_mem_size,
        callback=callback,
        **opts,
    )
    secs = time.perf_counter() - t0
    v = ncvx.unflatten(res)
    x = v["x"].reshape(x0.shape)
    k_raw = v["k"].reshape(k0.shape) / ks
    k = project_simplex(k_raw)
    ratio = float(((conv_valid(x, k) - y) ** 2).sum() / (sigma**2 * y.numel()))
    return BlindResult(
        x=x, k=k, result=res, seconds=secs, sigma=sigma, misfit_ratio=ratio,
        kernel_projection=float((k - k_raw).norm()),
    )


def kernel_pieces(k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The 8-connected pieces of the positive entries of a kernel ``k`` (``(s, t)``): returns
    ``(labels, ids, masses)`` — an ``(s, t)`` float64 CPU label map (0 off the pieces), the piece
    labels and each piece's fraction of the total positive mass. Labels spread by repeated 3 x 3
    max-pooling (no Python loop over pixels)."""
    if k.dim() != 2:
        raise ValueError(f"k must be a 2-D kernel, got {tuple(k.shape)}")
    w = k.detach().clamp_min(0).to("cpu", torch.float64)
    tot = float(w.sum())
    if tot <= 0:
        raise ValueError("kernel has no positive mass")
    s, t = w.shape
    on = w > 0
    lab = torch.where(on, torch.arange(1, s * t + 1, dtype=torch.float64).reshape(s, t),
                      torch.zeros(s, t, dtype=torch.float64))
    while True:
        grown = F.max_pool2d(lab[None, None], 3, stride=1, padding=1)[0, 0]
        grown = torch.where(on, grown, torch.zeros_like(grown))
        if torch.equal(grown, lab):
            break
        lab = grown
    ids = torch.unique(lab[on])
    masses = torch.stack([w[lab == i].sum() for i in ids]) / tot
    return lab, ids, masses


def drop_small_pieces(k: torch.Tensor, min_mass: float) -> torch.Tensor:
    """``k`` with its 8-connected pieces of positive entries that carry less than ``min_mass`` of
    the mass set to zero (the heaviest piece is always kept), renormalised to sum 1. A blur is a
    connected path; isolated specks are what a kernel fit makes of noise and of weak image
    gradients (smooth pictures). Same shape, dtype and device as ``k``."""
    if not 0.0 <= min_mass < 1.0:
        raise ValueError(f"min_mass must be in [0, 1), got {min_mass}")
    lab, ids, masses = kernel_pieces(k)
    keep = torch.isin(lab, ids[(masses >= min_mass) | (masses == masses.max())])
    out = torch.where(keep.to(k.device), k.clamp_min(0), torch.zeros_like(k))
    return out / out.sum()


def _odd(v: float) -> int:
    return max(round(v) // 2 * 2 + 1, 1)


def _resize(t: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(t[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]


def blind_deblur_multiscale(
    y: torch.Tensor,
    kernel_size: int,
    sigma: float | None = None,
    tau: float = 1.0,
    levels: int | None = None,
    maxit: int | tuple[int, ...] = 300,
    min_kernel: int = 5,
    callback_level: Any = None,
    **kwargs: Any,
) -> BlindResult:
    """Coarse-to-fine :func:`blind_deblur`: solve on ``y`` averaged over ``2^l x 2^l`` blocks
    (noise level ``sigma / 2^l``, kernel size about ``kernel_size / 2^l``) first, then upsample the
    latent image and the kernel as the start of the next finer level.

    Args:
        levels: number of coarse levels below full resolution (default: as many as keep the
            coarsest kernel at least ``min_kernel`` pixels and the image at least 16 pixels).
        maxit: iterations per level (one int for all, or one per level, coarsest first).
        callback_level: ``callback_level(level, BlindResult)`` after each level (for logging).
        kwargs: passed to :func:`blind_deblur` at every level.
    """
    if y.dim() != 2:
        raise ValueError(f"y must be (h, w), got {tuple(y.shape)}")
    if sigma is None:
        sigma = float(estimate_noise_sigma(y))
    if levels is None:
        levels = 0
        while (
            _odd(kernel_size / 2 ** (levels + 1)) >= min_kernel
            and min(y.shape) // 2 ** (levels + 1) >= 16
        ):
            levels += 1
    its = (maxit,) * (levels + 1) if isinstance(maxit, int) else tuple(maxit)
    if len(its) != levels + 1:
        raise ValueError(f"maxit needs {levels + 1} entries (one per level), got {len(its)}")
    x_prev: torch.Tensor | None = None
    k_prev: torch.Tensor | None = None
    out: BlindResult | None = None
    for i, lev in enumerate(range(levels, -1, -1)):
        f = 2**lev
        y_l = F.avg_pool2d(y[None, None], f)[0, 0] if f > 1 else y
        ks = kernel_size if lev == 0 else _odd(kernel_size / f)
        if x_prev is None or k_prev is None:
            x0 = k0 = None
        else:
            k0 = _resize(k_prev, (ks, ks)).clamp_min(0)
            k0 = k0 / k0.sum()
            x0 = pad_latent(_resize(crop_latent(x_prev, tuple(k_prev.shape)), tuple(y_l.shape)), (ks, ks))
        out = blind_deblur(y_l, ks, sigma / f, tau, k0=k0, x0=x0, maxit=its[i], **kwargs)
        if callback_level is not None:
            callback_level(lev, out)
        x_prev, k_prev = out.x, out.k
    assert out is not None
    return out


def latent_step(
    y: torch.Tensor,
    k: torch.Tensor,
    sigma: float,
    tau: float = 1.0,
    x0: torch.Tensor | None = None,
    maxit: int = 50,
    limited_mem_size: int = 20,
    **options: Any,
) -> tuple[torch.Tensor, Any]:
    """The image step with ``k`` fixed: ``min ||grad x||_1/||grad x||_2`` (on the part under
    ``y``) s.t. the misfit bound and ``0 <= x <= 1``, by ncvx. Returns ``(x, ncvx result)``."""
    N = y.numel()
    bound = tau * sigma**2 * N
    kshape = tuple(k.shape)

    def fn(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        r = conv_valid(x, k) - y
        inner = crop_latent(x, kshape)
        ci = torch.stack([(r**2).sum() / bound - 1, box_violation(x)])
        return l1_over_l2(inner) / (2 * inner.numel()) ** 0.5, ci, None

    start = pad_latent(y, kshape) if x0 is None else x0
    opts = {"print_level": 0, "opt_tol": 1e-8, "viol_ineq_tol": 1e-6}
    opts.update(options)
    res = ncvx.solve(fn, start, maxit=maxit, limited_mem_size=limited_mem_size, **opts)
    return res.x.reshape(start.shape).to(y.dtype), res


def blind_deblur_am(
    y: torch.Tensor,
    kernel_size: int,
    sigma: float | None = None,
    tau: float = 1.0,
    levels: int | None = None,
    outer: int = 8,
    x_maxit: int = 40,
    k_iters: int = 150,
    final_maxit: int = 300,
    min_kernel: int = 5,
    init_sd: float = 1.0,
    kernel_threshold: float = 0.05,
    min_piece: float = 0.0,
    x0: torch.Tensor | None = None,
    k0: torch.Tensor | None = None,
    callback_level: Any = None,
) -> BlindResult:
    """Coarse-to-fine alternating blind deblurring.

    At each level (``y`` averaged over ``2^l x 2^l`` blocks, noise ``sigma / 2^l``, kernel about
    ``kernel_size / 2^l``) alternate ``outer`` times: the constrained image step
    (:func:`latent_step`, ncvx) and the kernel step, a least-squares fit of the image gradients on
    the simplex (:func:`~ncvx_imaging.deblurring.simplex.fit_kernel_simplex`). Upsample to the next
    level; at full resolution, finish with a longer image step (``final_maxit``).
    After each kernel step, entries below ``kernel_threshold`` times the largest are zeroed and the
    kernel renormalised (the usual clean-up that keeps an over-sized support empty); with
    ``min_piece > 0`` the kernel's connected pieces holding less than that fraction of the mass
    are cleared too (:func:`drop_small_pieces`; the blind pipeline uses 0.05).
    ``x0``/``k0`` (full-resolution latent image and a ``kernel_size`` kernel, e.g. from a
    double-DIP run) start the alternation at full resolution instead (``levels`` is then 0).
    """
    from .simplex import fit_kernel_simplex

    if y.dim() != 2:
        raise ValueError(f"y must be (h, w), got {tuple(y.shape)}")
    if sigma is None:
        sigma = float(estimate_noise_sigma(y))
    if (x0 is None) != (k0 is None):
        raise ValueError("give both x0 and k0, or neither")
    if not 0.0 <= min_piece < 1.0:
        raise ValueError(f"min_piece must be in [0, 1), got {min_piece}")
    if x0 is not None:
        levels = 0
    if levels is None:
        levels = 0
        while (
            _odd(kernel_size / 2 ** (levels + 1)) >= min_kernel
            and min(y.shape) // 2 ** (levels + 1) >= 16
        ):
            levels += 1
    t0 = time.perf_counter()
    x: torch.Tensor | None = None if x0 is None else x0.to(y).clone()
    k: torch.Tensor | None = None if k0 is None else project_simplex(k0.to(y))
    res: Any = None
    for lev in range(levels, -1, -1):
        f = 2**lev
        y_l = F.avg_pool2d(y[None, None], f)[0, 0] if f > 1 else y
        ks = kernel_size if lev == 0 else _odd(kernel_size / f)
        if x is None or k is None:
            m = min(ks, 7) // 2 * 2 + 1
            k = pad_kernel(gaussian_kernel(m, init_sd, dtype=y.dtype), (ks, ks)).to(y.device)
            x = pad_latent(y_l, (ks, ks))
        else:
            inner = _resize(crop_latent(x, tuple(k.shape)), tuple(y_l.shape))
            x = pad_latent(inner, (ks, ks))
            k_up = _resize(k, (ks, ks)).clamp_min(0)
            k = k_up / k_up.sum()
        for _ in range(outer):
            x, res = latent_step(y_l, k, sigma / f, tau, x0=x, maxit=x_maxit)
            k = fit_kernel_simplex(x, y_l, k, iters=k_iters)
            if kernel_threshold > 0:
                k = torch.where(k >= kernel_threshold * k.max(), k, torch.zeros_like(k))
                k = k / k.sum()
            if min_piece > 0:
                k = drop_small_pieces(k, min_piece)
        if callback_level is not None:
            ratio = float(((conv_valid(x, k) - y_l) ** 2).sum() / ((sigma / f) ** 2 * y_l.numel()))
            callback_level(lev, BlindResult(x, k, res, time.perf_counter() - t0, sigma / f, ratio))
    assert x is not None and k is not None
    x, res = latent_step(y, k, sigma, tau, x0=x, maxit=final_maxit)
    ratio = float(((conv_valid(x, k) - y) ** 2).sum() / (sigma**2 * y.numel()))
    return BlindResult(x, k, res, time.perf_counter() - t0, sigma, ratio)
