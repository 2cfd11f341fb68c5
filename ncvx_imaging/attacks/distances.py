"""Distances between a clean batch ``x`` and a perturbed batch ``x_adv`` (both ``(B, C, H, W)``).

Every function is batched (returns ``(B,)``), differentiable in ``x_adv``, and device/dtype
agnostic. The perceptual distances need no downloaded weights: ``FeatureDistance`` compares the
attacked classifier's own channel-normalised feature maps (LPIPS-style, without learned layer
weights); :func:`ssim` is the structural similarity of Wang et al. (2004) with a Gaussian window.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

__all__ = [
    "DISTANCES",
    "FeatureDistance",
    "default_feature_fn",
    "lp_distance",
    "ssim",
    "ssim_distance",
]

DISTANCES: tuple[str, ...] = ("l1", "l2", "linf", "feature", "ssim")

FeatureFn = Callable[[torch.Tensor], Sequence[torch.Tensor]]


def lp_distance(x: torch.Tensor, x_adv: torch.Tensor, p: str) -> torch.Tensor:
    """``||x_adv - x||_p`` per example for ``p`` in ``"l1"``, ``"l2"``, ``"linf"``; shape ``(B,)``."""
    d = (x_adv - x).flatten(1)
    if p == "l1":
        return d.abs().sum(1)
    if p == "l2":
        return torch.linalg.vector_norm(d, ord=2, dim=1)
    if p == "linf":
        return d.abs().amax(1)
    raise ValueError(f"unknown lp distance {p!r}; expected 'l1', 'l2' or 'linf'")


def _gaussian_window(size: int, sigma: float, channels: int, like: torch.Tensor) -> torch.Tensor:
    r = torch.arange(size, dtype=like.dtype, device=like.device) - (size - 1) / 2.0
    g = torch.exp(-(r * r) / (2.0 * sigma * sigma))
    g = g / g.sum()
    w = torch.outer(g, g)
    return w.expand(channels, 1, size, size).contiguous()


def ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    window: int = 5,
    sigma: float = 1.0,
    data_range: float = 1.0,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """Mean structural similarity of ``x`` and ``y`` (``(B, C, H, W)``), shape ``(B,)``.

    Local means, variances and covariance use a ``window × window`` Gaussian (std ``sigma``)
    without padding ("valid"), so ``window`` must not exceed ``H`` or ``W``;
    ``SSIM = (2 μx μy + C1)(2 σxy + C2) / ((μx² + μy² + C1)(σx² + σy² + C2))`` with
    ``C1 = (k1 L)²``, ``C2 = (k2 L)²``, ``L = data_range``, averaged over channels and positions.
    Equals 1 iff ``x == y`` (on non-constant windows); smooth in both arguments.
    """
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(f"ssim needs two (B, C, H, W) tensors of one shape; got {x.shape}, {y.shape}")
    _, c, h, w = x.shape
    if window > h or window > w or window < 1:
        raise ValueError(f"ssim window {window} does not fit images of size {h}×{w}")
    kern = _gaussian_window(window, sigma, c, x)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return nn.functional.conv2d(t, kern, groups=c)

    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    smap = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return smap.flatten(1).mean(1)


def ssim_distance(x: torch.Tensor, x_adv: torch.Tensor, **kwargs: float) -> torch.Tensor:
    """``1 - SSIM(x, x_adv)`` per example, ``(B,)``; keyword arguments go to :func:`ssim`."""
    return 1.0 - ssim(x, x_adv, **kwargs)  # type: ignore[arg-type]


def default_feature_fn(model: nn.Module) -> FeatureFn:
    """The model's feature maps: its ``features(x)`` method if it has one, else forward hooks.

    Without a ``features`` method, the outputs of every ``Conv2d`` and every ``Linear`` layer
    except the last registered ``Linear`` (taken to be the logits) are collected, in call order.
    """
    feats = getattr(model, "features", None)
    if callable(feats):
        return feats  # type: ignore[return-value]
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    linears = [m for m in layers if isinstance(m, nn.Linear)]
    if linears:
        layers = [m for m in layers if m is not linears[-1]]
    if not layers:
        raise ValueError(
            "the model has no features() method and no Conv2d/Linear hidden layers; pass "
            "feature_fn= to use the feature distance"
        )

    def collect(x: torch.Tensor) -> list[torch.Tensor]:
        out: list[torch.Tensor] = []
        handles = [m.register_forward_hook(lambda _m, _i, o: out.append(o)) for m in layers]
        try:
            model(x)
        finally:
            for hd in handles:
                hd.remove()
        return out

    return collect


def _normalise(f: torch.Tensor, eps: float) -> torch.Tensor:
    """Unit-normalise along the channel axis (dim 1) at each position; ``(B, C, ...)``."""
    return f / torch.sqrt((f * f).sum(1, keepdim=True) + eps * eps)


class FeatureDistance:
    """LPIPS-style distance on the classifier's own feature maps (no learned layer weights).

    ``d(x, x') = Σ_l mean_positions ||n(φ_l(x')) − n(φ_l(x))||²`` where ``φ_l`` are the feature
    maps (``(B, C_l, ...)``; a ``(B, F)`` output counts as one position) and ``n`` unit-normalises
    along channels (``eps`` keeps it smooth at zero activations). Squared, hence smooth at
    ``x' = x`` where it is 0. The clean features are cached per call of :meth:`reference`.
    """

    def __init__(self, feature_fn: FeatureFn, eps: float = 1e-6) -> None:
        self.feature_fn = feature_fn
        self.eps = eps

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Normalised feature maps of ``x``."""
        return [_normalise(f, self.eps) for f in self.feature_fn(x)]

    def from_reference(self, ref: Sequence[torch.Tensor], x_adv: torch.Tensor) -> torch.Tensor:
        """Distance ``(B,)`` from precomputed normalised features ``ref`` of the clean batch."""
        total = x_adv.new_zeros(x_adv.shape[0])
        for fr, fa in zip(ref, self.features(x_adv)):
            diff = (fa - fr).pow(2).sum(1)
            total = total + diff.reshape(diff.shape[0], -1).mean(1)
        return total

    def __call__(self, x: torch.Tensor, x_adv: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            ref = [f.detach() for f in self.features(x)]
        return self.from_reference(ref, x_adv)


def check_window(h: int, w: int, window: int) -> int:
    """The SSIM window to use for ``h × w`` images: ``window`` capped at the smaller side (odd)."""
    size = min(window, h, w)
    return size if size % 2 == 1 else max(1, size - 1)

