"""Classical Gaussian phase-retrieval baselines: spectral initialisations, Wirtinger flow and
(truncated / reweighted) amplitude flow.

Written from the papers:

- Candès, Li, Soltanolkotabi, "Phase retrieval via Wirtinger flow: theory and algorithms",
  IEEE Trans. Inf. Theory 2015 (spectral initialisation and the WF update with the step schedule
  ``mu_t = min(1 - exp(-t / t0), mu_max)``, ``t0 = 330``, ``mu_max = 0.2``).
- Wang, Giannakis, Eldar, "Solving systems of random quadratic equations via truncated amplitude
  flow", IEEE Trans. Inf. Theory 2018 (orthogonality-promoting initialisation, truncated
  amplitude-flow gradient with ``gamma = 0.7``).
- Wang, Giannakis, Saad, Chen, "Phase retrieval via reweighted amplitude flow", IEEE Trans. Signal
  Process. 2018 (weights ``|a^H z| / (|a^H z| + beta sqrt(y))``).

All work on one problem ``y = |A x|^2`` (``A``: ``(m, n)``, ``y``: ``(m,)``) and return the
estimate of shape ``(n,)`` (complex iff ``A`` is).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .forward import GaussianMeasurement

__all__ = [
    "FlowResult",
    "amplitude_flow",
    "orthogonality_init",
    "spectral_init",
    "wirtinger_flow",
]


@dataclass
class FlowResult:
    """Estimate ``x`` (``(n,)``), iterations run and the misfit history (amplitude or intensity)."""

    x: torch.Tensor
    iters: int
    history: list[float] = field(default_factory=list)


def _as_model(A: torch.Tensor | GaussianMeasurement) -> GaussianMeasurement:
    return A if isinstance(A, GaussianMeasurement) else GaussianMeasurement(A)


def _check_y(model: GaussianMeasurement, y: torch.Tensor) -> None:
    if y.shape != (model.m,):
        raise ValueError(f"y must have shape ({model.m},), got {tuple(y.shape)}")


def _leading_eigvec(M: torch.Tensor, iters: int, generator: torch.Generator | None) -> torch.Tensor:
    """Leading eigenvector of a Hermitian PSD matrix (power method; ``iters=0``: eigh)."""
    if iters <= 0:
        _, vecs = torch.linalg.eigh(M)
        return vecs[:, -1]
    v = torch.randn(M.shape[0], dtype=M.real.dtype, generator=generator).to(M)
    for _ in range(iters):
        v = M @ v
        v = v / v.norm()
    return v


def spectral_init(
    A: torch.Tensor | GaussianMeasurement, y: torch.Tensor, *, power_iters: int = 0
) -> torch.Tensor:
    """WF's spectral start: top eigenvector of ``(1/m) sum_r y_r a_r a_r^H``, scaled to
    ``sqrt(n sum(y) / sum ||a_r||^2)`` (the estimated ``||x||``)."""
    model = _as_model(A)
    _check_y(model, y)
    Amat = model.A
    M = (Amat.conj().transpose(0, 1) * y.to(Amat.dtype)) @ Amat / model.m
    v = _leading_eigvec(M, power_iters, None)
    lam = torch.sqrt(model.n * y.sum() / Amat.abs().square().sum())
    return v * lam.to(v.dtype)


def orthogonality_init(
    A: torch.Tensor | GaussianMeasurement, y: torch.Tensor, *, fraction: float = 1 / 6
) -> torch.Tensor:
    """TAF's orthogonality-promoting start: of the normalised rows ``a_r / ||a_r||``, keep the
    ``ceil(fraction m)`` with the largest ``y_r / ||a_r||^2`` and take the top eigenvector of their
    sum of outer products, scaled to ``sqrt(mean(y))``."""
    model = _as_model(A)
    _check_y(model, y)
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    Amat = model.A
    row2 = Amat.abs().square().sum(1)
    k = max(1, round(fraction * model.m))
    idx = torch.topk(y / row2, k).indices
    B = Amat[idx] / row2[idx].sqrt().unsqueeze(1)
    M = B.conj().transpose(0, 1) @ B
    v = _leading_eigvec(M, 0, None)
    return v * y.mean().sqrt().to(v.dtype)


def wirtinger_flow(
    A: torch.Tensor | GaussianMeasurement,
    y: torch.Tensor,
    *,
    x0: torch.Tensor | None = None,
    max_iter: int = 2500,
    t0: float = 330.0,
    mu_max: float = 0.2,
    tol: float = 1e-12,
) -> FlowResult:
    """Wirtinger flow: ``z <- z - mu_t / ||z0||^2 * (1/m) A^H((|Az|^2 - y) * Az)``.

    Starts from :func:`spectral_init` unless ``x0`` is given. Stops after ``max_iter`` steps or
    when the relative intensity misfit ``||(|Az|^2 - y)|| / ||y||`` drops below ``tol``.
    """
    model = _as_model(A)
    _check_y(model, y)
    z = spectral_init(model, y) if x0 is None else x0.clone().to(model.A.dtype)
    scale = z.norm().square()
    if scale == 0:
        raise ValueError("the initial point is zero")
    ynorm = y.norm()
    hist: list[float] = []
    t = 0
    for t in range(1, max_iter + 1):
        Az = model.linear(z)
        r = Az.abs().square() - y
        mis = float(r.norm() / ynorm)
        hist.append(mis)
        if mis < tol:
            break
        mu = min(1.0 - float(torch.exp(torch.tensor(-t / t0))), mu_max)
        grad = model.adjoint(r.to(Az.dtype) * Az) / model.m
        z = z - (mu / scale) * grad
    return FlowResult(x=z, iters=t, history=hist)


def amplitude_flow(
    A: torch.Tensor | GaussianMeasurement,
    y: torch.Tensor,
    *,
    x0: torch.Tensor | None = None,
    variant: str = "truncated",
    step: float | None = None,
    gamma: float = 0.7,
    beta: float | None = None,
    max_iter: int = 2500,
    tol: float = 1e-12,
) -> FlowResult:
    """Amplitude flow on ``(1/2m) sum (|a_r^H z| - sqrt(y_r))^2``.

    ``variant="truncated"`` (TAF) keeps only the terms with ``|a^H z| >= sqrt(y) / (1 + gamma)``;
    ``"reweighted"`` (RAF) weighs term ``r`` by ``|a^H z| / (|a^H z| + beta sqrt(y_r))``;
    ``"plain"`` uses all terms. Default steps: 0.6 (TAF, real), 0.8 (complex), RAF 2 (real) /
    3 (complex) with ``beta`` 10 (real) / 5 (complex). Starts from :func:`orthogonality_init`
    unless ``x0`` is given. Stops when ``||(|Az| - sqrt(y))|| / ||sqrt(y)|| < tol``.
    """
    model = _as_model(A)
    _check_y(model, y)
    if variant not in ("truncated", "reweighted", "plain"):
        raise ValueError(f"variant must be 'truncated', 'reweighted' or 'plain', got {variant!r}")
    cplx = model.is_complex
    if step is None:
        step = {"truncated": 0.8 if cplx else 0.6, "plain": 0.8 if cplx else 0.6}.get(
            variant, 3.0 if cplx else 2.0
        )
    if beta is None:
        beta = 5.0 if cplx else 10.0
    psi = y.clamp_min(0).sqrt()
    z = orthogonality_init(model, y) if x0 is None else x0.clone().to(model.A.dtype)
    pnorm = psi.norm()
    hist: list[float] = []
    for _ in range(max_iter):
        Az = model.linear(z)
        mag = Az.abs()
        mis = float((mag - psi).norm() / pnorm)
        hist.append(mis)
        if mis < tol:
            break
        ph = torch.where(mag > 0, Az / mag.clamp_min(torch.finfo(mag.dtype).tiny), 0)
        resid = Az - psi.to(Az.dtype) * ph
        if variant == "truncated":
            w = (mag >= psi / (1 + gamma)).to(mag.dtype)
        elif variant == "reweighted":
            w = mag / (mag + beta * psi).clamp_min(torch.finfo(mag.dtype).tiny)
        else:
            w = torch.ones_like(mag)
        grad = model.adjoint(w.to(Az.dtype) * resid) / model.m
        z = z - step * grad
    return FlowResult(x=z, iters=len(hist), history=hist)
