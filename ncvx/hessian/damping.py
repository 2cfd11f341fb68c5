r"""Powell-style damping of a BFGS pair, written for the inverse approximation.

If ``sᵀy < δ sᵀHs`` (with ``H`` the current inverse approximation, as in GRANSO), replace
``y ← θ y + (1-θ) Hs`` with ``θ = (1-δ) sᵀHs / (sᵀHs - sᵀy)``, which makes ``sᵀy = δ sᵀHs > 0``.
"""

from __future__ import annotations

import torch


def damp_pair(
    s: torch.Tensor, y: torch.Tensor, Hs: torch.Tensor, delta: float
) -> tuple[torch.Tensor, bool]:
    """Return the (possibly) damped ``y`` and whether damping was applied.

    Args:
        s, y: step and gradient change, ``(n,)``.
        Hs: ``H @ s``, ``(n,)``.
        delta: damping threshold in ``[0, 1]``; 0 disables damping.
    """
    if delta <= 0:
        return y, False
    sty = float(s @ y)
    sHs = float(s @ Hs)
    if sHs > 0 and sty < delta * sHs:
        theta = (1.0 - delta) * sHs / (sHs - sty)
        return theta * y + (1.0 - theta) * Hs, True
    return y, False
