r"""The inverse Hessian with its condition number capped, as the QPs use it
(``regularize_threshold``).

BFGS can make ``H`` badly conditioned where the problem has no curvature: along variables that
enter ``f`` and the constraints linearly (an SVM's slacks), each update adds ``~‖s‖²/sᵀy`` in the
direction of ``s``, and ``H``'s scale there swings by orders of magnitude between iterations. The
QPs then cancel along the huge directions and return tiny steps. Capping the condition number at
``κ`` clips the eigenvalues into ``[λ_max/κ, λ_max]`` (or ``[λ_min, κ λ_min]`` with
``regularize_max_eigenvalues``).

With ``H = βI + W M Wᵀ`` (``W`` ``(n, p)``: a dense BFGS started from a multiple of the identity,
or L-BFGS in compact form) the eigenvalues come from a ``p × p`` problem: ``W = QR`` (``Q``
``(n, r)`` orthonormal, ``r = min(n, p)``) and ``R M Rᵀ = U Λ Uᵀ`` give ``H = βI + V Λ Vᵀ`` with
``V = QU``, so ``H`` has the eigenvalues ``β + Λ`` on ``span(W)`` and ``β`` elsewhere (when
``r < n``). Clipped, ``H_κ = β'I + V diag(μ - β') Vᵀ`` is again of that form (rank at most
``r``: eigenvectors clipped to ``β'`` drop out), which
keeps the QPs' structured Gram matrices (:mod:`ncvx.qp.structured`); the cost is
``O(n p²)`` once per change of ``H``, instead of a dense ``n × n`` eigendecomposition. Without
such a form (a general ``H0``, a dense BFGS past its tracked rank) or with ``p ≥ n`` the dense
``H`` is decomposed, once per change.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch

LowRank = tuple[float, torch.Tensor, torch.Tensor]

#: Eigenvalue offsets from the capped base below this fraction of the largest eigenvalue are
#: dropped from the capped low-rank form (an error of at most that relative size).
_NEGLIGIBLE = 1e-15
#: Digits a compact form may lose on ``H``'s diagonal before the QPs get its spectral form.
CANCELLATION = 1e5


class _Versioned(Protocol):
    n: int
    version: int

    def apply(self, v: torch.Tensor) -> torch.Tensor: ...

    def as_matrix(self) -> torch.Tensor: ...

    def low_rank(self) -> LowRank | None: ...

    def spectral_low_rank(self) -> LowRank | None: ...


def clip_spectrum(
    values: torch.Tensor, base: float | None, threshold: float, lower_max: bool
) -> tuple[torch.Tensor, float | None] | None:
    """Eigenvalues ``values`` (and the eigenvalue ``base`` of the rest of the space, ``None``
    when there is none) clipped to a condition number of at most ``threshold``; ``None`` when
    they already satisfy it."""
    lo = float(values.min()) if values.numel() else float("inf")
    hi = float(values.max()) if values.numel() else float("-inf")
    if base is not None:
        lo, hi = min(lo, base), max(hi, base)
    if lo > 0 and hi <= threshold * lo:
        return None
    if lower_max:
        floor, ceil = max(lo, 0.0), max(lo, 0.0) * threshold
    else:
        floor, ceil = hi / threshold, hi
    clipped = values.clamp(min=floor, max=ceil)
    return clipped, None if base is None else min(max(base, floor), ceil)


def spectral_low_rank(form: LowRank) -> LowRank:
    """``form = (β, W, M)`` (``H = βI + W M Wᵀ``) as the QPs should see it: the form itself
    while it is sound, else ``(β, V, diag(λ))``, the same ``H`` with ``V`` ``(n, r)``
    orthonormal (``W = QR``, ``R M Rᵀ = U Λ Uᵀ``, ``V = QU``), eigenvalue offsets below
    :data:`_NEGLIGIBLE` times ``max(β, |λ|)`` dropped and eigenvalues ``β + λ`` below 0
    clipped to 0. ``O(n p²)`` flops.

    Not sound: (i) ``H`` has an eigenvalue ``≤ 0``. BFGS keeps ``H`` positive definite, but
    with a condition number of 1e20 (no curvature along variables that enter linearly)
    rounding leaves some slightly below 0; the QPs' Gram matrices were indefinite (-133
    against 1.7e8 on the CNN attack with simple bounds) and their interior-point iterations
    jammed. (ii) The form cancels: ``|W||M||W|ᵀ`` exceeds ``H`` on its diagonal by more than
    :data:`CANCELLATION` (updates with a tiny ``sᵀy``: up to 5e6 on that attack, ``M``'s
    eigenvalues at ``-1e6 … 3e21``), and the Gram matrices built on ``C W`` lose that many
    digits. The spectral form has the size of ``H`` and a rank that counts only the
    directions where ``H`` differs from ``βI`` (41 columns became 2 on that attack). The
    compact form is kept otherwise, since every rounding change moves the chaotic
    trajectories (the SVMs' damped-BFGS forms cancel up to 4e4 and stay).
    """
    beta, W, M = form
    if W.shape[1] == 0:
        return form
    Q, R = torch.linalg.qr(W)  # (n, r), (r, p)
    B = R @ M @ R.T
    lam, U = torch.linalg.eigh(0.5 * (B + B.T))
    indefinite = bool((beta + lam).min() <= 0.0)
    if not indefinite:
        size = beta + ((W @ M) * W).sum(dim=1)  # diag(H)
        terms = beta + ((W.abs() @ M.abs()) * W.abs()).sum(dim=1)
        if float((terms / size.clamp(min=torch.finfo(size.dtype).tiny)).max()) <= CANCELLATION:
            return form
    lam = lam.clamp(min=-beta)
    top = max(abs(beta), float(lam.abs().max()))
    keep = lam.abs() > _NEGLIGIBLE * top
    return beta, Q @ U[:, keep], torch.diag(lam[keep])


def capped_low_rank(form: LowRank, threshold: float, lower_max: bool) -> LowRank | None:
    """``(β', V, diag(μ - β'))`` for ``H = βI + W M Wᵀ`` given as ``form = (β, W, M)``, with
    the condition number capped at ``threshold``; ``None`` when ``H`` satisfies the cap.

    ``V`` is ``(n, r)`` with orthonormal columns, ``r ≤ min(n, p)``: the eigenvectors whose
    capped eigenvalue differs from ``β'`` (the ones clipped to the floor drop out).
    """
    beta, W, M = form
    n, p = W.shape
    if p == 0:
        return None  # H = βI, β > 0: condition number 1
    Q, R = torch.linalg.qr(W)  # (n, r), (r, p)
    B = R @ M @ R.T
    lam, U = torch.linalg.eigh(0.5 * (B + B.T))
    rest = beta if Q.shape[1] < n else None
    clipped = clip_spectrum(beta + lam, rest, threshold, lower_max)
    if clipped is None:
        return None
    mu, base = clipped
    new_beta = base if base is not None else float(mu.min())
    # eigenvalues clipped to the new base (raising the small ones usually lifts β with them)
    # add nothing to β'I: their columns are dropped, so the QPs' low-rank part shrinks
    d = mu - new_beta
    keep = d.abs() > _NEGLIGIBLE * float(mu.abs().max())
    V = Q @ U[:, keep]
    return new_beta, V, torch.diag(d[keep])


def capped_dense(H: torch.Tensor, threshold: float, lower_max: bool) -> torch.Tensor | None:
    """The dense ``H`` ``(n, n)`` with its condition number capped (eigenvalues clipped), or
    ``None`` when it satisfies the cap."""
    lam, V = torch.linalg.eigh(0.5 * (H + H.T))
    clipped = clip_spectrum(lam, None, threshold, lower_max)
    if clipped is None:
        return None
    return (V * clipped[0]) @ V.T


class ConditionCap:
    """``H`` of ``hessian`` with its condition number capped at ``threshold``, as an operator
    (``cap(v)`` for ``v`` ``(n,)`` or ``(n, k)``). Recomputed when ``hessian.version`` changes;
    while ``H`` satisfies the cap it is ``hessian.apply`` itself (:meth:`current`).

    Args:
        hessian: a :class:`~ncvx.hessian.DenseBFGS` or :class:`~ncvx.hessian.LBFGS`.
        threshold: the largest condition number allowed (> 1).
        lower_max: lower the largest eigenvalues instead of raising the smallest.
    """

    def __init__(self, hessian: _Versioned, threshold: float, lower_max: bool) -> None:
        self.hessian = hessian
        self.threshold = threshold
        self.lower_max = lower_max
        self._version = -1
        self._form: LowRank | None = None
        self._dense: torch.Tensor | None = None
        #: Number of changes of ``H`` at which the cap changed it (for tests and logs).
        self.times_capped = 0

    def set_threshold(self, threshold: float) -> None:
        """Change the cap (``inf``: off); the capped form is recomputed when next needed."""
        if threshold != self.threshold:
            self.threshold = threshold
            self._version = -1

    def _refresh(self) -> None:
        if self._version == self.hessian.version:
            return
        self._version = self.hessian.version
        self._form, self._dense = None, None
        if not math.isfinite(self.threshold):
            return
        form = self.hessian.low_rank()
        if form is not None and form[1].shape[1] < self.hessian.n:
            self._form = capped_low_rank(form, self.threshold, self.lower_max)
        else:
            self._dense = capped_dense(self.hessian.as_matrix(), self.threshold, self.lower_max)
        self.times_capped += int(self._form is not None or self._dense is not None)

    @property
    def active(self) -> bool:
        """Whether the cap changes the current ``H``."""
        self._refresh()
        return self._form is not None or self._dense is not None

    def current(self) -> object:
        """``hessian.apply`` while the cap leaves ``H`` unchanged, else this operator."""
        return self if self.active else self.hessian.apply

    def low_rank(self) -> LowRank | None:
        """``(β, W, M)`` of the operator (the capped form, or the Hessian's own)."""
        self._refresh()
        if self._form is not None:
            return self._form
        if self._dense is not None:
            return None
        return self.hessian.spectral_low_rank()

    def matrix(self) -> torch.Tensor:
        """The operator as a dense ``(n, n)`` matrix (for inspection and ``halt_log_fn``)."""
        self._refresh()
        if self._dense is not None:
            return self._dense
        H = self.hessian.as_matrix()
        return self(torch.eye(self.hessian.n, dtype=H.dtype, device=H.device))

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        self._refresh()
        if self._form is not None:
            beta, V, D = self._form
            return beta * v + V @ (D @ (V.T @ v))
        if self._dense is not None:
            return self._dense @ v
        return self.hessian.apply(v)
