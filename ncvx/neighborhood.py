"""Ring buffer of recent iterates and their gradients, for the stationarity test.

GRANSO's stationarity certificate looks at the gradients sampled at the iterates that lie within
``evaldist`` of the current point. This cache keeps the last ``capacity`` accepted iterates
``x_k`` (``(n,)``) with their gradient sets ``[∇f_k; J_i,k; J_e,k]`` (``(1 + m, n)``) and returns
those whose *true* distance to the query point is at most ``radius`` (the current point always
included). Distances are computed exactly each time (one ``(capacity, n)`` reduction), which is
what the triangle-inequality bounds of the reference implementation were meant to approximate.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import torch

logger = logging.getLogger(__name__)

# Below this many stored entries (samples × variables) every distance is computed each time.
_SMALL = 1 << 16


class SampleSet:
    """The gradient samples near a point, ``(l, 1 + m, n)``, gathered only when needed.

    ``buffer[slots]`` are the samples (``slots`` ``(l,)``, newest first); ``span``: slots
    ``0..span-1`` of ``buffer`` are filled. ``free`` ``(n,)`` (optional) masks the variables
    held at a bound: their entries read as 0. The stationarity lower bound needs only the inner
    products ``G v`` and the rows' norms, which :meth:`inner` and :meth:`row_norms` compute on
    the buffer in place; :meth:`gather` copies the samples out (once) for the QP, and
    :meth:`split` only their rows that differ between samples. ``shared`` ``(1 + m,)``
    (optional) marks rows known to be identical in every sample (linear constraints, a box
    written as constraints): they are read once, from the newest sample.
    """

    def __init__(
        self,
        buffer: torch.Tensor,
        slots: torch.Tensor,
        span: int,
        *,
        free: torch.Tensor | None = None,
        norms: Callable[[torch.Tensor], torch.Tensor] | None = None,
        shared: Callable[[], torch.Tensor] | None = None,
        stamps: np.ndarray | None = None,
    ) -> None:
        self.buffer = buffer
        #: (l,) a number that identifies each sample for as long as it is stored (its push
        #: count), for warm starts across iterations; ``None`` when unknown
        self.stamps = stamps
        self.slots = slots
        self.span = span
        self.free = free
        self._norms = norms
        self._gathered: torch.Tensor | None = None
        self._shared = shared
        self._varying_known = False
        self._varying_rows: torch.Tensor | None = None

    @classmethod
    def of(cls, samples: torch.Tensor) -> SampleSet:
        """Wrap gathered samples ``(l, 1 + m, n)``."""
        l = samples.shape[0]
        out = cls(samples, torch.arange(l, device=samples.device), l)
        out._gathered = samples
        return out

    def __len__(self) -> int:
        return int(self.slots.numel())

    @property
    def rows(self) -> int:
        """``1 + m``: the rows of one sample."""
        return int(self.buffer.shape[1])

    def gather(self) -> torch.Tensor:
        """The samples ``(l, 1 + m, n)`` (masked), newest first; a view for one sample."""
        if self._gathered is None:
            if len(self) == 1:
                i = int(self.slots[0])
                out = self.buffer[i : i + 1]
            else:
                out = self.buffer[self.slots]
            if self.free is not None:
                out = torch.where(self.free, out, 0.0)
            self._gathered = out
        return self._gathered

    @property
    def _varying(self) -> torch.Tensor | None:
        """Indices of the rows not known to be shared (``None``: no row is, or one sample)."""
        if not self._varying_known:
            self._varying_known = True
            if self._shared is not None and len(self) > 1:
                shared = self._shared()
                if bool(shared.any()):
                    self._varying_rows = torch.nonzero(~shared).reshape(-1)
        return self._varying_rows

    def split(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The samples without copying their shared rows: the newest sample ``(1 + m, n)``,
        the indices ``(r,)`` of the rows not known to be shared, and those rows of every
        sample ``(l, r, n)`` (masked, newest first)."""
        varying = self._varying
        if varying is None:
            samples = self.gather()
            return samples[0], torch.arange(self.rows, device=samples.device), samples
        newest = self._masked(self.buffer[int(self.slots[0])])
        rows = self._masked(self.buffer[self.slots[:, None], varying[None, :]])
        return newest, varying, rows

    def _masked(self, t: torch.Tensor) -> torch.Tensor:
        return t if self.free is None else torch.where(self.free, t, 0.0)

    def inner(self, v: torch.Tensor) -> torch.Tensor:
        """``g_rᵀ v`` for every row of every sample: ``(l, 1 + m)``; ``v`` ``(n,)``."""
        if self.free is not None:
            v = torch.where(self.free, v, 0.0)
        if self._gathered is not None:
            return self._gathered @ v
        varying = self._varying
        if varying is not None:  # shared rows once, from the newest sample
            out = (self.buffer[int(self.slots[0])] @ v).expand(len(self), -1).clone()
            out[:, varying] = self.buffer[self.slots[:, None], varying[None, :]] @ v
            return out
        if 2 * len(self) >= self.span:  # most filled slots are near: one pass, no copy
            return (self.buffer[: self.span] @ v)[self.slots]
        return self.buffer[self.slots] @ v

    def row_norms(self) -> torch.Tensor:
        """Upper bounds on the rows' 2-norms ``(l, 1 + m)`` (the unmasked rows' norms)."""
        if self._norms is not None and self._gathered is None:
            return self._norms(self.slots)
        return torch.linalg.vector_norm(self.gather(), dim=2)


