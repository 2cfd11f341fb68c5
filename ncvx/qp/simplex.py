"""Minimum-norm point of a convex hull given by its Gram matrix (Wolfe's algorithm).

The termination QP of an unconstrained problem is ``min ½ λᵀPλ`` over the simplex
``{λ ≥ 0, Σλ = 1}`` (times ``mu``), ``P = G H Gᵀ`` the Gram matrix of the gradient samples:
the point of the samples' convex hull nearest the origin in the ``H``-norm. Wolfe's
algorithm (Math. Programming 11, 1976) solves it exactly in finitely many steps: it keeps a
*corral*, a set ``S`` of samples whose affine hull's nearest point lies inside their convex
hull, adds the sample most opposed to the current point, and drops samples while the affine
nearest point leaves the hull. Consecutive termination QPs share most samples, so a corral
started from the previous answer's support needs a few steps where a general QP solver starts
from scratch (example C2: 161 QPs of 90 samples).
"""

from __future__ import annotations

import numpy as np

#: Stop when the gap ``‖x‖² - min_j <x, p_j>`` is below this times the largest ``‖p_j‖²``.
GAP_TOL = 1e-14
MAX_STEPS = 1000


def min_norm_simplex(
    P: np.ndarray, support: np.ndarray | None = None, weights: np.ndarray | None = None
) -> np.ndarray | None:
    """``argmin ½ λᵀPλ`` over the unit simplex, for a PSD Gram matrix ``P`` (k, k).

    Args:
        P: (k, k) Gram matrix ``P_ij = <p_i, p_j>``.
        support: optional indices (s,) of a starting set of points, e.g. the previous answer's
            support (an affinely dependent one is dropped); ``None`` starts from the point of
            least norm.
        weights: optional positive weights (s,) on ``support`` (default: equal).

    Returns:
        λ (k,) on the simplex, or ``None`` when the affine systems became singular beyond
        rounding (the caller falls back to a general QP solver and checks every answer).
    """
    k = P.shape[0]
    diag = np.diag(P)
    scale = float(np.max(diag, initial=0.0))
    if k == 0 or not np.isfinite(scale):
        return None
    if scale <= 0.0:
        out = np.zeros(k)
        out[0] = 1.0
        return out
    S: np.ndarray | None = None
    if support is not None and len(support) > 0:
        S = np.asarray(support, dtype=np.int64)
        w = np.ones(S.size) if weights is None else np.asarray(weights, dtype=np.float64)
        S, w = _settle(P, S, w / w.sum())  # None: affinely dependent, start afresh
    if S is None:
        S = np.array([int(np.argmin(diag))])
        w = np.ones(1)
    last = np.inf
    for _ in range(MAX_STEPS):
        g = P[:, S] @ w  # <x, p_j> for every j
        j = int(np.argmin(g))
        norm2 = float(w @ g[S])  # ‖x‖²
        if norm2 - float(g[j]) <= GAP_TOL * scale or j in S or norm2 >= last:
            break  # optimal, or no more progress than rounding allows (near-dependent points)
        last = norm2
        S, w = _settle(P, np.append(S, j), np.append(w, 0.0))
        if S is None:
            return None
    lam = np.zeros(k)
    lam[S] = w
    return lam


def _settle(
    P: np.ndarray, S: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | tuple[None, None]:
    """Wolfe's minor cycle: from weights ``w`` (on the simplex, possibly zero) on the points
    ``S``, move towards the affine hull's nearest point and drop the points whose weight
    reaches zero, until that point lies inside the hull of what is left."""
    for _ in range(S.size + 1):
        alpha = _affine_nearest(P[np.ix_(S, S)])
        if alpha is None:
            return None, None
        if np.all(alpha > 0.0):
            return S, alpha
        inward = alpha <= 0.0
        theta = float(np.min(w[inward] / (w[inward] - alpha[inward])))
        w = w + theta * (alpha - w)
        keep = w > 0.0
        if keep.all():
            keep[int(np.argmin(w))] = False
        S, w = S[keep], w[keep]
        w = w / w.sum()
    return None, None


def _affine_nearest(G: np.ndarray) -> np.ndarray | None:
    """Weights (m,) summing to 1 of the point of the points' affine hull nearest the origin,
    from their Gram matrix ``G`` (m, m): the solution of ``[G 1; 1ᵀ 0]``."""
    m = G.shape[0]
    K = np.empty((m + 1, m + 1))
    K[:m, :m] = G
    K[:m, m] = 1.0
    K[m, :m] = 1.0
    K[m, m] = 0.0
    rhs = np.zeros(m + 1)
    rhs[m] = 1.0
    try:
        sol = np.linalg.solve(K, rhs)
    except np.linalg.LinAlgError:
        return None
    alpha = sol[:m]
    if not np.all(np.isfinite(alpha)):
        return None
    return alpha / alpha.sum()
