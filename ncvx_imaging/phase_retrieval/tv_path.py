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

from .cdi_baselines import hio_er, random_start, support_from_autocorrelation
from .formulations import CDIProblem, real_projection

__all__ = [
    "TVPathResult",
    "distinct_basins",
    "energy_window",
    "grown_window",
    "hio_fallback_windows",
    "hio_polish",
    "tv_path",
    "tv_path_restarts",
]


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
    final normalised amplitude misfit (the ground-truth-free selection criterion); ``tries`` and
    ``chosen``: see :func:`tv_path_restarts` (empty / 0 for :func:`tv_path`); ``exit``: the
    loose level (index into the loose deltas) the tight stages started from (-1: no loose
    stage); ``tight_runs``: per tight path tried, ``(exit level, candidate, final misfit)``, in
    the order tried; ``hio``: the estimate comes from the HIO fallback (:func:`hio_polish`), not
    from the ncvx path; ``path``: when the fallback replaced the path's answer, that answer (the
    ncvx-alone result, kept so both can be scored), else ``None``."""

    field: torch.Tensor
    loose: torch.Tensor
    window: tuple[int, int, int, int]
    misfit: float
    stages: list[tuple[str, float | None, float, int, int]] = field(default_factory=list)
    tries: list[tuple[tuple[float, ...], float | None]] = field(default_factory=list)
    chosen: int = 0
    exit: int = -1
    tight_runs: list[tuple[int, int, float]] = field(default_factory=list)
    hio: bool = False
    path: TVPathResult | None = None


def _lift(img: torch.Tensor, nudge: float, generator: torch.Generator | None) -> torch.Tensor:
    """A real start is a saddle of the lifted problem: add ``nudge * max|img|`` uniform imaginary
    noise (complex starts pass through)."""
    if img.is_complex():
        return img
    wiggle = torch.rand(img.shape, dtype=img.dtype, generator=generator).to(img.device)
    return torch.complex(img, nudge * float(img.abs().max()) * (wiggle - 0.5))


def _stages(
    prob: CDIProblem,
    v: torch.Tensor,
    deltas: Sequence[float],
    kind: str,
    maxit: int,
    opts: dict[str, Any],
    stages: list[tuple[str, float | None, float, int, int]],
    abort_ratio: float | None = None,
    abort_stages: int = 0,
) -> tuple[torch.Tensor, bool]:
    """Warm-started discrepancy solves; returns ``(v, aborted)``. With ``abort_ratio``, stop
    after stage ``j < abort_stages`` whose misfit exceeds ``abort_ratio * delta`` (the level is
    out of reach from here: a stagnated start)."""
    for j, d in enumerate(deltas):
        res = ncvx.solve(prob.discrepancy_fn(d), v, maxit=maxit, **opts)
        v = res.final.x
        mis = float(prob.misfit(v))
        stages.append((kind, float(d), mis, int(res.status), res.iters))
        if abort_ratio is not None and j < abort_stages and mis > abort_ratio * d:
            return v, True
    return v, False


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
    _check(y, start)
    opts = _options(options)
    stages: list[tuple[str, float | None, float, int, int]] = []
    loose_field, _ = _loose(y, box, start, loose_deltas, maxit, nudge, generator, opts, stages)
    res = _tight(y, box, loose_field, real, size, tight_deltas, maxit, fit_maxit, opts, stages)
    res.exit = len(loose_deltas) - 1
    return res


def _check(y: torch.Tensor, start: torch.Tensor) -> None:
    if y.ndim != 2 or start.shape != y.shape:
        raise ValueError(
            f"y and start must be (H, W) of one shape, got {tuple(y.shape)}, {tuple(start.shape)}"
        )


def _options(options: dict[str, Any]) -> dict[str, Any]:
    """ncvx options of every stage. ``ngrad = 1``: the gradient-sample cache only feeds the
    termination test, and the stages run to their iteration budget anyway; with 12 800
    variables the default 100 samples cost ~7 % of a loose stage's time at the session-8 core
    (a third before the core gathered them only for its QP); the iterates are the same."""
    opts: dict[str, Any] = {
        "print_level": 0,
        "limited_mem_size": 10,
        "opt_tol": 1e-12,
        "ngrad": 1,
    }
    opts.update(options)
    return opts


def _loose(
    y: torch.Tensor,
    box: tuple[int, int, int, int],
    start: torch.Tensor,
    deltas: Sequence[float],
    maxit: int,
    nudge: float,
    generator: torch.Generator | None,
    opts: dict[str, Any],
    stages: list[tuple[str, float | None, float, int, int]],
) -> tuple[torch.Tensor, float]:
    """Loose-box stages from ``start``: ``(complex field, final regulariser value)`` (the TV
    objective of the last stage; ``inf`` when there are no stages). A complex ``start`` (e.g.
    an earlier loose field) is continued as it is."""
    r0, c0, bh, bw = box
    loose = CDIProblem(y, box, real=False, nonnegative=False)
    v = loose.variables(_lift(start[r0 : r0 + bh, c0 : c0 + bw], nudge, generator))
    v, _ = _stages(loose, v, deltas, "loose", maxit, opts, stages)
    reg = float(loose.discrepancy_fn(deltas[-1])(v)[0]) if len(deltas) else float("inf")
    return loose.field(v), reg


def _tight(
    y: torch.Tensor,
    box: tuple[int, int, int, int],
    loose_field: torch.Tensor,
    real: bool,
    size: tuple[int, int] | None,
    deltas: Sequence[float],
    maxit: int,
    fit_maxit: int,
    opts: dict[str, Any],
    stages: list[tuple[str, float | None, float, int, int]],
    abort_ratio: float | None = None,
    abort_stages: int = 0,
) -> TVPathResult:
    """Tight-box stages from a loose estimate, then the fit (skipped after an abort)."""
    r0, c0, bh, bw = box
    h, w = size if size is not None else support_from_autocorrelation(y)
    h, w = min(h, bh), min(w, bw)
    r, c = energy_window(loose_field[r0 : r0 + bh, c0 : c0 + bw], (h, w), (r0, c0))
    tight = CDIProblem(y, (r, c, h, w), real=False, nonnegative=False)
    v = tight.variables(loose_field[r : r + h, c : c + w])
    v, aborted = _stages(tight, v, deltas, "tight", maxit, opts, stages, abort_ratio, abort_stages)
    if fit_maxit > 0 and not aborted:
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


def tv_path_restarts(
    y: torch.Tensor,
    box: tuple[int, int, int, int],
    start: torch.Tensor,
    *,
    real: bool,
    tries: int = 16,
    screen: Sequence[int] = (8, 4),
    size: tuple[int, int] | None = None,
    loose_deltas: Sequence[float] = (3e-2, 1e-2, 3e-3),
    tight_deltas: Sequence[float] = (1e-3, 3e-4, 1e-4, 3e-5, 1e-5),
    maxit: int = 300,
    fit_maxit: int = 600,
    nudge: float = 0.3,
    abort_ratio: float = 1.1,
    abort_stages: int = 2,
    accept_misfit: float = 1e-6,
    exits: Sequence[int] | None = None,
    exit_tries: int = 8,
    same_tv: float = 1e-4,
    hio_fallback: int = 1000,
    hio_starts: int = 8,
    hio_rounds: int = 3,
    hio_grow: Sequence[int] = (0, 4, 8),
    hio_accept: float = 1e-8,
    generator: torch.Generator | None = None,
    **options: Any,
) -> TVPathResult:
    """:func:`tv_path` with internal restarts of the loose stages, screened and chosen by their
    own objective.

    The loose stages run from ``start`` and from ``tries - 1`` further random fields on the box
    (:func:`random_start` with the data's energy, drawn from ``generator``). The loose problem's
    local minima differ in TV at the same discrepancy, and the lower the TV the closer the
    estimate is to one copy of the object (mixtures of shifted/twin copies cost more edges).
    Successive screening: after loose level ``j`` only the ``screen[j]`` candidates with the
    lowest TV at that level go on (``screen = ()``: all go on); the survivors of the last loose
    level go to the tight stages in order of increasing TV. A tight path is abandoned early when
    one of its first ``abort_stages`` levels stays above ``abort_ratio * delta`` (a stagnated
    start) and the search stops at the first candidate whose final misfit is
    ``<= accept_misfit``.

    ``exits``: the loose levels (indices into ``loose_deltas``) whose estimates are sent to the
    tight stages, in this order; a level is only tried when no tight path from the levels before
    it was accepted. The first exit takes the candidates kept after its level (lowest TV
    first); a later exit takes, of all candidates that ran its level, one per basin -- TVs
    within a relative ``same_tv`` of a lower one count as the same basin (translates and the
    twin have the same TV) -- at most ``exit_tries``, lowest TV first. The default, every loose
    level from the last to the first, rescues objects whose lowest-TV loose basin stagnates (a
    smooth image, the moon: most candidates fall into basins whose tight paths stagnate at
    misfit 2e-5 to 2e-4 from every level, while a rarer basin of TV 3e-4 higher at delta 3e-2,
    which the screen drops, leads the tight path to the solution). The estimates of
    successful starts are unchanged by the extra exits (they are only tried after every tight
    path from the first exit failed).

    Returns the result with the lowest final misfit; its ``tries`` lists per candidate, in draw
    order, ``(TVs at the loose levels it reached, misfit of its tight path from the first exit
    level -- by default the last loose level -- or None if not tried)``, ``chosen`` its index, ``exit`` the level its tight path
    started from and ``tight_runs`` every tight path tried. No ground truth is used; the cost is
    at most ``tries`` first loose levels, ``screen[j]`` runs of level ``j + 1`` and one tight
    run per exit level and candidate kept there.

    ``hio_fallback > 0`` (default 1000): when no candidate reaches ``accept_misfit``, the best
    one goes through :func:`hio_polish` with that many HIO iterations on its tight window, from
    its field and ``hio_starts - 1`` random fields (a classical projection stage, not ncvx;
    up to ``hio_rounds`` rounds while the answer's misfit is above ``hio_accept``; then, if it
    is still above ``accept_misfit``, on the window grown by the next margin of ``hio_grow``,
    see :func:`hio_fallback_windows`), and
    the answer with the lower data misfit is returned -- a choice made from the measurements
    and the support alone. When the fallback wins, the result has ``hio = True`` and ``path``
    holds the ncvx-alone answer. Successful paths never run it (their estimates are unchanged);
    it makes the pipeline degrade gracefully on textured objects, where the TV formulation
    itself fails (astronaut, text, coins: see ``docs/phase-retrieval.md``). ``hio_fallback=0``:
    ncvx alone.
    """
    _check(y, start)
    if tries < 1:
        raise ValueError(f"tries must be >= 1, got {tries}")
    screen = tuple(int(k) for k in screen)
    if len(screen) > len(loose_deltas) or any(k < 1 for k in screen):
        raise ValueError(
            f"screen must hold at most one count >= 1 per loose level, got {screen} for "
            f"{len(loose_deltas)} levels"
        )
    if not hio_grow or any(int(g) < 0 for g in hio_grow):
        raise ValueError(f"hio_grow must be non-negative margins, got {tuple(hio_grow)}")
    if hio_fallback < 0 or hio_starts < 1 or hio_rounds < 1:
        raise ValueError(
            f"need hio_fallback >= 0, hio_starts >= 1 and hio_rounds >= 1, got {hio_fallback}, "
            f"{hio_starts}, {hio_rounds}"
        )
    if exit_tries < 1 or same_tv < 0:
        raise ValueError(f"need exit_tries >= 1 and same_tv >= 0, got {exit_tries}, {same_tv}")
    nlev = len(loose_deltas)
    if exits is None:
        exits = tuple(range(nlev - 1, -1, -1)) or (-1,)
    exits = tuple(int(e) for e in exits)
    valid = set(range(nlev)) if nlev else {-1}
    if not exits or len(set(exits)) != len(exits) or not set(exits) <= valid:
        raise ValueError(
            f"exits must be distinct loose-level indices in 0..{nlev - 1} (or (-1,) without "
            f"loose levels), got {exits}"
        )
    opts = _options(options)
    r0, c0, bh, bw = box
    mask = torch.zeros(y.shape, dtype=torch.bool, device=y.device)
    mask[r0 : r0 + bh, c0 : c0 + bw] = True
    subs = [start]
    if tries > 1:
        mags = y.clamp_min(0).sqrt()
        more = random_start(
            mask, mags, num=tries - 1, real=not start.is_complex(), generator=generator
        )
        subs += list(more.to(start.dtype))
    tvs: list[list[float]] = [[] for _ in subs]
    stage_logs: list[list[tuple[str, float | None, float, int, int]]] = [[] for _ in subs]
    alive = list(enumerate(subs))  # (candidate, current field); loose fields are complex
    kept: dict[int, list[tuple[int, torch.Tensor]]] = {}  # level -> candidates kept after it
    ran: dict[int, list[tuple[int, torch.Tensor]]] = {}  # level -> all that ran it, TV order
    for j, d in enumerate(loose_deltas):
        nxt = []
        for k, f in alive:
            f, reg = _loose(y, box, f, (d,), maxit, nudge, generator, opts, stage_logs[k])
            tvs[k].append(reg)
            nxt.append((k, f))
        nxt.sort(key=lambda kf: (tvs[kf[0]][-1], kf[0]))
        alive = nxt[: screen[j]] if j < len(screen) else nxt
        kept[j], ran[j] = alive, nxt
    if not loose_deltas:  # no loose stage: the (lifted) starts go to the tight stages as drawn
        kept[-1] = [(k, _lift(s, nudge, generator)) for k, s in alive]
    misfits: list[float | None] = [None] * len(subs)
    runs: list[tuple[int, int, float]] = []
    best: TVPathResult | None = None
    done = False
    for lev in exits:
        if lev == exits[0]:
            cands = kept[lev]
        else:
            order = [k for k, _ in ran[lev]]
            pick = set(distinct_basins(order, [tvs[k][lev] for k in order], same_tv)[:exit_tries])
            cands = [(k, f) for k, f in ran[lev] if k in pick]
        for k, lf in cands:
            logs = [st for st in stage_logs[k] if st[0] == "loose"][: lev + 1]
            res = _tight(
                y,
                box,
                lf,
                real,
                size,
                tight_deltas,
                maxit,
                fit_maxit,
                opts,
                logs,
                abort_ratio,
                abort_stages,
            )
            runs.append((lev, k, res.misfit))
            if lev == exits[0]:
                misfits[k] = res.misfit
            if best is None or res.misfit < best.misfit:
                res.chosen, res.exit = k, lev
                best = res
            if res.misfit <= accept_misfit:
                done = True
                break
        if done:
            break
    if best is None:  # unreachable: at least one candidate is always tried
        raise RuntimeError("no candidate was tried")
    best.tries = [(tuple(t), m) for t, m in zip(tvs, misfits)]
    best.tight_runs = runs
    if hio_fallback > 0 and best.misfit > accept_misfit:
        pol = hio_fallback_windows(
            y,
            best,
            box,
            real=real,
            grow=hio_grow,
            hio_iters=hio_fallback,
            starts=hio_starts,
            rounds=hio_rounds,
            accept_misfit=accept_misfit,
            round_misfit=hio_accept,
            fit_maxit=fit_maxit,
            generator=generator,
            **options,
        )
        if pol.misfit < best.misfit:
            pol.tries, pol.chosen, pol.exit = best.tries, best.chosen, best.exit
            pol.tight_runs, pol.path = best.tight_runs, best
            best = pol
    return best


def grown_window(
    window: tuple[int, int, int, int], margin: int, box: tuple[int, int, int, int]
) -> tuple[int, int, int, int]:
    """``window = (row, col, h, w)`` enlarged by ``margin`` pixels per dimension (split around
    it), clipped to the size of ``box = (row, col, h, w)`` and shifted to lie inside it."""
    r, c, h, w = window
    r0, c0, bh, bw = box
    h2, w2 = min(h + margin, bh), min(w + margin, bw)
    r2 = min(max(r - (h2 - h) // 2, r0), r0 + bh - h2)
    c2 = min(max(c - (w2 - w) // 2, c0), c0 + bw - w2)
    return r2, c2, h2, w2


def hio_fallback_windows(
    y: torch.Tensor,
    result: TVPathResult,
    box: tuple[int, int, int, int],
    *,
    real: bool,
    grow: Sequence[int] = (0, 4, 8),
    accept_misfit: float = 1e-6,
    round_misfit: float = 1e-8,
    **kwargs: Any,
) -> TVPathResult:
    """:func:`hio_polish` on ``result``'s window grown by each margin of ``grow`` in turn
    (:func:`grown_window`, inside the loose ``box``) until one answer's misfit is
    ``<= accept_misfit``; returns the lowest-misfit answer. Within a window, HIO rounds go on
    while the misfit is above ``round_misfit`` (stricter: the fallback's phased answers end at
    1e-9 to 1e-13, and a coins start stopped at 7e-7 with error 0.012). The autocorrelation under-estimates
    the size of rounded objects (their extreme lags are products of faint edge pixels: the
    Shepp-Logan phantom, 62x48, reads as 60x45), and on a window smaller than the object no
    method fits the data; a larger support only loosens the constraint, and the misfit tells
    when it is needed. Other keywords go to :func:`hio_polish`."""
    if not grow or any(int(g) < 0 for g in grow):
        raise ValueError(f"grow must be non-negative margins, got {tuple(grow)}")
    best: TVPathResult | None = None
    for g in grow:
        res = TVPathResult(
            field=result.field,
            loose=result.loose,
            window=grown_window(result.window, int(g), box),
            misfit=result.misfit,
            stages=result.stages,
        )
        pol = hio_polish(y, res, real=real, accept_misfit=round_misfit, **kwargs)
        if best is None or pol.misfit < best.misfit:
            best = pol
        if best.misfit <= accept_misfit:
            break
    assert best is not None
    return best


def distinct_basins(ids: Sequence[int], regs: Sequence[float], rel: float) -> list[int]:
    """``ids`` with one per basin, in order of increasing ``regs``: an id whose value is within a
    relative ``rel`` of the last one kept is dropped (same TV: the same local minimum, or a
    translate or twin of it)."""
    out: list[int] = []
    last = None
    for i, r in sorted(zip(ids, regs), key=lambda ir: ir[1]):
        if last is None or abs(r - last) > rel * abs(last):
            out.append(i)
            last = r
    return out


def hio_polish(
    y: torch.Tensor,
    result: TVPathResult,
    *,
    real: bool,
    hio_iters: int = 1000,
    er_iters: int = 100,
    starts: int = 8,
    rounds: int = 1,
    accept_misfit: float = 0.0,
    fit_maxit: int = 600,
    nudge: float = 1e-2,
    generator: torch.Generator | None = None,
    **options: Any,
) -> TVPathResult:
    """HIO + ER (Fienup 1982; fixed support: ``result``'s tight window, real ``>= 0`` for real
    objects) from ``result.field`` and ``starts - 1`` random fields on the window (one batched
    run, :func:`random_start` from ``generator``); the run with the lowest final HIO/ER misfit
    goes on to the lifted ncvx fit on that window (start nudged by ``nudge * max`` imaginary
    noise for real objects) and :func:`real_projection`.

    ``rounds > 1``: while the fitted answer's misfit is above ``accept_misfit``, HIO+ER goes on
    from every run's current field for another ``hio_iters + er_iters`` iterations, then the
    lowest-misfit run is fitted again, at most ``rounds`` times; the answer with the lowest
    misfit is returned (the first round is the one-round result).

    A final stage for objects whose TV path stalls (textured images): the phasing is then HIO's,
    which on the exact tight support succeeds from most starts (complex objects and text from
    about half, hence the several starts; the coins need ~3000 HIO iterations, hence the
    rounds); ``hio = True`` marks it.
    """
    if starts < 1 or rounds < 1 or hio_iters + er_iters < 1:
        raise ValueError(
            f"need starts >= 1, rounds >= 1 and hio_iters + er_iters >= 1, got {starts}, "
            f"{rounds}, {hio_iters} + {er_iters}"
        )
    r, c, h, w = result.window
    sup = torch.zeros(y.shape, dtype=torch.bool, device=y.device)
    sup[r : r + h, c : c + w] = True
    mags = y.clamp_min(0).sqrt()
    x0 = result.field[None]
    if starts > 1:
        more = random_start(sup, mags, num=starts - 1, real=real, generator=generator)
        cdt = torch.promote_types(x0.dtype, more.dtype)
        x0 = torch.cat([x0.to(cdt), more.to(cdt)])
    opts = _options(options)
    opts["opt_tol"] = min(float(opts["opt_tol"]), 1e-14)
    tight = CDIProblem(y, (r, c, h, w), real=False, nonnegative=False)
    stages = list(result.stages)
    keep: tuple[float, torch.Tensor] | None = None  # (misfit, tight-box variables)
    for _ in range(rounds):
        ph = hio_er(
            mags,
            sup,
            x0,
            real=real,
            nonnegative=real,
            hio_iters=hio_iters,
            er_iters=er_iters,
            shrinkwrap_every=0,
        )
        best = int(ph.history[-1].argmin())
        v = tight.variables(_lift(ph.x[best][r : r + h, c : c + w], nudge, generator))
        if fit_maxit > 0:
            res = ncvx.solve(tight.fit_fn(), v, maxit=fit_maxit, **opts)
            v = res.final.x
            stages.append(("hio+fit", None, float(tight.misfit(v)), int(res.status), res.iters))
        mis = float(tight.misfit(v))
        if keep is None or mis < keep[0]:
            keep = (mis, v)
        if keep[0] <= accept_misfit:
            break
        x0 = ph.x
    assert keep is not None  # rounds >= 1
    out = tight.field(keep[1])
    return TVPathResult(
        field=real_projection(out) if real else out,
        loose=result.loose,
        window=result.window,
        misfit=keep[0],
        stages=stages,
        hio=True,
    )
