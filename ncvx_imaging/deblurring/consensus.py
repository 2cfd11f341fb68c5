"""A consensus kernel from several blind estimates of the same blur (different random starts).

The blind problem fixes ``k * x`` only, so estimates from different starts may sit at different
translations inside the support; they are first moved onto one reference (an integer shift that
keeps every entry inside the support and maximises the inner product with it), then combined
entry by entry with the median — one start's stray entries (a speck, a spread tail) do not
survive unless another start has them too. The reference is the medoid: the estimate with the
largest summed normalised correlation (best shift) to the others.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["align_kernel", "consensus_kernel", "kernel_correlation"]


def _shift_range(k: torch.Tensor) -> tuple[range, range]:
    """Integer shifts ``(dr, dc)`` that keep every nonzero entry of ``k`` inside its support."""
    s, t = k.shape
    rows = torch.nonzero((k != 0).any(1)).flatten()
    cols = torch.nonzero((k != 0).any(0)).flatten()
    return (range(-int(rows[0]), s - int(rows[-1])), range(-int(cols[0]), t - int(cols[-1])))


def _correlations(k: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """``C[dr + s - 1, dc + t - 1] = <k shifted by (dr, dc) (zero fill), ref>`` for all shifts."""
    s, t = k.shape
    pad = F.pad(ref[None, None], (t - 1, t - 1, s - 1, s - 1))
    return F.conv2d(pad, k[None, None])[0, 0]


def _shift(k: torch.Tensor, dr: int, dc: int) -> torch.Tensor:
    s, t = k.shape
    big = F.pad(k[None, None], (t, t, s, s))[0, 0]
    return big[s - dr : 2 * s - dr, t - dc : 2 * t - dc]


def align_kernel(k: torch.Tensor, ref: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
    """Move ``k`` (``(s, t)``, nonnegative, some mass) by the integer shift that keeps all its
    entries inside the support and maximises ``<shifted k, ref>`` (``ref`` of the same shape).
    Returns the shifted kernel (same mass, dtype, device) and the shift ``(dr, dc)``."""
    if k.dim() != 2 or k.shape != ref.shape:
        raise ValueError(f"need two 2-D kernels of one shape, got {tuple(k.shape)}, "
                         f"{tuple(ref.shape)}")
    if not bool((k != 0).any()):
        raise ValueError("kernel has no nonzero entry")
    s, t = k.shape
    c = _correlations(k, ref.to(k))
    rr, cc = _shift_range(k)
    allowed = torch.full_like(c, float("-inf"))
    allowed[rr.start + s - 1 : rr.stop + s - 1, cc.start + t - 1 : cc.stop + t - 1] = 0.0
    i = int(torch.argmax(c + allowed))
    dr, dc = i // c.shape[1] - (s - 1), i % c.shape[1] - (t - 1)
    return _shift(k, dr, dc), (dr, dc)


def kernel_correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    """Normalised correlation of two kernels at their best relative shift (:func:`align_kernel`):
    1 for the same kernel up to translation, near 0 for unrelated ones."""
    na, nb = float(a.norm()), float(b.norm())
    if na <= 0 or nb <= 0:
        raise ValueError("kernels must have nonzero entries")
    return float((align_kernel(a, b)[0] * b).sum()) / (na * nb)


def consensus_kernel(kernels: Sequence[torch.Tensor]) -> tuple[torch.Tensor, int]:
    """The entrywise median of ``kernels`` (each ``(s, t)``, nonnegative) after aligning them to
    their medoid (:func:`kernel_correlation`), renormalised to sum 1. Returns the kernel and the
    index of the medoid (its translation is the one kept; pair the result with that estimate's
    image). One kernel is returned as it is (normalised)."""
    ks = [k.clamp_min(0) for k in kernels]
    if not ks:
        raise ValueError("need at least one kernel")
    if any(k.shape != ks[0].shape for k in ks):
        raise ValueError(f"kernels must share one shape, got {[tuple(k.shape) for k in ks]}")
    n = len(ks)
    score = [sum(kernel_correlation(ks[i], ks[j]) for j in range(n) if j != i) for i in range(n)]
    ref = max(range(n), key=lambda i: score[i])
    aligned = [ks[i] if i == ref else align_kernel(ks[i], ks[ref])[0] for i in range(n)]
    med = torch.quantile(torch.stack(aligned), 0.5, dim=0)
    tot = float(med.sum())
    if tot <= 0:  # the estimates share no entry: keep the medoid
        med, tot = ks[ref], float(ks[ref].sum())
    return med / tot, ref
