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

import torch

logger = logging.getLogger(__name__)


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
                self._x[self._next] = x  # type: ignore[index]
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
        assert self._grads is not None
        self._x[self._next] = x
        self._grads[self._next] = grads
        self._next = (self._next + 1) % self.capacity
        self._count = min(self._count + 1, self.capacity)

    def neighbours(self, x: torch.Tensor) -> torch.Tensor:
        """Gradient sets of the cached samples within ``radius`` of ``x``: ``(l, 1+m, n)``.

        The most recently pushed sample comes first.
        """
        if self._x is None or self._count == 0:
            raise RuntimeError("the neighbourhood cache is empty")
        assert self._grads is not None
        # distances on the stored rows in place (slots 0..count-1 hold the samples), then the
        # near slots newest first: no copy of the whole (capacity, n) buffer
        dist = torch.linalg.vector_norm(self._x[: self._count] - x, dim=1)
        slots = torch.nonzero(dist <= self.radius).reshape(-1)
        age = (self._next - 1 - slots) % self.capacity
        near = slots[torch.argsort(age)]
        if near.numel() <= 1:  # the current point is always a sample of itself; a view, no copy
            i = (self._next - 1) % self.capacity if near.numel() == 0 else int(near[0])
            return self._grads[i : i + 1]
        return self._grads[near]

    def clear(self) -> None:
        self._count = 0
        self._next = 0
