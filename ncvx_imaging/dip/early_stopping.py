"""Early stopping for deep image priors by windowed moving variance (ES-WMV).

Wang, Li, Zhuang, Chen, Liang, Sun, "Early Stopping for Deep Image Prior" (TMLR 2023): the
running variance of the last ``window`` reconstructions,

    VAR_t = (1 / W) sum_{w < W} || x_{t-w} - mean_{w' < W} x_{t-w'} ||^2 / n_pixels,

follows a U shape whose minimum sits near the PSNR peak (the network has fitted the signal but not
yet the noise). Stop once no new minimum of ``VAR_t`` appeared for ``patience`` iterations and
return the reconstruction at the minimum. The detector needs no ground truth and no noise level.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import torch

__all__ = ["ESWMV"]


class ESWMV:
    """Windowed-moving-variance early stopping, usable as an ncvx callback or in any loop.

    Args:
        window: number of recent reconstructions in the variance (``W``).
        patience: stop after this many iterations without a new variance minimum.
        image_fn: maps an ncvx :class:`~ncvx.callbacks.IterationRecord` to the current image
            (needed only when the object is used as an ncvx ``callback``).

    Use ``update(image)`` once per iteration (returns True when it is time to stop), or pass the
    object as ``callback=`` to :func:`ncvx.solve` / :func:`ncvx.solve_module`. After the run,
    ``best_image``/``best_iteration`` hold the detected reconstruction and ``variances`` the curve
    (``None`` until the window is full).
    """

    def __init__(
        self,
        window: int = 100,
        patience: int = 1000,
        image_fn: Callable[[Any], torch.Tensor] | None = None,
    ) -> None:
        if window < 2 or patience < 1:
            raise ValueError(f"need window >= 2 and patience >= 1, got {window}, {patience}")
        self.window = int(window)
        self.patience = int(patience)
        self.image_fn = image_fn
        self._buf: deque[torch.Tensor] = deque()
        self._sum: torch.Tensor | None = None
        self._sumsq = 0.0
        self.iteration = -1
        self.variances: list[float | None] = []
        self.best_variance = float("inf")
        self.best_iteration: int | None = None
        self.best_image: torch.Tensor | None = None
        self.stopped_at: int | None = None

    def update(self, image: torch.Tensor) -> bool:
        """Add the reconstruction of the next iteration; True when the run should stop."""
        self.iteration += 1
        x = image.detach().reshape(-1).to(torch.float64).clone()
        if self._sum is None:
            self._sum = torch.zeros_like(x)
        elif x.shape != self._sum.shape:
            raise ValueError(f"image size changed from {self._sum.numel()} to {x.numel()}")
        self._buf.append(x)
        self._sum += x
        self._sumsq += float(x @ x)
        if len(self._buf) > self.window:
            old = self._buf.popleft()
            self._sum -= old
            self._sumsq -= float(old @ old)
        if len(self._buf) < self.window:
            self.variances.append(None)
            return False
        mean = self._sum / self.window
        var = max(self._sumsq / self.window - float(mean @ mean), 0.0) / x.numel()
        self.variances.append(var)
        if var < self.best_variance:
            self.best_variance = var
            self.best_iteration = self.iteration
            self.best_image = image.detach().clone()
        elif self.best_iteration is not None and self.iteration - self.best_iteration >= self.patience:
            self.stopped_at = self.iteration
            return True
        return False

    def __call__(self, record: Any) -> bool:
        if self.image_fn is None:
            raise ValueError("ESWMV used as an ncvx callback needs image_fn(record) -> image")
        return self.update(self.image_fn(record))
