"""Classical non-blind deconvolution baselines (periodic blur model), for side-by-side runs.

- :func:`wiener` — the Wiener filter with a constant noise-to-signal ratio.
- :func:`tv_deconv` — ``min 0.5 ||k * x - y||^2 + lam TV(x)`` over ``0 <= x <= 1`` by the
  primal-dual method of Chambolle and Pock (2011).
- :func:`tv_deconv_constrained` — ``min TV(x)`` s.t. ``||k * x - y||_2 <= eps``, ``0 <= x <= 1``,
  the same method (a reference solution for the ncvx formulation).
- :func:`tv_deconv_discrepancy_reference` — the constrained problem's solution through the penalised
  one: a root search on ``lam`` until the misfit of :func:`tv_deconv` matches the bound (the
  penalised primal-dual iteration converges far faster than the constrained one).
- :func:`oracle_tune` — pick a parameter on a log grid by PSNR against the ground truth (the
  'oracle-tuned' upper bound a practitioner cannot reach without the truth).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ..metrics import psnr
from .operators import conv_circular, conv_circular_adjoint, kernel_otf
from .regularizers import gradient, gradient_adjoint

__all__ = [
    "oracle_tune",
    "tv_deconv",
    "tv_deconv_constrained",
    "tv_deconv_discrepancy_reference",
    "wiener",
]


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
    state: dict[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Chambolle-Pock for ``min_x F(Ax) + tv_weight TV(x) + box(x)`` with ``K = [A; grad]``.
    ``state`` (a dict, updated in place) carries the dual variables between calls: passing the
    same dict again continues the iteration (a full warm start, e.g. along a path in ``lam``)."""
    k = k.to(y.dtype)
    x = (y.clone() if x0 is None else x0.clone()).to(y.dtype)
    xbar = x.clone()
    if state and "p" in state:
        p, q = state["p"].clone(), state["q"].clone()
    else:
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
    if state is not None:
        state.update(p=p, q=q)
    return x


def tv_deconv(
    y: torch.Tensor,
    k: torch.Tensor,
    lam: float,
    iters: int = 1500,
    x0: torch.Tensor | None = None,
    box: tuple[float, float] | None = (0.0, 1.0),
    state: dict[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """``argmin 0.5 ||k * x - y||^2 + lam TV(x)`` (periodic blur, optional box); ``state``: dual
    warm start, see :func:`_pdhg`."""
    if lam <= 0:
        raise ValueError(f"lam must be positive, got {lam}")

    def prox(v: torch.Tensor, s: float) -> torch.Tensor:  # conjugate of 0.5||. - y||^2
        return (v - s * y) / (1 + s)

    return _pdhg(y, k, prox, lam, iters, x0, box, state)


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


def tv_deconv_discrepancy_reference(
    y: torch.Tensor,
    k: torch.Tensor,
    eps: float,
    iters: int = 800,
    rtol: float = 2e-3,
    max_evals: int = 30,
    lam0: float | None = None,
    x0: torch.Tensor | None = None,
    box: tuple[float, float] | None = (0.0, 1.0),
) -> tuple[torch.Tensor, float]:
    """``argmin TV(x)`` s.t. ``||k * x - y||_2 <= eps`` (periodic blur, optional box), computed as
    the penalised solution :func:`tv_deconv` whose misfit equals ``eps`` (Lagrange duality: the
    constraint is active at the optimum when ``eps`` is below the misfit of a constant image).

    The misfit grows with ``lam``; the root of ``log(||k*x_lam - y||^2 / eps^2)`` in ``log lam`` is
    bracketed by factors of 4 from ``lam0`` (default ``0.1 eps / sqrt(N)``, about a tenth of the
    noise level) and refined by the Illinois false-position rule, each solve warm-started from the
    last (``iters`` primal-dual iterations), until ``|ratio - 1| <= rtol``. Returns ``(x, lam)``.
    """
    import math

    if eps <= 0:
        raise ValueError(f"eps must be positive, got {eps}")
    kk = k.to(y.dtype)
    x = x0
    u = math.log(0.1 * eps / y.numel() ** 0.5 if lam0 is None else lam0)
    best: tuple[float, torch.Tensor, float] | None = None

    state: dict[str, torch.Tensor] = {}

    def h(u_: float) -> float:
        nonlocal x, best
        x = tv_deconv(y, kk, math.exp(u_), iters=iters, x0=x, box=box, state=state)
        r = float(((conv_circular(x, kk) - y) ** 2).sum()) / eps**2
        if best is None or abs(r - 1) < best[0]:
            best = (abs(r - 1), x, math.exp(u_))
        return math.log(max(r, 1e-300))

    evals = 1
    hu = h(u)
    step = math.log(4.0) * (-1.0 if hu > 0 else 1.0)
    a, ha = u, hu
    b, hb = u, hu
    while ha * hb > 0 and evals < max_evals and abs(hb) > rtol:  # bracket
        a, ha = b, hb
        b = b + step
        hb = h(b)
        evals += 1
    side = 0
    while evals < max_evals and min(abs(ha), abs(hb)) > rtol and ha * hb < 0:
        c = b - hb * (b - a) / (hb - ha)
        hc = h(c)
        evals += 1
        if hc * hb < 0:
            a, ha = b, hb
            side = 0
        else:
            if side == 1:
                ha /= 2  # Illinois: halve the stale end's value
            side = 1
        b, hb = c, hc
    assert best is not None
    return best[1], best[2]


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
