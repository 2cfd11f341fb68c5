r"""Gram matrices with structure: ``P = S + U M Uᵀ`` (sparse plus low rank), and their QPs.

With thousands of constraints the steering QP's Gram matrix ``C H Cᵀ`` is too large to form
and factor densely (10 000 constraints: 800 MB and ``k³/3 ≈ 3·10¹¹`` flops per factorization),
but it is rarely unstructured. A BFGS inverse Hessian started from ``γI`` is ``γI`` plus a
low-rank term (:meth:`ncvx.hessian.DenseBFGS.low_rank`, the compact form of L-BFGS), and the
Jacobian's columns split into a few dense ones (weights shared by every margin constraint)
and sparse ones (one slack per constraint, a box). Then

.. math::  C H C^T = γ C_s C_s^T + [C_d,\ C W]\ \mathrm{blkdiag}(γI, M_W)\ [C_d,\ C W]^T

with ``C_s C_sᵀ`` sparse. :func:`structured_gram` builds that form when it pays off; the QP
is solved by :func:`ncvx.qp.ipm.solve_structured`, whose linear algebra costs ``O(k r²)`` per
iteration (``r`` the rank) instead of ``O(k³)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch

#: Working sets at least this large take the structured path when it is available. Session 5
#: set 1500: with 1000, svm-1000 (working sets of 1000–1300 rows) took 86 iterations and ended
#: with code 6 instead of certifying in 65 (the structured finish landed on a vertex of a
#: degenerate QP's solution set where PIQP's answer is interior). Session 12, with the IPM's
#: stop judged by the check and an SPD sparse LU: svm-1000 certifies in 80 iterations (78 with
#: 1500; 9.5 s against 7.8 s), while the CNN attack with the box as bounds, whose QPs of
#: 1000–1500 rows were dense (0.5 s each), takes 11.9 s instead of 62.8 s to iteration 150, and
#: with the box as rows 15.4 s instead of 20.6 s (500 against 1000).
MIN_SIZE = 500
#: A Jacobian column with more than this fraction of nonzero rows counts as dense.
DENSE_COLUMN = 0.02
#: A Jacobian row with more than this fraction of nonzero columns (outside the dense columns)
#: counts as dense and goes into the low-rank part (two columns each) when ``C_s C_sᵀ`` would
#: otherwise be too full (only then: an SVM's objective row is dense too, and moving every
#: sample's copy of it raised the rank past ``k/RANK_RATIO`` on svm-2500): the CNN attack's
#: termination QPs hold one classifier row (784 pixels) per gradient sample among 3000 box
#: rows, whose couplings made ``C_s C_sᵀ`` too full for the structured form (nnz 66 000 >
#: 20 k), and the dense QP of 3000 rows took 25 s.
DENSE_ROW = 0.1
#: The structured form is used only if ``nnz(S) ≤ SPARSE_FILL · k`` and ``r ≤ MAX_RANK``, and
#: ``r ≤ k / RANK_RATIO``: about 25 interior-point iterations of ``k r²`` flops against one dense
#: factorization of ``k³/3`` (and forming the ``k × k`` matrix) break even near ``r = k/9``.
SPARSE_FILL = 20
MAX_RANK = 1200
RANK_RATIO = 8


@dataclass(frozen=True, eq=False)
class StructuredGram:
    """``P = S + U M Uᵀ`` (``(k, k)``, symmetric PSD as a whole).

    Attributes:
        S: (k, k) sparse symmetric PSD matrix (CSR).
        U: (k, r) dense factor.
        M: (r, r) symmetric middle matrix (may be indefinite).
    """

    S: sp.csr_matrix
    U: np.ndarray
    M: np.ndarray
    _diagonal: np.ndarray | None = field(default=None, repr=False)
    _pairs: tuple[np.ndarray, np.ndarray, np.ndarray] | bool | None = field(
        default=False, repr=False
    )

    @property
    def shape(self) -> tuple[int, int]:
        k = self.S.shape[0]
        return k, k

    @property
    def rank(self) -> int:
        return int(self.U.shape[1])

    def __matmul__(self, x: np.ndarray) -> np.ndarray:
        return self.S @ x + self.U @ (self.M @ (self.U.T @ x))

    def diagonal(self) -> np.ndarray:
        """(k,) ``diag(P)`` (``k r²`` flops, computed once; the residual checks and the
        interior-point method ask for it many times)."""
        if self._diagonal is None:
            diag = self.S.diagonal() + np.einsum("ij,ij->i", self.U @ self.M, self.U)
            diag.setflags(write=False)
            object.__setattr__(self, "_diagonal", diag)
        assert self._diagonal is not None
        return self._diagonal

    def pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """``(i, j, v)`` with ``i < j`` when ``S`` is a diagonal plus disjoint symmetric pairs
        ``S_ij = S_ji = v`` (every row has at most one off-diagonal entry: an SVM's margin and
        nonnegativity rows of one sample, a box's two rows of one variable), else ``None``.
        Computed once."""
        if self._pairs is False:
            coo = self.S.tocoo()
            off = coo.row != coo.col
            r, c, v = coo.row[off], coo.col[off], coo.data[off]
            found: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
            if np.all(np.bincount(r, minlength=self.S.shape[0]) <= 1):
                upper = r < c
                i, j, vu = r[upper], c[upper], v[upper]
                # symmetric pattern: each (i, j) has its (j, i), and nothing else is off the diagonal
                if 2 * i.size == r.size and np.array_equal(np.sort(c[~upper]), np.sort(i)):
                    found = (i.astype(np.int64), j.astype(np.int64), vu.astype(np.float64))
            object.__setattr__(self, "_pairs", found)
        return self._pairs  # type: ignore[return-value]

    def scaled(self, d: np.ndarray, factor: float = 1.0) -> StructuredGram:
        """``factor · D P D`` with ``D = diag(d)``."""
        Dm = sp.diags(d)
        return StructuredGram(
            (factor * (Dm @ self.S @ Dm)).tocsr(), d[:, None] * self.U, factor * self.M
        )

    def dense(self) -> np.ndarray:
        """The (k, k) matrix (for small k and tests)."""
        P = self.S.toarray() + self.U @ self.M @ self.U.T
        return 0.5 * (P + P.T)


class RowsOperator:
    """``H Rᵀ`` as an operator (``@ y`` gives ``H Rᵀ y``, ``(n,)``) for ``H = βI + W M Wᵀ``:
    the ``(n, k)`` matrix itself is never formed (``n k p`` flops for thousands of rows)."""

    def __init__(self, rows: torch.Tensor, beta: float, W: torch.Tensor, M: torch.Tensor) -> None:
        self.rows, self.beta, self.W, self.M = rows, beta, W, M

    @property
    def shape(self) -> tuple[int, int]:
        k, n = self.rows.shape
        return n, k

    @property
    def dtype(self) -> torch.dtype:
        return self.rows.dtype

    @property
    def device(self) -> torch.device:
        return self.rows.device

    def __matmul__(self, y: torch.Tensor) -> torch.Tensor:
        v = torch.sparse.mm(self.rows.t(), y.reshape(-1, 1)).reshape(-1)  # Rᵀ y
        if self.W.shape[1] == 0:
            return self.beta * v
        return self.beta * v + self.W @ (self.M @ (self.W.T @ v))


LowRank = tuple[float, torch.Tensor, torch.Tensor]


def structured_gram(
    rows: torch.Tensor, low_rank: LowRank | Callable[[], LowRank | None] | None
) -> tuple[StructuredGram, RowsOperator] | None:
    """``R H Rᵀ`` as a :class:`StructuredGram`, and ``H Rᵀ`` as a :class:`RowsOperator`, or
    ``None``.

    Args:
        rows: (k, n) gradient rows ``R``, dense or a sparse COO tensor.
        low_rank: ``(β, W, M_W)`` with ``H = βI + W M_W Wᵀ`` (``W`` (n, p)), or ``None`` when
            ``H`` has no such form, or a function returning either (called only for a
            working set large enough to use it).

    Returns ``None`` when the form does not pay off (few or dense rows, a dense ``C_s C_sᵀ``, a
    rank above :data:`MAX_RANK` or above ``k/RANK_RATIO``); the caller then forms the dense matrix.
    """
    if rows.shape[0] < MIN_SIZE or rows.layout not in (torch.strided, torch.sparse_coo):
        return None
    if callable(low_rank):
        low_rank = low_rank()
    if low_rank is None:
        return None
    beta, W, MW = low_rank
    k, n = rows.shape
    dense_rows = rows.layout == torch.strided
    like = {"dtype": rows.dtype, "device": rows.device}
    if W.numel() == 0:
        W, MW = torch.zeros(n, 0, **like), torch.zeros(0, 0, **like)
    W, MW = W.to(**like), MW.to(**like)
    coo = (rows.detach().to_sparse() if dense_rows else rows.detach()).coalesce()
    if coo._nnz() > 0.05 * rows.numel():
        return None
    i, j = coo.indices()
    values = coo.values()
    dense_mask = torch.bincount(j, minlength=n) > DENSE_COLUMN * k
    dense_cols = torch.nonzero(dense_mask).reshape(-1)
    p_d = int(dense_cols.numel())
    keep = (~dense_mask[j]).cpu().numpy()
    i_np, j_np = i.cpu().numpy()[keep], j.cpu().numpy()[keep]
    v_np = values.cpu().double().numpy()[keep]
    rank = p_d + int(W.shape[1])
    if rank > MAX_RANK or RANK_RATIO * rank > k:
        return None
    Rs = sp.csr_matrix((v_np, (i_np, j_np)), shape=(k, n))
    S = (beta * (Rs @ Rs.T)).tocsr()
    dense_row_ids = np.zeros(0, dtype=np.int64)
    if S.nnz > SPARSE_FILL * k:
        # Dense rows (a constraint whose gradient touches most variables, e.g. a classifier's
        # margin among thousands of box rows) make C_s C_sᵀ dense in their rows and columns:
        # they go into the low-rank part instead (two columns each).
        dense_row_ids = np.flatnonzero(np.bincount(i_np, minlength=k) > DENSE_ROW * n)
        rank += 2 * int(dense_row_ids.size)
        if not dense_row_ids.size or rank > MAX_RANK or RANK_RATIO * rank > k:
            return None
    p_r = int(dense_row_ids.size)
    in_sparse = np.ones(i_np.size, dtype=bool)
    if p_r:
        dense_row_mask = np.zeros(k, dtype=bool)
        dense_row_mask[dense_row_ids] = True
        in_sparse = ~dense_row_mask[i_np]
        Rs = sp.csr_matrix(
            (v_np[in_sparse], (i_np[in_sparse], j_np[in_sparse])), shape=(k, n)
        )
        S = (beta * (Rs @ Rs.T)).tocsr()
    parts = [rows[:, dense_cols] if dense_rows else coo.index_select(1, dense_cols).to_dense()]
    if W.shape[1]:
        parts.append(torch.sparse.mm(coo, W))  # R W, (k, p)
    U = torch.cat(parts, dim=1).detach().cpu().double().numpy()
    M = np.zeros((rank, rank))
    M[:p_d, :p_d] = beta * np.eye(p_d)
    M[p_d : rank - 2 * p_r, p_d : rank - 2 * p_r] = MW.detach().cpu().double().numpy()
    if p_r:
        S, U_rows, M_rows = _dense_rows_low_rank(
            S, Rs, beta, dense_row_ids, i_np[~in_sparse], j_np[~in_sparse], v_np[~in_sparse], n
        )
        U = np.hstack([U, U_rows])
        M[rank - 2 * p_r :, rank - 2 * p_r :] = M_rows
    if S.nnz > SPARSE_FILL * k:
        return None
    M = 0.5 * (M + M.T)
    return StructuredGram(S, U, M), RowsOperator(coo, beta, W, MW)


def _dense_rows_low_rank(
    S: sp.csr_matrix,
    Rs: sp.csr_matrix,
    beta: float,
    ids: np.ndarray,
    i: np.ndarray,
    j: np.ndarray,
    v: np.ndarray,
    n: int,
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """The part of ``β R Rᵀ`` that the dense rows ``ids`` (``J``) add, as ``S`` plus a low-rank
    term: with ``D`` (``|J| × n``) those rows (entries ``(i, j, v)``, ``i`` in ``ids``) and
    ``E`` the identity columns of ``J``, ``β (Rs + E D)(Rs + E D)ᵀ = β Rs Rsᵀ + diag_J +
    [E, C] [[β D Dᵀ − diag_J, I], [I, 0]] [E, C]ᵀ`` where ``C = β Rs Dᵀ`` (``(k, |J|)``) and
    ``diag_J`` the diagonal of ``β D Dᵀ`` on the ``J`` positions (kept in ``S`` so that its
    diagonal stays positive). Returns ``(S + diag_J, [E, C] (k, 2|J|), middle (2|J|, 2|J|))``.
    """
    k = S.shape[0]
    p_r = ids.size
    slot = np.full(k, -1)
    slot[ids] = np.arange(p_r)
    D = np.zeros((p_r, n))
    np.add.at(D, (slot[i], j), v)
    DD = beta * (D @ D.T)
    S = (S + sp.csr_matrix((np.diag(DD).copy(), (ids, ids)), shape=(k, k))).tocsr()
    E = np.zeros((k, p_r))
    E[ids, np.arange(p_r)] = 1.0
    C = beta * np.asarray(Rs @ D.T)
    middle = np.zeros((2 * p_r, 2 * p_r))
    middle[:p_r, :p_r] = DD - np.diag(np.diag(DD))
    middle[:p_r, p_r:] = np.eye(p_r)
    middle[p_r:, :p_r] = np.eye(p_r)
    return S, np.hstack([E, C]), middle


@dataclass(frozen=True, eq=False)
class StructuredQP:
    """``min ½ yᵀPy + qᵀy  s.t.  lb ≤ y ≤ ub, A y = b`` with a :class:`StructuredGram` ``P``
    (the fields of :class:`ncvx.qp.QPProblem`, which the residual checks accept as they are)."""

    P: StructuredGram
    q: np.ndarray
    lb: np.ndarray
    ub: np.ndarray
    A: np.ndarray | None = None
    b: np.ndarray | None = None

    def __post_init__(self) -> None:
        k = self.P.shape[0]
        for name in ("q", "lb", "ub"):
            vec = np.asarray(getattr(self, name), dtype=np.float64).reshape(-1)
            if vec.shape != (k,) or not np.all(np.isfinite(vec)):
                raise ValueError(f"StructuredQP.{name} must be a finite ({k},) array")
            object.__setattr__(self, name, vec)
        if np.any(self.lb > self.ub):
            raise ValueError("StructuredQP has lb > ub")
        if (self.A is None) != (self.b is None):
            raise ValueError("StructuredQP.A and StructuredQP.b must be given together")
        if self.A is not None:
            object.__setattr__(self, "A", np.asarray(self.A, dtype=np.float64).reshape(1, k))
            object.__setattr__(self, "b", np.asarray(self.b, dtype=np.float64).reshape(1))

    @property
    def k(self) -> int:
        return int(self.q.shape[0])

    @property
    def has_equality(self) -> bool:
        return self.A is not None

    def objective(self, x: np.ndarray) -> float:
        return float(0.5 * x @ (self.P @ x) + self.q @ x)
