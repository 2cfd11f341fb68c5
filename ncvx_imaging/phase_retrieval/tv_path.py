"""Phasing CDI data from a random start with ncvx alone: a lifted TV-discrepancy path.

Every stage is an ncvx problem ``min TV(x) s.t. misfit(x) <= delta`` (:meth:`CDIProblem.
discrepancy_fn`), warm-started from the previous stage, with ``delta`` decreasing:

1. **loose stages**, on the given (loose) support box, in *complex* variables even for a real
   object (the lift: real local minima become saddles). Large ``delta`` lets TV pick a compact,
   nearly start-independent estimate; a few decades of ``delta`` locate the object in the box.
2. **tight stages**, on a box of the object's size (read off the data's autocorrelation,
   :func:`support_from_autocorrelation`) placed where the loose estimate holds the most energy
   (:func:`energy_window`). The TV of the tight box image does not see the object's outer edges;
   in the loose box it does, and TV's wish to lower those edge jumps leaves stripe artefacts
   (along the near-invisible pattern "a column profile times the object's row indicator")
   that no local method removes later.
3. an optional plain **fit** on the tight box; real objects are then mapped back by
   :func:`real_projection`.

No HIO/ER iteration is involved; the only data-derived side information is the object's size,
the same information shrinkwrap starts from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

import ncvx

from .cdi_baselines import support_from_autocorrelation
from .formulations import CDIProblem, real_projection

__all__ = ["TVPathResult", "energy_window", "tv_path"]


def energy_window(
    img: torch.Tensor, size: tuple[int, int], offset: tuple[int, int] = (0, 0)
) -> tuple[int, int]:
    """Top-left corner (in the frame of ``offset``) of the ``size`` window of ``img`` (``(h, w)``,
    real or complex) that holds the most energy ``|img|^2``; the window lies inside ``img``."""
    h, w = size
    if img.ndim != 2:
        raise ValueError(f"img must be (h, w), got shape {tuple(img.shape)}")
    if not (0 < h <= img.shape[0] and 0 < w <= img.shape[1]):
        raise ValueError(f"window {size} does not fit in an image of shape {tuple(img.shape)}")
    energy = F.avg_pool2d(img.abs().square()[None, None], (h, w), stride=1)[0, 0]
    i = int(energy.flatten().argmax())
    return offset[0] + i // energy.shape[1], offset[1] + i % energy.shape[1]


@dataclass
class TVPathResult:
    """``field``: the ``(H, W)`` estimate (real for real objects); ``loose``: the complex field
    after the loose stages; ``window``: the tight box ``(row, col, h, w)``; ``stages``: per ncvx
    solve ``(box kind, delta or None for the fit, misfit, status, iterations)``; ``misfit``: the
    final normalised amplitude misfit (the ground-truth-free selection criterion)."""

    field: torch.Tensor
    loose: torch.Tensor
    window: tuple[int, int, int, int]
    misfit: float
    stages: list[tuple[str, float | None, float, int, int]] = field(default_factory=list)


def tv_path(
    y: torch.Tensor,
    box: tuple[int, int, int, int],
    start: torch.Tensor,
    *,
    real: bool,
    size: tuple[int, int] | None = None,
    loose_deltas: Sequence[float] = (3e-2, 1e-2, 3e-3),
    tight_deltas: Sequence[float] = (1e-3, 3e-4, 1e-4, 3e-5, 1e-5),
    maxit: int = 300,
    fit_maxit: int = 600,
    nudge: float = 0.3,
    generator: torch.Generator | None = None,
    **options: Any,
) -> TVPathResult:
    """Run the lifted TV-discrepancy path on intensities ``y`` (``(H, W)``, unitary far field).

    ``box = (row, col, h, w)``: the loose support box; ``start``: ``(H, W)`` starting field (its
    box crop is used); ``real``: the object is real (solved lifted, returned real-projected);
    ``size``: the object's ``(h, w)`` (default: from the autocorrelation); ``*_deltas``: the
    discrepancy levels in units of :meth:`CDIProblem.misfit` (decreasing; the last tight one is
    the noise level for noisy data); ``maxit`` per stage, ``fit_maxit`` for the final fit (0
    skips it); ``nudge``: imaginary noise (times the start's max) added to a real start, which
    is a saddle of the lifted problem. Other keywords go to :func:`ncvx.solve`.
    """
    if y.ndim != 2 or start.shape != y.shape:
        raise ValueError(
            f"y and start must be (H, W) of one shape, got {tuple(y.shape)}, {tuple(start.shape)}"
        )
    r0, c0, bh, bw = box
    opts: dict[str, Any] = {"print_level": 0, "limited_mem_size": 10, "opt_tol": 1e-12}
    opts.update(options)
    stages: list[tuple[str, float | None, float, int, int]] = []

    def run(prob: CDIProblem, v: torch.Tensor, deltas: Sequence[float], kind: str) -> torch.Tensor:
        for d in deltas:
            res = ncvx.solve(prob.discrepancy_fn(d), v, maxit=maxit, **opts)
            v = res.final.x
            stages.append((kind, float(d), float(prob.misfit(v)), int(res.status), res.iters))
        return v

    loose = CDIProblem(y, box, real=False, nonnegative=False)
    img = start[r0 : r0 + bh, c0 : c0 + bw]
    if not img.is_complex():
        wiggle = torch.rand(img.shape, dtype=img.dtype, generator=generator).to(img.device)
        img = torch.complex(img, nudge * float(img.abs().max()) * (wiggle - 0.5))
    v = run(loose, loose.variables(img), loose_deltas, "loose")
    loose_field = loose.field(v)

    h, w = size if size is not None else support_from_autocorrelation(y)
    h, w = min(h, bh), min(w, bw)
    r, c = energy_window(loose_field[r0 : r0 + bh, c0 : c0 + bw], (h, w), (r0, c0))
    tight = CDIProblem(y, (r, c, h, w), real=False, nonnegative=False)
    v = run(tight, tight.variables(loose_field[r : r + h, c : c + w]), tight_deltas, "tight")
    if fit_maxit > 0:
        fit_opts = {**opts, "opt_tol": min(float(opts["opt_tol"]), 1e-14)}
        res = ncvx.solve(tight.fit_fn(), v, maxit=fit_maxit, **fit_opts)
        v = res.final.x
        stages.append(("fit", None, float(tight.misfit(v)), int(res.status), res.iters))
    out = tight.field(v)
    return TVPathResult(
        field=real_projection(out) if real else out,
        loose=loose_field,
        window=(r, c, h, w),
        misfit=float(tight.misfit(v)),
        stages=stages,
    )
