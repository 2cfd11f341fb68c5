"""Value types of the QP layer: the problem and the answer.

The QPs solved by ncvx are small, dense and convex::

    minimize    ½ yᵀ P y + qᵀ y
    subject to  lb ≤ y ≤ ub            (finite box)
                a · y = b              (optional, a single row)

with ``P`` symmetric positive semi-definite (a Gram matrix, often singular).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Relative tolerance of the symmetry check on ``P``.
SYMMETRY_RTOL = 1e-8


def _as_float_array(name: str, value: object, ndim: int) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"QPProblem.{name} must be a real numeric array: {exc}") from exc
    if arr.ndim != ndim:
        raise ValueError(f"QPProblem.{name} must be {ndim}-D, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"QPProblem.{name} contains NaN or infinite entries")
    return arr


def _max_asymmetry(P: np.ndarray, block: int = 512) -> float:
    """``max|P - Pᵀ|`` computed in row blocks to keep temporaries small for large k."""
    worst = 0.0
    for i in range(0, P.shape[0], block):
        diff = P[i : i + block] - P[:, i : i + block].T
        worst = max(worst, float(np.max(np.abs(diff))))
    return worst


@dataclass(frozen=True, eq=False)
class QPProblem:
    """A dense convex QP ``min ½ yᵀPy + qᵀy  s.t.  lb ≤ y ≤ ub, A y = b``.

    Arrays are converted to float64 (without copying when they already are) and validated
    on construction; every defect raises ``ValueError`` naming the field.

    Attributes:
        P: (k, k) symmetric positive semi-definite matrix (symmetry up to a relative
            ``1e-8`` and a non-negative diagonal are checked; definiteness is not).
        q: (k,) linear term.
        lb: (k,) finite lower bounds.
        ub: (k,) finite upper bounds, ``lb ≤ ub``.
        A: optional (1, k) equality row (a 1-D (k,) array is accepted and reshaped).
        b: optional (1,) right-hand side (a scalar is accepted); must be reachable in the box.
    """

    P: np.ndarray
    q: np.ndarray
    lb: np.ndarray
    ub: np.ndarray
    A: np.ndarray | None = None
    b: np.ndarray | None = None

    def __post_init__(self) -> None:
        P = _as_float_array("P", self.P, 2)
        if P.shape[0] != P.shape[1] or P.shape[0] == 0:
            raise ValueError(f"QPProblem.P must be square (k, k) with k ≥ 1, got {P.shape}")
        k = P.shape[0]
        q = _as_float_array("q", self.q, 1)
        lb = _as_float_array("lb", self.lb, 1)
        ub = _as_float_array("ub", self.ub, 1)
        for name, vec in (("q", q), ("lb", lb), ("ub", ub)):
            if vec.shape != (k,):
                raise ValueError(f"QPProblem.{name} must have shape ({k},), got {vec.shape}")
        bad = np.flatnonzero(lb > ub)
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"QPProblem has lb > ub at {bad.size} entries (first: index {i}, "
                f"lb={lb[i]!r} > ub={ub[i]!r})"
            )
        p_max = max(float(P.max()), -float(P.min()))
        asym = _max_asymmetry(P)
        if asym > SYMMETRY_RTOL * p_max:
            raise ValueError(
                f"QPProblem.P must be symmetric: max|P - Pᵀ| = {asym:.3g} "
                f"> {SYMMETRY_RTOL:g} · max|P| = {SYMMETRY_RTOL * p_max:.3g}"
            )
        if np.min(np.diag(P)) < -SYMMETRY_RTOL * p_max:
            raise ValueError(
                "QPProblem.P must be positive semi-definite but has a negative diagonal entry "
                f"({np.min(np.diag(P)):.3g})"
            )
        A, b = self._validated_equality(k, lb, ub)
        for name, arr in (("P", P), ("q", q), ("lb", lb), ("ub", ub), ("A", A), ("b", b)):
            object.__setattr__(self, name, arr)

    def _validated_equality(
        self, k: int, lb: np.ndarray, ub: np.ndarray
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        if self.A is None and self.b is None:
            return None, None
        if self.A is None or self.b is None:
            raise ValueError("QPProblem.A and QPProblem.b must be given together")
        A = np.asarray(self.A, dtype=np.float64)
        if A.ndim == 1:
            A = A.reshape(1, -1)
        A = _as_float_array("A", A, 2)
        if A.shape != (1, k):
            raise ValueError(f"QPProblem.A must have shape (1, {k}) (one row), got {A.shape}")
        b = _as_float_array("b", np.reshape(np.asarray(self.b, dtype=np.float64), -1), 1)
        if b.shape != (1,):
            raise ValueError(f"QPProblem.b must have shape (1,), got {b.shape}")
        a = A[0]
        lo = float(np.sum(np.minimum(a * lb, a * ub)))
        hi = float(np.sum(np.maximum(a * lb, a * ub)))
        slack = 1e-12 * max(1.0, abs(lo), abs(hi))
        if not lo - slack <= b[0] <= hi + slack:
            raise ValueError(
                f"QPProblem is infeasible: A·y = {b[0]!r} cannot be reached inside the box "
                f"(A·y ranges over [{lo!r}, {hi!r}])"
            )
        return A, b

    @property
    def k(self) -> int:
        """Number of variables."""
        return int(self.q.shape[0])

    @property
    def has_equality(self) -> bool:
        """Whether the problem has the equality row ``A y = b``."""
        return self.A is not None

    def objective(self, x: np.ndarray) -> float:
        """``½ xᵀPx + qᵀx`` for a (k,) point ``x``."""
        return float(0.5 * x @ (self.P @ x) + self.q @ x)


@dataclass(frozen=True, eq=False)
class QPSolution:
    """Result of :meth:`ncvx.qp.QPSolver.solve`.

    Attributes:
        x: (k,) solution, always inside ``[lb, ub]`` (and on ``A y = b`` up to rounding).
        backend: name of the backend (and variant, e.g. ``"daqp+ridge"``) that produced ``x``.
        status: ``"optimal"`` when ``kkt ≤ tol``, else ``"inaccurate"``.
        kkt: max scaled KKT residual of ``x`` (see :func:`ncvx.qp.kkt_residuals`).
        attempts: number of backend calls made for this solve.
        seconds: wall-clock time of the whole solve, attempts included.
    """

    x: np.ndarray
    backend: str
    status: str
    kkt: float
    attempts: int
    seconds: float