class NeighborhoodCache:
    """Fixed-capacity cache of ``(x, gradients)`` pairs.

    Args:
        capacity: number of samples kept (``ngrad``), at least 1.
        radius: sampling radius (``evaldist``), in the units of ``x``.
        max_bytes: if given, the capacity is lowered on the first push so that the stored
            samples take at most this many bytes (at least one sample is kept). With a million
            variables and two constraints one sample is 32 MB, and 100 of them would not fit
            a 2 GiB budget.
    """

    def __init__(self, capacity: int, radius: float, max_bytes: int | None = None) -> None:
        self.capacity = max(1, int(capacity))
        self.radius = radius
        self.max_bytes = max_bytes
        self._x: torch.Tensor | None = None  # (capacity, n)
        self._grads: torch.Tensor | None = None  # (capacity, 1 + m, n)
        self._norms: torch.Tensor | None = None  # (capacity, 1 + m): row norms, when known
        self._norm_known: list[bool] = []
        self._lower: torch.Tensor | None = None  # (capacity,): distance bounds to _anchor
        self._anchor: torch.Tensor | None = None  # (n,): the last query point
        # (1 + m,): rows that were identical in every sample pushed so far (stays valid for the
        # samples still stored when older ones are overwritten)
        self._shared: torch.Tensor | None = None
        self._pending: list[int] = []  # slots pushed since _shared was last brought up to date
        self._stamps: np.ndarray = np.zeros(0, dtype=np.int64)  # (capacity,): push counts
        self._pushes = 0
        self._count = 0
        self._next = 0

    def __len__(self) -> int:
        return self._count

    def push(self, x: torch.Tensor, grads: torch.Tensor | list[torch.Tensor]) -> None:
        """Store an iterate ``x`` (``(n,)``) and its gradient set ``grads`` (``(1+m, n)``, or
        its row blocks, written in place without concatenating them first)."""
        if isinstance(grads, list):
            blocks = grads
            rows = sum(int(b.shape[0]) for b in blocks)
            if self._grads is None:
                grads = torch.cat(blocks)  # the first push sizes the buffer
            else:
                if rows != self._grads.shape[1]:
                    raise ValueError(
                        f"gradient set has {rows} rows, expected {self._grads.shape[1]}"
                    )
                self._pending.append(self._next)
                self._stamp(self._next)
                self._x[self._next] = x  # type: ignore[index]
                self._norm_known[self._next] = False
                if self._lower is not None:
                    self._lower[self._next] = 0.0
                at = 0
                for b in blocks:
                    self._grads[self._next, at : at + b.shape[0]] = b
                    at += int(b.shape[0])
                self._next = (self._next + 1) % self.capacity
                self._count = min(self._count + 1, self.capacity)
                return
        assert isinstance(grads, torch.Tensor)
        if self._x is None:
            if self.max_bytes is not None:
                per_sample = (x.numel() + grads.numel()) * grads.element_size()
                fits = max(1, self.max_bytes // max(per_sample, 1))
                if fits < self.capacity:
                    logger.info(
                        "gradient-sample cache capped at %d samples (%d MB each) by its memory "
                        "budget; set ngrad to override",
                        fits,
                        per_sample // 2**20,
                    )
                    self.capacity = int(fits)
            self._x = x.new_empty((self.capacity, *x.shape))
            self._grads = grads.new_empty((self.capacity, *grads.shape))
            self._norms = grads.new_empty((self.capacity, grads.shape[0]))
            self._norm_known = [False] * self.capacity
        assert self._grads is not None
        self._pending.append(self._next)
        self._stamp(self._next)
        self._norm_known[self._next] = False
        if self._lower is not None:
            self._lower[self._next] = 0.0
        self._x[self._next] = x
        self._grads[self._next] = grads
        self._next = (self._next + 1) % self.capacity
        self._count = min(self._count + 1, self.capacity)

    def _stamp(self, slot: int) -> None:
        if self._stamps.shape[0] != self.capacity:
            self._stamps = np.zeros(self.capacity, dtype=np.int64)
        self._pushes += 1
        self._stamps[slot] = self._pushes

    def _shared_rows(self) -> torch.Tensor:
        """The rows ``(1 + m,)`` identical in every stored sample, found lazily: the samples
        pushed since the last call (and one older one) are compared with the newest, on the
        rows still shared (once a row differs it stays unshared)."""
        assert self._grads is not None
        rows = self._grads.shape[1]
        if self._shared is None:
            self._shared = torch.ones(rows, dtype=torch.bool, device=self._grads.device)
        newest = (self._next - 1) % self.capacity
        pending = {slot for slot in self._pending if slot != newest}
        older = [slot for slot in range(self._count) if slot not in pending and slot != newest]
        self._pending = []
        ref = self._grads[newest]
        for slot in sorted(pending) + older[:1]:
            if not bool(self._shared.any()):
                break
            self._shared &= (self._grads[slot] == ref).all(dim=1)
        return self._shared

    def neighbours(self, x: torch.Tensor) -> torch.Tensor:
        """Gradient sets of the cached samples within ``radius`` of ``x``: ``(l, 1+m, n)``.

        The most recently pushed sample comes first.
        """
        return self.near(x).gather()

    def near(self, x: torch.Tensor, free: torch.Tensor | None = None) -> SampleSet:
        """The cached samples within ``radius`` of ``x``, not yet gathered (newest first);
        ``free`` ``(n,)``: the mask of the variables not held at a bound."""
        slots = self._near_slots(x)
        return SampleSet(
            self._grads,  # type: ignore[arg-type]
            slots,
            self._count,
            free=free,
            norms=self._row_norms,
            shared=self._shared_rows,
            stamps=self._stamps[slots.cpu().numpy()],
        )

    def _row_norms(self, slots: torch.Tensor) -> torch.Tensor:
        """The 2-norms ``(l, 1 + m)`` of the rows of the samples in ``slots``, each computed
        once per stored sample."""
        assert self._norms is not None and self._grads is not None
        stale = [i for i in slots.tolist() if not self._norm_known[i]]
        if stale:
            idx = torch.as_tensor(stale, device=self._grads.device)
            self._norms[idx] = torch.linalg.vector_norm(self._grads[idx], dim=2)
            for i in stale:
                self._norm_known[i] = True
        return self._norms[slots]

    def _near_slots(self, x: torch.Tensor) -> torch.Tensor:
        """Slots ``(l,)`` of the samples within ``radius`` of ``x``, newest first (the newest
        sample alone when none is near)."""
        if self._x is None or self._count == 0:
            raise RuntimeError("the neighbourhood cache is empty")
        assert self._grads is not None
        count = self._count
        if count * x.numel() <= _SMALL:  # cheaper than keeping bounds: all distances, exactly
            dist = torch.linalg.vector_norm(self._x[:count] - x, dim=1)
            slots = torch.nonzero(dist <= self.radius).reshape(-1)
            return self._newest_first(slots)
        lower = self._lower_bounds(x, count)
        # exact distances only where the lower bound does not already rule the sample out
        cand = torch.nonzero(lower <= self.radius).reshape(-1)
        if 2 * cand.numel() >= count:  # most samples: on the stored rows in place, no copy
            dist = torch.linalg.vector_norm(self._x[:count] - x, dim=1)
            lower.copy_(dist)
            slots = torch.nonzero(dist <= self.radius).reshape(-1)
        else:
            dist = torch.linalg.vector_norm(self._x[cand] - x, dim=1)
            lower[cand] = dist
            slots = cand[dist <= self.radius]
        return self._newest_first(slots)

    def _newest_first(self, slots: torch.Tensor) -> torch.Tensor:
        """``slots`` sorted newest first; the newest sample alone when ``slots`` is empty (the
        current point is always a sample of itself)."""
        if slots.numel() == 0:
            return torch.tensor([(self._next - 1) % self.capacity], device=slots.device)
        if slots.numel() == 1:
            return slots
        age = (self._next - 1 - slots) % self.capacity
        return slots[torch.argsort(age)]

    def _lower_bounds(self, x: torch.Tensor, count: int) -> torch.Tensor:
        """Lower bounds ``(count,)`` on the stored iterates' distances to ``x`` (a view, to be
        overwritten with exact distances where computed).

        The bounds of the last query point ``a`` move to ``x`` by the triangle inequality,
        ``‖x_j - x‖ ≥ ‖x_j - a‖ - ‖x - a‖`` (with a relative allowance for rounding), so the
        samples far behind the iterates are not read again; a new sample's bound is 0.
        """
        assert self._x is not None
        if self._lower is None or self._lower.shape[0] != self.capacity:
            self._lower = self._x.new_zeros(self.capacity)
            self._anchor = None
        lower = self._lower[:count]
        if self._anchor is None:
            lower.zero_()
        else:
            shift = torch.linalg.vector_norm(x - self._anchor)
            lower.sub_(shift * (1.0 + 1e-8)).mul_(1.0 - 1e-8)
        self._anchor = x.detach().clone()
        return lower

    def clear(self) -> None:
        self._shared = None
        self._pending = []
        self._count = 0
        self._next = 0
        self._anchor = None
