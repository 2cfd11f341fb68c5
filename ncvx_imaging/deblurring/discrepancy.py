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

__all__ = ["PROBE_SEED", "TauChoice", "select_tau_df", "select_tau_fixed_point", "tv_divergence"]

#: the probes of :func:`select_tau_fixed_point` come from a generator seeded ``PROBE_SEED + seed``:
#: seeded with ``seed`` alone (0) the first probe *was* the noise of
#: ``make_blur_problem(..., seed=0)`` (same generator, same draw), so the divergence was measured
#: along the noise itself — in the benchmark's 8 cases, for the session-3 rule too
PROBE_SEED = 1_000_003


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


def select_tau_fixed_point(
    y: torch.Tensor,
    k: torch.Tensor,
    sigma: float,
    probes: int = 3,
    iters: int = 800,
    seed: int = 0,
    factor: float = 2 ** 0.25,
    max_evals: int = 16,
    tau_min: float = 0.5,
    infeasible_rtol: float = 0.01,
    z: float = 2.0,
) -> TauChoice:
    """Solve the fixed point ``tau = 1 - df(tau) / N`` (module docstring) with safeguards, for the
    periodic blur model; no ground truth is used.

    Along the path of penalised TV solutions ``x_lam`` (primal-dual, warm-started), going down
    from the textbook weight (misfit ratio 1) by steps of ``factor``, two truth-free quantities
    are tracked with the same ``probes`` random directions at every weight (common random
    numbers make both smooth in ``lam``; independent single probes made the plain iteration
    and a SURE grid wander, session 3):

    - the fixed-point gap ``h = 1 - df/N - ratio`` (``ratio`` = misfit / (sigma^2 N), the ``tau``
      whose constrained solution is ``x_lam``): negative at the textbook weight, growing as
      ``lam`` falls; its root is the fixed point;
    - Stein's unbiased estimate of the prediction risk ``||k * (x_lam - x)||^2``, per pixel and
      in units of ``sigma^2``: ``ratio - 1 + 2 df/N``.

    The walk stops at the first sign change of ``h`` (root interpolated linearly in ``log lam``)
    or once the risk estimate is more than ``z`` standard errors above its lowest value so far
    (the standard error from the spread of the ``probes`` divergence samples; the safeguard: where
    the gap approaches zero only tangentially, as for a 13 x 13 Gaussian blur at sigma 0.05 on
    128^2, its root lies deep in the noise-fitting range and the plain iteration over-shot; a
    plain "risk rose twice" stop was fooled by Monte-Carlo noise at 64^2).
    The answer is the root if it comes first, else the risk minimum (a parabola through the
    three lowest-risk weights in ``log lam``); it is solved once more there. Further safeguards:
    ``tau`` never below ``tau_min`` (the walk stops there); ``max_evals`` weights at most, and if
    the walk ends there (or at ``tau_min``) with neither a root nor a risk minimum behind it,
    ``tau = 1`` is kept (seen with an under-estimated ``sigma``: 64^2, 13 x 13 Gaussian, true
    sigma 0.05, estimate 0.0472 — 16 weights, no root, the risk still falling, and the last
    weight gave 13 dB); a bound that no image in the box ``[0, 1]`` meets (``sigma``
    under-estimated further: the textbook solve already ends above it) keeps ``tau = 1``. ``history`` lists ``(tau, lam,
    df_per_pixel)`` per weight, the chosen one last (its ``df`` NaN)."""
    import math

    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    if y.dim() != 2 or k.dim() != 2:
        raise ValueError(f"y and k must be 2-D, got {tuple(y.shape)} and {tuple(k.shape)}")
    if probes < 2 or factor <= 1 or max_evals < 2 or z <= 0:
        raise ValueError(f"need probes >= 2, factor > 1, max_evals >= 2, z > 0, got "
                         f"{probes}, {factor}, {max_evals}, {z}")
    N = y.numel()
    kk = k.to(y.dtype)
    x1, lam1 = tv_deconv_discrepancy_reference(y, k, sigma * N**0.5, iters=iters)
    ratio1 = float(((conv_circular(x1, kk) - y) ** 2).sum()) / (sigma**2 * N)
    if ratio1 > 1 + infeasible_rtol:  # no image in the box fits the data this closely
        return TauChoice(tau=1.0, lam=lam1, x=x1, history=[(1.0, lam1, float("nan"))])
    gen = torch.Generator(device="cpu").manual_seed(PROBE_SEED + seed)
    dirs = [torch.randn(y.shape, generator=gen, dtype=y.dtype).to(y.device) for _ in range(probes)]
    eps = 0.1 * sigma
    state: dict[str, torch.Tensor] = {}
    cur = {"x": x1}
    hist: list[tuple[float, float, float]] = []

    def solve(lam: float) -> tuple[float, torch.Tensor]:
        x = tv_deconv(y, kk, lam, iters=iters, x0=cur["x"], state=state)
        cur["x"] = x
        return float(((conv_circular(x, kk) - y) ** 2).sum()) / (sigma**2 * N), x

    def evaluate(lam: float) -> tuple[float, float, float, torch.Tensor]:
        ratio, x = solve(lam)
        dual = dict(state)
        dfs = []
        for b in dirs:
            xb = tv_deconv(y + eps * b, kk, lam, iters=iters, x0=x, state=dict(dual))
            dfs.append(float((b * conv_circular(xb - x, kk)).sum()) / eps / N)
        d = torch.tensor(dfs, dtype=torch.float64)
        df, se = float(d.mean()), 2 * float(d.std()) / probes**0.5  # risk = ... + 2 df
        hist.append((ratio, lam, df))
        return ratio, df, se, x

    us: list[float] = []
    gaps: list[float] = []
    risks: list[float] = []
    xs: list[torch.Tensor] = []
    u = math.log(lam1)
    pick: float | None = None
    while len(us) < max_evals:
        ratio, df, se, x = evaluate(math.exp(u))
        us.append(u)
        gaps.append(1 - df - ratio)
        risks.append(ratio - 1 + 2 * df)
        xs.append(x)
        if gaps[-1] >= 0:  # the fixed point lies between the last two weights
            if len(us) == 1:
                pick = u
            else:
                g0, g1 = gaps[-2], gaps[-1]
                pick = us[-2] + (us[-1] - us[-2]) * g0 / (g0 - g1)
            break
        if risks[-1] > min(risks) + z * se or ratio < tau_min:
            break
        u -= math.log(factor)
    if pick is None:  # no root before the risk minimum (or the budget): the risk minimum
        i = min(range(len(risks)), key=risks.__getitem__)
        if len(risks) > 1 and i == len(risks) - 1:
            # the risk was still falling where the walk ended (budget or tau_min) without a
            # root: nothing was bracketed -- the textbook tau (happens with an under-estimated
            # sigma, where the walk starts deep in the noise-fitting range)
            hist.append((1.0, lam1, float("nan")))
            return TauChoice(tau=1.0, lam=lam1, x=x1, history=hist)
        if 0 < i < len(risks) - 1:
            a, b, c = risks[i - 1], risks[i], risks[i + 1]
            den = a - 2 * b + c
            off = 0.5 * (a - c) / den if den > 0 else 0.0
            pick = us[i] - off * math.log(factor)  # us decrease by log(factor) per step
        else:
            pick = us[i]
    if pick in us:
        j = us.index(pick)
        tau, x = hist[j][0], xs[j]
    else:
        tau, x = solve(math.exp(pick))
    lam = math.exp(pick)
    if tau < tau_min:
        tau = tau_min
    tau = min(tau, 1.0)
    hist.append((tau, lam, float("nan")))
    return TauChoice(tau=tau, lam=lam, x=x, history=hist)
