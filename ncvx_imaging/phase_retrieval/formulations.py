"""Phase retrieval as ncvx problems: data fit with folded constraints, the discrepancy form, and
random restarts with a warm restart of the best run.

Variables are always real for ncvx: a complex signal of ``n`` entries is the real vector
``[Re x, Im x]`` of ``2 n`` entries (see :func:`to_complex`). Constraints with many entries
(non-negativity of every pixel) are folded into one scalar with :func:`ncvx.fold.fold_ineq`
(``||max(g, 0)||_2``), which keeps GRANSO's QPs tiny.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

import ncvx
from ncvx.fold import fold_ineq

from .forward import FarField, GaussianMeasurement

__all__ = [
    "CDIProblem",
    "RestartResult",
    "data_misfit",
    "gaussian_pr_fn",
    "real_projection",
    "solve_with_restarts",
    "to_complex",
    "total_variation",
]

Loss = Literal["amplitude", "intensity"]
Combined = Callable[[torch.Tensor], tuple[torch.Tensor, Any, Any]]


def to_complex(v: torch.Tensor, complex_valued: bool) -> torch.Tensor:
    """Real variable vector -> signal: ``[re, im]`` halves of the last dim as a complex tensor
    (``complex_valued``), else ``v`` itself."""
    if not complex_valued:
        return v
    if v.shape[-1] % 2:
        raise ValueError(f"a complex signal needs an even number of reals, got {v.shape[-1]}")
    k = v.shape[-1] // 2
    return torch.complex(v[..., :k], v[..., k:])


def real_projection(
    z: torch.Tensor, nonnegative: bool = True, signal_ndim: int = 2
) -> torch.Tensor:
    """Nearest real (``>= 0``) signal up to a global phase: ``max(Re(c z), 0)`` per signal.

    Used after solving a real problem in complex variables (the *complex lift*): ``c`` is the
    unit scalar that makes ``c z`` as real as possible (``c^2 = conj(sgn(sum z^2))``, the
    minimiser of ``||Im(c z)||``); of the two roots ``+-c`` the one giving the larger positive
    part (``sum Re(c z) >= 0``) is kept when ``nonnegative``. ``z``: ``(..., *signal)`` complex
    (a real input passes through the clamp only). Returns the real dtype of ``z``.
    """
    if not z.is_complex():
        return z.clamp_min(0) if nonnegative else z
    dims = tuple(range(z.ndim - signal_ndim, z.ndim))
    s = (z * z).sum(dim=dims, keepdim=True)
    c = torch.sgn(s).conj().sqrt()
    c = torch.where(s == 0, torch.ones_like(c), c)
    x = (z * c).real
    if nonnegative:
        flip = x.sum(dim=dims, keepdim=True) < 0
        x = torch.where(flip, -x, x).clamp_min(0)
    return x


def data_misfit(
    Lx: torch.Tensor, y: torch.Tensor, loss: Loss, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Sum of squared residuals between model field ``Lx`` (complex or real) and intensities
    ``y``: ``sum w (|Lx| - sqrt(y))^2`` (amplitude) or ``sum w (|Lx|^2 - y)^2`` (intensity).

    The amplitude residual is computed as ``(|Lx|^2 - y) / (|Lx| + sqrt(y))`` where that is
    safe, so its gradient stays finite at ``Lx = 0``.
    """
    p = Lx.real.square() + Lx.imag.square() if Lx.is_complex() else Lx.square()
    if loss == "intensity":
        r = p - y
    elif loss == "amplitude":
        s = y.clamp_min(0).sqrt()
        r = torch.sqrt(p + torch.finfo(p.dtype).tiny) - s
    else:
        raise ValueError(f"loss must be 'amplitude' or 'intensity', got {loss!r}")
    r2 = r.square()
    if weights is not None:
        r2 = r2 * weights
    return r2.sum()


