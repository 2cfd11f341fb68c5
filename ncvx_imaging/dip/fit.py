"""Fitting a deep image prior ``x = G_theta(z)`` to data ``y = A(x) + noise``.

- :func:`fit_dip_ncvx` — through :func:`ncvx.solve_module` (L-BFGS-SQP over the weights):
  ``mode="mse"`` is plain DIP, ``min ||A(G(z)) - y||^2 / N``; ``mode="discrepancy"`` is the
  constrained DIP

      minimise   R(G(z))                      (TV per pixel by default)
      subject to ||A(G(z)) - y||^2 / (tau sigma^2 N) - 1 <= 0,

  whose answer cannot over-fit the noise (the misfit may not go below what the noise level
  allows while R keeps pulling), so the last iterate is a good answer and no early stopping is
  needed.
- :func:`fit_dip_adam` — the plain DIP recipe (Adam on the MSE) as the baseline.

Both record per-iteration PSNR against a reference when one is given (for plots only).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

import ncvx

from ..metrics import psnr

__all__ = ["DIPFit", "fit_dip_adam", "fit_dip_ncvx", "image_from_flat"]

Operator = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class DIPFit:
    """Final image ``(H, W)``, per-iteration PSNR (when a reference was given), seconds, and the
    ncvx result (ncvx mode) or ``None`` (Adam)."""

    image: torch.Tensor
    psnr: list[float] = field(default_factory=list)
    seconds: float = 0.0
    result: Any = None
    iterations: int = 0


def image_from_flat(net: nn.Module, z: torch.Tensor, flat: torch.Tensor) -> torch.Tensor:
    """``G(z)`` with the weights given as one flat vector (``net.parameters()`` order)."""
    params: dict[str, torch.Tensor] = {}
    off = 0
    for name, p in net.named_parameters():
        params[name] = flat[off : off + p.numel()].view_as(p).to(p.dtype)
        off += p.numel()
    if off != flat.numel():
        raise ValueError(f"flat vector has {flat.numel()} entries, the network {off}")
    with torch.no_grad():
        return functional_call(net, params, (z,))[0, 0]


def fit_dip_ncvx(
    net: nn.Module,
    z: torch.Tensor,
    y: torch.Tensor,
    forward_op: Operator,
    mode: str = "discrepancy",
    sigma: float | None = None,
    tau: float = 1.0,
    regularizer: Callable[[torch.Tensor], torch.Tensor] | None = None,
    maxit: int = 500,
    limited_mem_size: int = 10,
    reference: torch.Tensor | None = None,
    callback: Callable[[Any], Any] | None = None,
    **options: Any,
) -> DIPFit:
    """Fit ``net`` (output ``(1, 1, H, W)`` from input ``z``) with ncvx; see the module doc.

    Args:
        forward_op: ``A``, maps an ``(H, W)`` image to data of ``y``'s shape.
        mode: ``"mse"`` (plain DIP) or ``"discrepancy"`` (needs ``sigma``).
        regularizer: ``R(image) -> scalar`` (default: TV per pixel) for the discrepancy mode.
        reference: ground truth for the PSNR record (not used by the fit).
        callback: extra ncvx callback (e.g. an :class:`~ncvx_imaging.dip.ESWMV` with
            ``image_fn``), called after the PSNR record.
    """
    from ..deblurring.regularizers import total_variation

    if mode not in ("mse", "discrepancy"):
        raise ValueError(f"mode must be 'mse' or 'discrepancy', got {mode!r}")
    if mode == "discrepancy" and (sigma is None or sigma <= 0):
        raise ValueError("mode='discrepancy' needs a positive sigma")
    N = y.numel()
    if regularizer is None:

        def regularizer(img: torch.Tensor) -> torch.Tensor:
            return total_variation(img) / img.numel()

    def fn(module: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None, None]:
        img = module(z)[0, 0]
        r = forward_op(img) - y
        if mode == "mse":
            return (r**2).sum() / N, None, None
        return regularizer(img), (r**2).sum() / (tau * sigma**2 * N) - 1, None

    scores: list[float] = []

    def cb(record: Any) -> Any:
        if reference is not None:
            img = image_from_flat(net, z, record.point.x)
            scores.append(float(psnr(img.to(reference.dtype), reference)))
        return callback(record) if callback is not None else None

    opts = {"print_level": 0, "opt_tol": 1e-10}
    opts.update(options)
    net.train()
    t0 = time.perf_counter()
    res = ncvx.solve_module(
        net, fn, maxit=maxit, limited_mem_size=limited_mem_size, callback=cb, **opts
    )
    secs = time.perf_counter() - t0
    with torch.no_grad():
        img = net(z)[0, 0].detach()
    return DIPFit(image=img, psnr=scores, seconds=secs, result=res, iterations=res.iters)


def fit_dip_adam(
    net: nn.Module,
    z: torch.Tensor,
    y: torch.Tensor,
    forward_op: Operator,
    iters: int = 1500,
    lr: float = 0.01,
    reference: torch.Tensor | None = None,
    callback: Callable[[torch.Tensor, int], Any] | None = None,
) -> DIPFit:
    """Plain DIP: Adam on ``||A(G(z)) - y||^2 / N`` for ``iters`` steps (no early stopping unless
    ``callback(image, iteration)`` returns True, e.g. ``lambda im, i: es.update(im)``)."""
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    N = y.numel()
    scores: list[float] = []
    net.train()
    t0 = time.perf_counter()
    img = net(z)[0, 0]
    it = 0
    for it in range(iters):
        opt.zero_grad(set_to_none=True)
        img = net(z)[0, 0]
        loss = ((forward_op(img) - y) ** 2).sum() / N
        loss.backward()
        cur = img.detach()
        if reference is not None:
            scores.append(float(psnr(cur.to(reference.dtype), reference)))
        if callback is not None and callback(cur, it):
            break
        opt.step()
    secs = time.perf_counter() - t0
    return DIPFit(image=img.detach(), psnr=scores, seconds=secs, iterations=it + 1)
