"""Choosing the misfit bound of the discrepancy principle without ground truth.

The textbook discrepancy principle asks ``||k * x - y||^2 = sigma^2 N``, the expected misfit of the
*true* image. A fitted estimate absorbs part of the noise: for an estimator ``x(y)`` with
``df = div_y (k * x(y))`` degrees of freedom, ``||k * x - y||^2 / (N - df)`` is the usual unbiased
estimate of ``sigma^2`` (the residual divided by the residual degrees of freedom). Requiring that
estimate to equal the known ``sigma^2`` gives the bound

    ||k * x - y||^2 <= tau sigma^2 N,    tau = 1 - df(x) / N,

a fixed point in ``tau`` (a smaller bound gives a rougher estimate with more degrees of freedom).
By default one step is taken from ``tau = 1``: ``df`` of the textbook discrepancy solution sets
``tau``. Iterating to the fixed point was measured to over-shoot where the misfit is flat in the
weight (13 x 13 Gaussian blur at sigma 0.05: ``df`` grows quickly as ``tau`` falls, and the
estimate breaks up into noise), see ``docs/deblurring.md``.
``df`` of the TV estimate is measured by a Monte-Carlo divergence (one random probe ``b``:
``df ~ b . (k * (x(y + e b) - x(y))) / e``, Ramani, Blu and Unser 2008) of the penalised
TV map at the weight that matches the bound (its Lagrange multiplier), solved by the primal-dual
method of :mod:`.baselines`. Nothing here looks at the true image.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .baselines import tv_deconv, tv_deconv_discrepancy_reference
from .operators import conv_circular

__all__ = ["TauChoice", "select_tau_df", "tv_divergence"]


def tv_divergence(
    y: torch.Tensor,
    k: torch.Tensor,
    lam: float,
    x: torch.Tensor,
    sigma: float,
    probes: int = 1,
    iters: int = 800,
    seed: int = 0,
) -> float:
    """Degrees of freedom per pixel, ``div_y (k * x_lam(y)) / N``, of the penalised TV map
    ``x_lam(y) = argmin 0.5 ||k * x - y||^2 + lam TV(x)`` (box [0, 1]), by finite differences
    along ``probes`` Gaussian directions with step ``0.1 sigma``; ``x`` is a (near) solution at
    ``y`` used as the warm start of both solves."""
    if probes < 1 or sigma <= 0:
        raise ValueError(f"probes must be >= 1 and sigma > 0, got {probes}, {sigma}")
    kk = k.to(y.dtype)
    eps = 0.1 * sigma
    state: dict[str, torch.Tensor] = {}
    x0 = tv_deconv(y, kk, lam, iters=iters, x0=x, state=state)
    p0 = dict(state)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    total = 0.0
    for _ in range(probes):
        b = torch.randn(y.shape, generator=gen, dtype=y.dtype).to(y.device)
        x1 = tv_deconv(y + eps * b, kk, lam, iters=iters, x0=x0, state=dict(p0))
        total += float((b * conv_circular(x1 - x0, kk)).sum()) / eps
    return total / probes / y.numel()


@dataclass
class TauChoice:
    """The selected ``tau``, the matching penalised weight ``lam`` and primal-dual estimate ``x``,
    and the history ``[(tau, lam, df_per_pixel), ...]`` of the fixed-point search."""

    tau: float
    lam: float
    x: torch.Tensor
    history: list[tuple[float, float, float]] = field(default_factory=list)


def select_tau_df(
    y: torch.Tensor,
    k: torch.Tensor,
    sigma: float,
    updates: int = 1,
    tau_min: float = 0.5,
    iters: int = 800,
    probes: int = 1,
    seed: int = 0,
    infeasible_rtol: float = 0.01,
) -> TauChoice:
    """``updates`` fixed-point steps ``tau <- 1 - df(tau) / N`` from ``tau = 1`` (see the module
    docstring) for the periodic blur model; ``tau`` is kept in ``[tau_min, 1]``. Returns the last
    ``tau`` with its matching ``lam`` and primal-dual image (solved at that ``tau``).

    A ``tau`` whose bound no image in the box ``[0, 1]`` can meet (the primal-dual misfit stays
    above ``tau (1 + infeasible_rtol)`` as the weight goes to zero; happens when ``sigma`` is an
    under-estimate) is rejected and the previous ``tau`` kept; ``history`` then ends with the
    rejected entry (its ``df`` NaN)."""
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    if y.dim() != 2 or k.dim() != 2:
        raise ValueError(f"y and k must be 2-D, got {tuple(y.shape)} and {tuple(k.shape)}")
    if updates < 0:
        raise ValueError(f"updates must be >= 0, got {updates}")
    N = y.numel()
    kk = k.to(y.dtype)
    tau, x, lam = 1.0, None, None
    prev: tuple[float, float, torch.Tensor] | None = None
    hist: list[tuple[float, float, float]] = []
    for it in range(updates + 1):
        x, lam = tv_deconv_discrepancy_reference(
            y, k, (tau * sigma**2 * N) ** 0.5, iters=iters, x0=x, lam0=lam
        )
        ratio = float(((conv_circular(x, kk) - y) ** 2).sum()) / (sigma**2 * N)
        if prev is not None and ratio > tau * (1 + infeasible_rtol):
            # no image in the box meets this bound (the weight went to zero and the misfit is
            # still above it): the bound is too tight, keep the last feasible tau
            hist.append((tau, lam, float("nan")))
            tau, lam, x = prev
            break
        if it == updates:
            hist.append((tau, lam, float("nan")))
            break
        df = tv_divergence(y, k, lam, x, sigma, probes=probes, iters=iters, seed=seed)
        hist.append((tau, lam, df))
        prev = (tau, lam, x)
        tau = min(max(1 - df, tau_min), 1.0)
    assert x is not None and lam is not None
    return TauChoice(tau=tau, lam=lam, x=x, history=hist)