def total_variation(img: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
    """Isotropic TV of ``(..., h, w)`` (real or complex), forward differences, summed.
    ``eps > 0`` smooths the norm: ``sqrt(|grad|^2 + eps^2)``."""
    dx = torch.diff(img, dim=-1)[..., :-1, :]
    dy = torch.diff(img, dim=-2)[..., :, :-1]
    g2 = dx.abs().square() + dy.abs().square()
    return torch.sqrt(g2 + eps**2).sum() if eps > 0 else g2.sqrt().sum()


def gaussian_pr_fn(
    model: GaussianMeasurement, y: torch.Tensor, *, loss: Loss = "intensity"
) -> tuple[Combined, int]:
    """Unconstrained Gaussian PR: ``min (1/4m) sum (|Ax|^2 - y)^2`` (intensity) or
    ``(1/2m) sum (|Ax| - sqrt y)^2`` (amplitude). Returns ``(fn, nvar)``; the variable is real
    of length ``n`` (real model) or ``2n`` (complex model, ``[re, im]``)."""
    if y.shape != (model.m,):
        raise ValueError(f"y must have shape ({model.m},), got {tuple(y.shape)}")
    cplx = model.is_complex
    scale = 1.0 / (4 * model.m) if loss == "intensity" else 1.0 / (2 * model.m)

    def fn(v: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        return scale * data_misfit(model.linear(to_complex(v, cplx)), y, loss), None, None

    return fn, (2 * model.n if cplx else model.n)


@dataclass
class CDIProblem:
    """Far-field CDI on ncvx: unknowns are the pixels of a (loose) support box.

    ``y``: ``(H, W)`` measured intensities of :class:`FarField` (unitary FFT); ``box``:
    ``(row, col, h, w)`` of the support box in the field (the object is known to lie inside).
    ``real``: real object (else complex, ``2 h w`` reals); ``nonnegative``: folded constraint
    ``||max(-x, 0)||_2 <= 0`` (real only). ``loss``: amplitude or intensity data fit, normalised
    by ``sum(y)`` so that ``f`` is scale-free. ``weights``: optional per-pixel weights of the fit.
    ``mask``: optional ``(h, w)`` bool support inside the box (folded equality ``x = 0`` off it).
    """

    y: torch.Tensor
    box: tuple[int, int, int, int]
    real: bool = True
    nonnegative: bool = True
    loss: Loss = "amplitude"
    weights: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    _ff: FarField = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.y.ndim != 2:
            raise ValueError(f"y must be (H, W), got shape {tuple(self.y.shape)}")
        if self.nonnegative and not self.real:
            raise ValueError("nonnegative needs real=True")
        r, c, h, w = self.box
        self._ff = FarField((h, w), tuple(self.y.shape), offset=(r, c))
        if self.mask is not None and tuple(self.mask.shape) != (h, w):
            raise ValueError(f"mask must be {(h, w)}, got {tuple(self.mask.shape)}")

    @property
    def nvar(self) -> int:
        h, w = self.box[2], self.box[3]
        return h * w * (1 if self.real else 2)

    @property
    def farfield(self) -> FarField:
        return self._ff

    def image(self, v: torch.Tensor) -> torch.Tensor:
        """Variables ``(..., nvar)`` -> box image ``(..., h, w)`` (complex if not real)."""
        h, w = self.box[2], self.box[3]
        z = to_complex(v, not self.real)
        return z.reshape(*z.shape[:-1], h, w)

    def variables(self, img: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`image`: box image ``(..., h, w)`` -> ``(..., nvar)`` reals (a real
        image is a valid start of a complex problem: zero imaginary part)."""
        flat = img.reshape(*img.shape[:-2], -1)
        if self.real:
            return flat.real if flat.is_complex() else flat
        if not flat.is_complex():
            return torch.cat([flat, torch.zeros_like(flat)], dim=-1)
        return torch.cat([flat.real, flat.imag], dim=-1)

    def field(self, v: torch.Tensor) -> torch.Tensor:
        """Variables -> full ``(H, W)`` object field."""
        return self._ff.pad(self.image(v))

    def misfit(self, v: torch.Tensor) -> torch.Tensor:
        """Normalised data misfit ``data_misfit / sum(y)`` (amplitude) or ``/ sum(y^2)``."""
        norm = self.y.sum() if self.loss == "amplitude" else self.y.square().sum()
        return data_misfit(self._ff.linear(self.image(v)), self.y, self.loss, self.weights) / norm

    def constraints(self, v: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Folded ``(ci, ce)``: non-negativity and the off-mask zero condition."""
        img = self.image(v)
        ci = fold_ineq(-img, "l2") if self.nonnegative else None
        ce = None
        if self.mask is not None:
            off = img[..., ~self.mask]
            ce = off.abs().square().sum().sqrt() if off.numel() else None
        return ci, ce

    def fit_fn(self) -> Combined:
        """``min misfit(x)`` s.t. the folded constraints."""

        def fn(v: torch.Tensor) -> tuple[torch.Tensor, Any, Any]:
            ci, ce = self.constraints(v)
            return self.misfit(v), ci, ce

        return fn

    def discrepancy_fn(
        self, delta: float, regulariser: Callable[[torch.Tensor], torch.Tensor] | None = None
    ) -> Combined:
        """``min R(x)`` s.t. ``misfit(x) <= delta`` and the folded constraints.

        ``delta`` is the noise level in the units of :meth:`misfit`: for Poisson counts ``c``
        (``y = c / scale``) use ``sum(poisson_amplitude_variance(rate)) / sum(c)`` with ``rate``
        the counts a phased estimate predicts (about ``#pixels / 4`` over ``sum(c)`` at high
        counts). ``R`` defaults to isotropic TV of the box image (smoothed, ``eps = 1e-3 max sqrt(y)``).
        """
        if delta <= 0:
            raise ValueError(f"delta must be positive, got {delta}")
        eps = 1e-3 * float(self.y.clamp_min(0).sqrt().max())
        reg = regulariser or (lambda img: total_variation(img, eps))
        ynorm = float(self.y.clamp_min(0).sqrt().sum())

        def fn(v: torch.Tensor) -> tuple[torch.Tensor, Any, Any]:
            ci_fold, ce = self.constraints(v)
            mis = self.misfit(v) / delta - 1.0
            ci = mis.reshape(1) if ci_fold is None else torch.stack([mis, ci_fold])
            return reg(self.image(v)) / ynorm, ci, ce

        return fn


@dataclass
class RestartResult:
    """Outcome of :func:`solve_with_restarts`: the chosen ncvx result (after the warm restart),
    the index of the start it came from, every start's first-round result and wall time."""

    result: ncvx.Result
    best_start: int
    rounds: list[ncvx.Result]
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def x(self) -> torch.Tensor:
        return self.result.x


def _score(res: ncvx.Result, viol_tol: float) -> tuple[int, float]:
    it = res.best or res.final
    return (0 if it.tv <= viol_tol else 1, float(it.f) if it.tv <= viol_tol else float(it.tv))


def solve_with_restarts(
    fn: Combined,
    starts: Sequence[torch.Tensor],
    *,
    maxit: int = 200,
    warm_maxit: int = 0,
    stop_fun: float | None = None,
    options: dict[str, Any] | None = None,
) -> RestartResult:
    """Run ncvx from each of ``starts`` for ``maxit`` iterations, keep the best (feasible first,
    then lowest ``f``), then continue it for ``warm_maxit`` more iterations from its final point
    with its penalty parameter and (L-)BFGS state (a warm restart).

    ``stop_fun``: stop trying further starts once a feasible run reaches ``f <= stop_fun``
    (e.g. a noiseless misfit near zero). ``options``: ncvx options (``print_level`` defaults to 0).
    """
    if not starts:
        raise ValueError("need at least one start")
    opts = {"print_level": 0, **(options or {})}
    viol_tol = float(opts.get("viol_ineq_tol", 1e-6))
    t0 = time.perf_counter()
    rounds: list[ncvx.Result] = []
    best_i = 0
    for i, x0 in enumerate(starts):
        res = ncvx.solve(fn, x0, maxit=maxit, **opts)
        rounds.append(res)
        if _score(res, viol_tol) < _score(rounds[best_i], viol_tol):
            best_i = i
        b = rounds[best_i]
        if stop_fun is not None and _score(b, viol_tol)[0] == 0 and b.fun <= stop_fun:
            break
    best = rounds[best_i]
    final = best
    if warm_maxit > 0:
        warm = dict(opts)
        warm["mu0"] = best.mu
        if int(opts.get("limited_mem_size", 0)) > 0 and isinstance(best.hessian_state, dict):
            warm["limited_mem_warm_start"] = best.hessian_state
        elif isinstance(best.hessian_state, torch.Tensor):
            warm["H0"] = best.hessian_state
            warm["scaleH0"] = False
        res = ncvx.solve(fn, best.final.x, maxit=warm_maxit, **warm)
        if _score(res, viol_tol) <= _score(best, viol_tol):
            final = res
    return RestartResult(
        result=final, best_start=best_i, rounds=rounds, seconds=time.perf_counter() - t0
    )
