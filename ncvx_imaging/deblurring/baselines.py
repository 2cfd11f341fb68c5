"""Classical non-blind deconvolution baselines (periodic blur model), for side-by-side runs.

- :func:`wiener` — the Wiener filter with a constant noise-to-signal ratio.
- :func:`tv_deconv` — ``min 0.5 ||k * x - y||^2 + lam TV(x)`` over ``0 <= x <= 1`` by the
  primal-dual method of Chambolle and Pock (2011).
- :func:`tv_deconv_constrained` — ``min TV(x)`` s.t. ``||k * x - y||_2 <= eps``, ``0 <= x <= 1``,
  the same method (a reference solution for the ncvx formulation).
- :func:`oracle_tune` — pick a parameter on a log grid by PSNR against the ground truth (the
  'oracle-tuned' upper bound a practitioner cannot reach without the truth).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ..metrics import psnr
from .operators import conv_circular, conv_circular_adjoint, kernel_otf
from .regularizers import gradient, gradient_adjoint

__all__ = ["oracle_tune", "tv_deconv", "tv_deconv_constrained", "wiener"]


def wiener(y: torch.Tensor, k: torch.Tensor, nsr: float) -> torch.Tensor:
    """``x = F^-1[ conj(K) Y / (|K|^2 + nsr) ]`` for periodic blur; ``y`` is ``(..., H, W)``."""
    if nsr < 0:
        raise ValueError(f"nsr must be >= 0, got {nsr}")
    otf = kernel_otf(k.to(y.dtype), (y.shape[-2], y.shape[-1]))
    X = otf.conj() * torch.fft.fft2(y) / (otf.abs() ** 2 + nsr)
    return torch.fft.ifft2(X).real


def _pdhg(
    y: torch.Tensor,
    k: torch.Tensor,
    prox_data_dual: Callable[[torch.Tensor, float], torch.Tensor],
    tv_weight: float,
    iters: int,
    x0: torch.Tensor | None,
    box: tuple[float, float] | None,
) -> torch.Tensor:
    """Chambolle-Pock for ``min_x F(Ax) + tv_weight TV(x) + box(x)`` with ``K = [A; grad]``."""
    k = k.to(y.dtype)
    x = (y.clone() if x0 is None else x0.clone()).to(y.dtype)
    xbar = x.clone()
    p = torch.zeros_like(y)
    q = torch.zeros_like(gradient(y))
    L2 = 1.0 + 8.0  # ||A|| <= ||k||_1 = 1 for a simplex kernel, ||grad||^2 <= 8
    s = t = 0.99 / L2**0.5
    for _ in range(iters):
        p = prox_data_dual(p + s * conv_circular(xbar, k), s)
        q = q + s * gradient(xbar)
        nq = torch.linalg.vector_norm(q, dim=-3, keepdim=True)
        q = q / torch.clamp(nq / tv_weight, min=1.0)
        x_new = x - t * (conv_circular_adjoint(p, k) + gradient_adjoint(q))
        if box is not None:
            x_new = x_new.clamp(*box)
        xbar = 2 * x_new - x
        x = x_new
    return x


def tv_deconv(
    y: torch.Tensor,
    k: torch.Tensor,
    lam: float,
    iters: int = 1500,
    x0: torch.Tensor | None = None,
    box: tuple[float, float] | None = (0.0, 1.0),
) -> torch.Tensor:
    """``argmin 0.5 ||k * x - y||^2 + lam TV(x)`` (periodic blur, optional box)."""
    if lam <= 0:
        raise ValueError(f"lam must be positive, got {lam}")

    def prox(v: torch.Tensor, s: float) -> torch.Tensor:  # conjugate of 0.5||. - y||^2
        return (v - s * y) / (1 + s)

    return _pdhg(y, k, prox, lam, iters, x0, box)


def tv_deconv_constrained(
    y: torch.Tensor,
    k: torch.Tensor,
    eps: float,
    iters: int = 3000,
    x0: torch.Tensor | None = None,
    box: tuple[float, float] | None = (0.0, 1.0),
) -> torch.Tensor:
    """``argmin TV(x)`` s.t. ``||k * x - y||_2 <= eps`` (periodic blur, optional box)."""
    if eps <= 0:
        raise ValueError(f"eps must be positive, got {eps}")

    def prox(v: torch.Tensor, s: float) -> torch.Tensor:  # conjugate of the ball indicator
        u = v / s - y
        n = torch.linalg.vector_norm(u)
        proj = y + u * torch.clamp(eps / n, max=1.0)
        return v - s * proj

    return _pdhg(y, k, prox, 1.0, iters, x0, box)


def oracle_tune(
    solve: Callable[[float], torch.Tensor],
    truth: torch.Tensor,
    grid: Sequence[float],
    refine: int = 4,
) -> tuple[float, torch.Tensor, float]:
    """Best parameter by PSNR against ``truth``: a log grid, then ``refine`` golden-section steps
    (on the log scale) around the best grid point. Returns ``(param, estimate, psnr)``."""
    import math

    if len(grid) < 2:
        raise ValueError("grid needs at least two values")
    cache: dict[float, tuple[torch.Tensor, float]] = {}

    def score(v: float) -> float:
        if v not in cache:
            est = solve(v)
            cache[v] = (est, float(psnr(est.clamp(0, 1), truth)))
        return cache[v][1]

    vals = sorted(float(g) for g in grid)
    scores = [score(v) for v in vals]
    i = max(range(len(vals)), key=scores.__getitem__)
    lo = math.log(vals[max(i - 1, 0)])
    hi = math.log(vals[min(i + 1, len(vals) - 1)])
    g = (5**0.5 - 1) / 2
    for _ in range(refine):
        a = hi - g * (hi - lo)
        b = lo + g * (hi - lo)
        if score(math.exp(a)) >= score(math.exp(b)):
            hi = b
        else:
            lo = a
    best = max(cache, key=lambda v: cache[v][1])
    return best, cache[best][0], cache[best][1]
