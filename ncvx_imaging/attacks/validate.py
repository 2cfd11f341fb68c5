"""Input checks for the attacks: clear ``TypeError``/``ValueError`` messages naming the problem."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["check_inputs", "margins"]


def check_inputs(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    target: torch.Tensor | None = None,
) -> int:
    """Validate an attack's inputs; return the number of classes.

    ``model``: an ``nn.Module`` in eval mode whose floating parameters share ``x``'s dtype;
    ``x``: ``(B, C, H, W)`` (or ``(B, D)``) floating, finite, in [0, 1]; ``y``: integer labels
    ``(B,)`` in ``[0, K)``; ``target`` (targeted attacks): integer ``(B,)`` in ``[0, K)``, ≠ ``y``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if model.training:
        raise ValueError(
            "model is in training mode (dropout/batch-norm would change between evaluations); "
            "call model.eval() before attacking it"
        )
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got dtype {x.dtype}")
    if x.ndim < 2:
        raise ValueError(f"x must be a batch (B, ...) with at least 2 dims, got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError("x is an empty batch")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("x contains NaN or Inf")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(
            f"inputs must lie in [0, 1] (the attack box); got values in [{lo:.4g}, {hi:.4g}] — "
            "scale the data first and put any normalisation inside the model"
        )
    for p in model.parameters():
        if p.is_floating_point() and p.dtype != x.dtype:
            raise TypeError(
                f"model parameters are {p.dtype} but x is {x.dtype}; cast one of them "
                "(float64 is recommended for certified attacks: model.double(), x.double())"
            )
        break
    b = x.shape[0]
    with torch.no_grad():
        z = model(x[:1])
    if not isinstance(z, torch.Tensor) or z.ndim != 2 or z.shape[0] != 1:
        shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
        raise ValueError(f"model must map a batch (B, ...) to logits (B, K); got {shape}")
    k = int(z.shape[1])
    if k < 2:
        raise ValueError(f"model returns {k} logit; a classifier needs at least 2 classes")
    _check_labels(y, b, k, "y")
    if target is not None:
        _check_labels(target, b, k, "target")
        if bool((target.to(y.device) == y).any()):
            bad = int((target.to(y.device) == y).nonzero()[0, 0])
            raise ValueError(f"target equals the true label at example {bad}")
    return k


def _check_labels(y: torch.Tensor, b: int, k: int, name: str) -> None:
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of integer labels, got {type(y).__name__}")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer class labels (torch.long), got dtype {y.dtype}")
    if y.shape != (b,):
        raise ValueError(f"{name} must have shape ({b},) to match x, got {tuple(y.shape)}")
    if bool((y < 0).any()) or bool((y >= k).any()):
        raise ValueError(f"{name} has labels outside [0, {k}) (the model has {k} classes)")


def margins(z: torch.Tensor, y: torch.Tensor, targeted: bool = False) -> torch.Tensor:
    """Logit margins ``(B,)`` of logits ``z`` ``(B, K)``: success iff the margin is < 0.

    Untargeted (``y`` = true labels): ``z_y − max_{j≠y} z_j``. Targeted (``y`` = targets):
    ``max_{j≠t} z_j − z_t``.
    """
    zy = z.gather(1, y.reshape(-1, 1)).squeeze(1)
    others = z.masked_fill(nn.functional.one_hot(y, z.shape[1]).bool(), float("-inf"))
    best_other = others.amax(1)
    return best_other - zy if targeted else zy - best_other
