"""Blind deblurring with deep image priors: the constrained double-DIP formulation (on ncvx) and
the naive double-DIP baseline.

Constrained (:func:`blind_deblur_dip`): ``x = G(z)`` (a skip encoder-decoder, sigmoid output, of
the latent size ``(h + kh - 1, w + kw - 1)``) and a pixel kernel ``k`` of the (possibly
over-specified) size ``(kh, kw)``:

    minimise   ||grad x||_1 / ||grad x||_2        (on the part of x under y)
    subject to ||k * x - y||^2 / (tau sigma^2 N) - 1 <= 0,   ||(-k)_+||_2 <= 0,   sum(k) = 1

Run in two phases: (1) a warm-up that fits the data with Adam (the kernel projected onto the
simplex after every step) and stops as soon as the misfit reaches the noise level — the
discrepancy principle as a stopping rule, so the noise is never fitted; (2) ncvx (L-BFGS-SQP over
the network weights and the kernel pixels) on the constrained problem from there.

Naive double DIP (:func:`double_dip_naive`, the SelfDeblur recipe of Ren et al. 2020): the same
image generator, a fully connected kernel generator with a softmax output, Adam on the MSE for a
fixed number of iterations, no constraints and no knowledge of the noise level.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

import ncvx

from ..dip.generators import KernelMLP, make_input, small_skip
from .blind import crop_latent
from .kernels import gaussian_kernel, pad_kernel
from .noise import estimate_noise_sigma
from .operators import conv_valid
from .regularizers import l1_over_l2
from .simplex import project_simplex

__all__ = ["BlindDIP", "BlindDIPResult", "blind_deblur_dip", "double_dip_naive"]


@dataclass
class BlindDIPResult:
    """Latent image ``x``, kernel ``k``, seconds, iterations per phase, the ncvx result (or
    ``None``), the noise level used, the final misfit ratio, and a per-iteration log of
    ``(phase, iteration, misfit ratio)`` plus whatever ``monitor`` returned. ``k`` is exactly
    on the simplex (projected; ``kernel_projection`` is how far that moved the solver's answer)."""

    x: torch.Tensor
    k: torch.Tensor
    seconds: float
    iterations: dict[str, int]
    result: Any
    sigma: float
    misfit_ratio: float
    log: list[tuple] = field(default_factory=list)
    kernel_projection: float = 0.0

    @property
    def image(self) -> torch.Tensor:
        """The latent image cropped to the size of ``y``."""
        return crop_latent(self.x, tuple(self.k.shape))


class BlindDIP(nn.Module):
    """``x = G(z)`` and a pixel kernel ``k = k_var / kernel_scale`` as one module (the variables
    ncvx sees are the network weights and ``k_var``)."""

    def __init__(
        self,
        net: nn.Module,
        z: torch.Tensor,
        k0: torch.Tensor,
        kernel_scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("z", z)
        self.kernel_scale = float(kernel_scale)
        self.k_var = nn.Parameter(k0.clone() * self.kernel_scale)

    def kernel(self) -> torch.Tensor:
        return self.k_var / self.kernel_scale

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net(self.z)[0, 0], self.kernel()


def _default_net(shape: tuple[int, int], dtype: torch.dtype, seed: int) -> tuple[nn.Module, Any]:
    torch.manual_seed(seed)
    net = small_skip(in_channels=8, out_channels=1, width=16).to(dtype)
    z = make_input(8, shape, seed=seed, dtype=dtype)
    return net, z


def blind_deblur_dip(
    y: torch.Tensor,
    kernel_size: int | tuple[int, int],
    sigma: float | None = None,
    tau: float = 1.0,
    net: nn.Module | None = None,
    z: torch.Tensor | None = None,
    warmup_iters: int = 3000,
    lr: float = 0.01,
    kernel_lr: float = 1e-3,
    ncvx_maxit: int = 100,
    limited_mem_size: int = 10,
    init_sd: float = 1.0,
    seed: int = 0,
    monitor: Callable[[torch.Tensor, torch.Tensor], Any] | None = None,
    monitor_every: int = 50,
    **options: Any,
) -> BlindDIPResult:
    """Constrained double-DIP blind deblurring of ``y`` (``(h, w)``); see the module doc.

    Args:
        kernel_size: specified kernel size (may be larger than the true one).
        sigma: noise level (``None``: estimated from ``y``).
        net, z: image generator and its input (default: :func:`small_skip` and fixed noise).
        warmup_iters: cap on the Adam phase (it stops earlier once the misfit bound holds).
        ncvx_maxit: iterations of the constrained phase (0 skips it).
        monitor: ``monitor(x, k)`` every ``monitor_every`` iterations (e.g. PSNR against a
            reference, for plots); its return value goes to ``log``.
        options: passed to :func:`ncvx.solve_module`.
    """
    if y.dim() != 2:
        raise ValueError(f"y must be (h, w), got {tuple(y.shape)}")
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    if sigma is None:
        sigma = float(estimate_noise_sigma(y))
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    shape = (y.shape[0] + kh - 1, y.shape[1] + kw - 1)
    if net is None or z is None:
        net, z = _default_net(shape, y.dtype, seed)
        net, z = net.to(y.device), z.to(y.device)
    m = min(kh, kw, 7) // 2 * 2 + 1
    k0 = pad_kernel(gaussian_kernel(m, init_sd, dtype=y.dtype), (kh, kw)).to(y.device)
    N = y.numel()
    bound = tau * sigma**2 * N
    model = BlindDIP(net, z, k0, kernel_scale=float(N) ** 0.5).to(y)
    log: list[tuple] = []
    t0 = time.perf_counter()

    def ratio_of(x: torch.Tensor, k: torch.Tensor) -> float:
        return float(((conv_valid(x, k) - y) ** 2).sum() / (sigma**2 * N))

    # phase 1: Adam on the misfit, kernel kept on the simplex, stop at the noise level
    opt = torch.optim.Adam(
        [
            {"params": model.net.parameters(), "lr": lr},
            {"params": [model.k_var], "lr": kernel_lr * model.kernel_scale},
        ]
    )
    it = 0
    for it in range(warmup_iters):
        opt.zero_grad(set_to_none=True)
        x, k = model()
        loss = ((conv_valid(x, k) - y) ** 2).sum()
        if float(loss.detach()) <= bound:
            break
        (loss / N).backward()
        opt.step()
        with torch.no_grad():
            model.k_var.copy_(project_simplex(model.kernel()) * model.kernel_scale)
        if monitor is not None and it % monitor_every == 0:
            ratio = float(loss.detach()) / (sigma**2 * N)
            log.append(("adam", it, ratio, monitor(x.detach(), k.detach())))
    iters = {"warmup": it + 1, "ncvx": 0}

    res = None
    if ncvx_maxit > 0:
        def fn(mod: nn.Module) -> tuple[torch.Tensor, dict, torch.Tensor]:
            x, k = mod()
            r = conv_valid(x, k) - y
            inner = crop_latent(x, (kh, kw))
            ci = {
                "misfit": (r**2).sum() / bound - 1,
                "k_nonneg": torch.linalg.vector_norm(torch.relu(-k)),
            }
            return l1_over_l2(inner) / (2 * inner.numel()) ** 0.5, ci, k.sum() - 1

        def cb(record: Any) -> None:
            if monitor is not None and record.iteration % monitor_every == 0:
                with torch.no_grad():
                    x, k = model()
                log.append(("ncvx", record.iteration, None, monitor(x, k)))

        opts = {"print_level": 0, "opt_tol": 1e-8, "viol_ineq_tol": 1e-6, "viol_eq_tol": 1e-6}
        opts.update(options)
        res = ncvx.solve_module(
            model, fn, maxit=ncvx_maxit, limited_mem_size=limited_mem_size, callback=cb, **opts
        )
        iters["ncvx"] = res.iters
    with torch.no_grad():
        x, k_raw = model()
    k = project_simplex(k_raw)
    secs = time.perf_counter() - t0
    return BlindDIPResult(
        x=x.detach(),
        k=k.detach(),
        kernel_projection=float((k - k_raw).norm()),
        seconds=secs,
        iterations=iters,
        result=res,
        sigma=sigma,
        misfit_ratio=ratio_of(x, k),
        log=log,
    )


def double_dip_naive(
    y: torch.Tensor,
    kernel_size: int | tuple[int, int],
    iters: int = 2000,
    lr: float = 0.01,
    kernel_lr: float = 1e-4,
    net: nn.Module | None = None,
    z: torch.Tensor | None = None,
    seed: int = 0,
    monitor: Callable[[torch.Tensor, torch.Tensor], Any] | None = None,
    monitor_every: int = 50,
    stop_mse: float | None = None,
) -> BlindDIPResult:
    """The naive double-DIP baseline (MSE, Adam, softmax kernel generator, no constraints).

    ``stop_mse``: stop as soon as the MSE reaches this value (e.g. ``sigma**2``: the
    discrepancy principle as a stopping rule; ``None``, the baseline, runs all ``iters``).
    """
    if y.dim() != 2:
        raise ValueError(f"y must be (h, w), got {tuple(y.shape)}")
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    shape = (y.shape[0] + kh - 1, y.shape[1] + kw - 1)
    if net is None or z is None:
        net, z = _default_net(shape, y.dtype, seed)
        net, z = net.to(y.device), z.to(y.device)
    gen = torch.Generator().manual_seed(seed + 1)
    kg = KernelMLP((kh, kw)).to(y)
    zk = torch.rand(kg.in_features, generator=gen, dtype=y.dtype).to(y.device)
    opt = torch.optim.Adam(
        [{"params": net.parameters(), "lr": lr}, {"params": kg.parameters(), "lr": kernel_lr}]
    )
    log: list[tuple] = []
    t0 = time.perf_counter()
    N = y.numel()
    x = k = None
    done = iters
    for it in range(iters):
        opt.zero_grad(set_to_none=True)
        x = net(z)[0, 0]
        k = kg(zk)
        loss = ((conv_valid(x, k) - y) ** 2).sum() / N
        if stop_mse is not None and float(loss.detach()) <= stop_mse:
            done = it
            break
        loss.backward()
        opt.step()
        if monitor is not None and it % monitor_every == 0:
            log.append(("adam", it, None, monitor(x.detach(), k.detach())))
    with torch.no_grad():
        x = net(z)[0, 0]
        k = kg(zk)
    secs = time.perf_counter() - t0
    mse = float(((conv_valid(x, k) - y) ** 2).sum() / N)
    # no noise level is used by this recipe: misfit_ratio holds the plain MSE, sigma is NaN
    return BlindDIPResult(
        x=x, k=k, seconds=secs, iterations={"adam": done}, result=None, sigma=float("nan"),
        misfit_ratio=mse, log=log,
    )
