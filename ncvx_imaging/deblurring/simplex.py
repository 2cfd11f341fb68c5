"""Euclidean projection onto the probability simplex and a simplex-constrained least-squares
kernel fit (the kernel step of alternating blind deconvolution)."""

from __future__ import annotations

import torch

from .operators import conv_valid, conv_valid_adjoint

__all__ = ["fit_kernel_simplex", "project_simplex"]


def project_simplex(v: torch.Tensor) -> torch.Tensor:
    """``argmin_{k >= 0, sum k = 1} ||k - v||_2`` over all entries of ``v`` (sort-based,
    Held-Wolfe-Crowder / Duchi et al. 2008)."""
    flat = v.reshape(-1)
    u, _ = torch.sort(flat, descending=True)
    css = torch.cumsum(u, 0) - 1
    idx = torch.arange(1, flat.numel() + 1, dtype=v.dtype, device=v.device)
    cond = u - css / idx > 0
    rho = int(torch.nonzero(cond).max())
    theta = css[rho] / (rho + 1)
    return torch.clamp(v - theta, min=0)


def _diffs(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return t[1:, :] - t[:-1, :], t[:, 1:] - t[:, :-1]


def fit_kernel_simplex(
    x: torch.Tensor,
    y: torch.Tensor,
    k0: torch.Tensor,
    iters: int = 200,
    gradient_domain: bool = True,
) -> torch.Tensor:
    """``argmin_k ||k * x - y||^2`` over the simplex ('valid' blur, ``x`` the latent image of
    size ``y.shape + k.shape - 1``), by FISTA with exact projections, from ``k0``.

    ``gradient_domain``: fit the finite differences of ``y`` instead of ``y`` (better conditioned,
    the usual choice for kernel estimation; Cho and Lee 2009, Krishnan et al. 2011).
    """
    pairs = list(zip(_diffs(x), _diffs(y))) if gradient_domain else [(x, y)]
    # Lipschitz constant: sum over pairs of max |FFT(x_i)|^2 (a bound via the full convolution)
    kh, kw = k0.shape
    L = sum(
        float(torch.fft.rfft2(a, s=(a.shape[0] + kh, a.shape[1] + kw)).abs().max() ** 2)
        for a, _ in pairs
    )
    k = project_simplex(k0)
    z = k.clone()
    t = 1.0
    for _ in range(iters):
        g = sum(_kernel_gradient(a, b, z) for a, b in pairs)
        k_new = project_simplex(z - g / L)
        t_new = (1 + (1 + 4 * t * t) ** 0.5) / 2
        z = k_new + (t - 1) / t_new * (k_new - k)
        k, t = k_new, t_new
    return k


def _kernel_gradient(x: torch.Tensor, y: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Gradient in ``k`` of ``0.5 ||k * x - y||^2`` ('valid' blur): the correlation of the
    residual with ``x``, i.e. the last ``(kh, kw)`` block of the full adjoint correlation."""
    kh, kw = k.shape
    H, W = x.shape
    full = conv_valid_adjoint(conv_valid(x, k) - y, x)
    return full[H - kh : H, W - kw : W]
