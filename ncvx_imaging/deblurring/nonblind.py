"""Non-blind deconvolution with a discrepancy constraint, solved by ncvx.

    minimise   TV(x) / N
    subject to ||k * x - y||^2 / (tau sigma^2 N) - 1 <= 0          (data misfit at the noise level)
               || (x - 1)_+ + (-x)_+ ||_2 <= 0                     (0 <= x <= 1, folded)

No regularisation weight: the noise level ``sigma`` (known, or estimated by
:func:`~ncvx_imaging.deblurring.estimate_noise_sigma`) sets how far the fit may be from the data
(Morozov's discrepancy principle; ``tau`` = 1 is the textbook choice; ``tau="df"`` lowers it by the
estimate's degrees of freedom, :mod:`.discrepancy`). With ``box="fold"`` the box is folded into one
constraint (the l2 norm of the positive parts of the violations, :func:`ncvx.fold.box`), keeping the QPs
ncvx solves tiny. By default the box is given to ncvx as native simple bounds instead
(``box="bounds"``), which was measured to reach the optimum where the folded box stalls.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch

import ncvx

from .noise import estimate_noise_sigma
from .operators import conv_circular, conv_valid
from .regularizers import total_variation

__all__ = ["DeconvResult", "box_violation", "deconv_tv_discrepancy"]


def box_violation(x: torch.Tensor, lo: float = 0.0, hi: float = 1.0) -> torch.Tensor:
    """Folded box constraint: the l2 norm of all box violations, ``||(x - hi)_+ + (lo - x)_+||_2``
    (zero iff ``lo <= x <= hi``); :func:`ncvx.fold.box` when available, else the same inline."""
    try:
        from ncvx.fold import box
    except ImportError:  # older ncvx without the fold module
        return torch.linalg.vector_norm(torch.relu(x - hi) + torch.relu(lo - x))
    return box(x, lo, hi, kind="l2")


@dataclass
class DeconvResult:
    """Estimate ``x`` (``(H, W)``), the (last) ncvx result and bookkeeping: seconds, misfit
    ratio, total iterations and the number of restarts used."""

    x: torch.Tensor
    result: Any
    seconds: float
    sigma: float
    misfit_ratio: float
    iterations: int = 0
    restarts: int = 0
    tau: float = 1.0
    tau_choice: Any = None


def deconv_tv_discrepancy(
    y: torch.Tensor,
    k: torch.Tensor,
    sigma: float | None = None,
    tau: float | str = 1.0,
    boundary: str = "circular",
    x0: torch.Tensor | None = None,
    maxit: int = 500,
    limited_mem_size: int = 20,
    callback: Any = None,
    restarts: int = 3,
    tau_options: dict[str, Any] | None = None,
    box: str = "bounds",
    **options: Any,
) -> DeconvResult:
    """Solve the discrepancy-constrained TV problem above with ncvx (L-BFGS-SQP).

    Args:
        y: blurry, noisy image ``(h, w)``. With ``boundary="valid"`` the unknown is larger,
            ``(h + kh - 1, w + kw - 1)``.
        k: blur kernel ``(kh, kw)`` (nonnegative, sums to one).
        sigma: noise standard deviation; ``None`` estimates it from ``y``.
        tau: misfit allowance factor (1 = discrepancy principle), or ``"df"``: the fixed point
            ``tau = 1 - df / N`` with the risk safeguard,
            :func:`~ncvx_imaging.deblurring.discrepancy.select_tau_fixed_point` (session 5), or
            ``"df1"``: one fixed-point update from tau = 1,
            :func:`~ncvx_imaging.deblurring.discrepancy.select_tau_df` (the session-3 rule);
            periodic boundary only; the choice is in ``tau_choice``; ``tau_options`` are passed
            to the selector). The bound is tighter than at ``tau = 1``;
            starting ncvx from the ``tau = 1`` answer (``x0=``) reaches the optimum more
            closely than a cold start at 128^2 (measured, ``docs/deblurring.md``).
        box: how ``0 <= x <= 1`` is imposed: ``"bounds"`` (ncvx's native simple bounds, the
            default: iterates stay in the box, the start is clamped into it) or ``"fold"`` (one
            folded nonsmooth constraint). Measured on the benchmark's 8 cases, the native bounds
            reach the primal-dual optimum (TV within 0.6 %) in all of them at both tau, where the
            folded box stopped up to 9 % above it (``docs/deblurring.md``).
        boundary: ``"circular"`` or ``"valid"`` blur model.
        x0: start (default: ``y``, edge-padded for ``"valid"``).
        maxit, limited_mem_size, callback, options: passed to :func:`ncvx.solve` (``ngrad``
            defaults to 20 here: the stationarity measure's cost grows with it, and on this
            problem the run ends at ``maxit`` anyway; it does not change the iterates).
        restarts: when ncvx stops early at a line-search failure (codes 6-8) with iterations
            left, start it again from its answer (fresh L-BFGS memory, last penalty parameter),
            at most this many times; ``maxit`` bounds the total.
    """
    if y.dim() != 2 or k.dim() != 2:
        raise ValueError(f"y and k must be 2-D, got {tuple(y.shape)} and {tuple(k.shape)}")
    if boundary not in ("circular", "valid"):
        raise ValueError(f"boundary must be 'circular' or 'valid', got {boundary!r}")
    if sigma is None:
        sigma = float(estimate_noise_sigma(y))
    choice = None
    t_sel = time.perf_counter()
    if isinstance(tau, str):
        if tau not in ("df", "df1"):
            raise ValueError(f"tau must be a positive number, 'df' or 'df1', got {tau!r}")
        if boundary != "circular":
            raise ValueError(f"tau={tau!r} needs boundary='circular'")
        if sigma <= 0:
            raise ValueError(f"sigma must be positive, got {sigma}")
        from .discrepancy import select_tau_df, select_tau_fixed_point

        rule = select_tau_fixed_point if tau == "df" else select_tau_df
        choice = rule(y, k, sigma, **(tau_options or {}))
        tau = choice.tau
    t_sel = time.perf_counter() - t_sel
    if sigma <= 0 or tau <= 0:
        raise ValueError(f"sigma and tau must be positive, got {sigma}, {tau}")
    k = k.to(y.dtype)
    kh, kw = k.shape
    if boundary == "circular":
        blur = conv_circular
        start = y.clone() if x0 is None else x0
    else:
        blur = conv_valid
        pad = (kw // 2, kw - 1 - kw // 2, kh // 2, kh - 1 - kh // 2)
        start = (
            torch.nn.functional.pad(y[None, None], pad, mode="replicate")[0, 0]
            if x0 is None
            else x0
        )
    if box not in ("fold", "bounds"):
        raise ValueError(f"box must be 'fold' or 'bounds', got {box!r}")
    N = y.numel()
    bound = tau * sigma**2 * N
    n_img = start.numel()
    native = box == "bounds"

    def fn(v: Any) -> tuple[torch.Tensor, torch.Tensor, None]:
        x = v["x"] if native else v
        r = blur(x, k) - y
        misfit = (r**2).sum() / bound - 1
        ci = misfit.reshape(1) if native else torch.stack([misfit, box_violation(x)])
        return total_variation(x) / n_img, ci, None

    opts = {"print_level": 0, "opt_tol": 1e-8, "viol_ineq_tol": 1e-6, "ngrad": 20}
    if native:
        opts["bounds"] = (0.0, 1.0)
        start = start.clamp(0, 1)
    opts.update(options)

    def pack(x: torch.Tensor) -> Any:
        return {"x": x} if native else x

    t0 = time.perf_counter()
    res = ncvx.solve(
        fn, pack(start), maxit=maxit, limited_mem_size=limited_mem_size, callback=callback, **opts
    )
    used = res.iters
    n_restarts = 0
    for _ in range(restarts):
        if int(res.status) not in (6, 7, 8) or used >= maxit:
            break
        again = ncvx.solve(
            fn, pack(res.x.reshape(start.shape)), maxit=maxit - used, limited_mem_size=limited_mem_size,
            callback=callback, mu0=res.mu, **opts,
        )
        used += again.iters
        n_restarts += 1
        if again.iters == 0:
            break
        res = again
    secs = time.perf_counter() - t0 + t_sel  # including the choice of tau
    x = res.x.reshape(start.shape).to(y.dtype)
    ratio = float(((blur(x, k) - y) ** 2).sum() / (sigma**2 * N))
    return DeconvResult(x=x, result=res, seconds=secs, sigma=sigma, misfit_ratio=ratio,
                        iterations=used, restarts=n_restarts, tau=float(tau), tau_choice=choice)
