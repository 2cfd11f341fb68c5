r"""Column-compressed Jacobians: structurally orthogonal columns share one seed.

Columns of a Jacobian ``J`` (``(m, n)``) that have no nonzero row in common are *structurally
orthogonal*; colouring the columns so that each colour class is structurally orthogonal (Curtis,
Powell and Reid, 1974) gives ``J`` from the ``p`` products ``J V`` with ``V[j, colour(j)] = 1``
(``(n, p)``): every nonzero ``J[i, j]`` is the entry ``(J V)[i, colour(j)]``. A soft-margin SVM's
10 000 × 5021 constraint Jacobian has 21 dense columns and 5000 slack columns with two
entries each: 22 colours instead of 10 000 reverse passes.

The pattern is learned from a dense Jacobian and is only a hypothesis about the next point
(a nonsmooth function can have an entry that is zero at one point and not at the next), so
every compressed evaluation also computes ``J r`` for a random ``r`` and the caller compares
it with the decompressed ``J``; a mismatch means the pattern missed an entry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

#: A column with nonzeros in more than this fraction of the rows gets a colour of its own
#: without being compared with the others.
DENSE_FRACTION = 0.05
#: Compression is used when ``colours + 1 ≤ rows / MIN_GAIN`` (one batched double-backward with
#: ``p + 1`` seeds against ``m`` reverse seeds).
MIN_GAIN = 4


@dataclass(frozen=True)
class ColumnColouring:
    """A structurally orthogonal colouring of a Jacobian's columns.

    Attributes:
        rows, cols: (nnz,) indices of the pattern's nonzeros (int64, on the Jacobian's device).
        colour: (n,) colour of each column (int64; empty columns share colour 0).
        n_colours: number of colours ``p``.
        shape: ``(m, n)``.
    """

    rows: torch.Tensor
    cols: torch.Tensor
    colour: torch.Tensor
    n_colours: int
    shape: tuple[int, int]

    def seeds(self, dtype: torch.dtype) -> torch.Tensor:
        """(p, n) seed rows: row ``c`` is the indicator of the columns of colour ``c``."""
        n = self.shape[1]
        V = torch.zeros(self.n_colours, n, dtype=dtype, device=self.colour.device)
        V[self.colour, torch.arange(n, device=self.colour.device)] = 1.0
        return V

    def values(self, JV: torch.Tensor) -> torch.Tensor:
        """(nnz,) the pattern's entries of ``J``, from ``J V`` (``(m, p)``)."""
        return JV[self.rows, self.colour[self.cols]]

    def dense(self, values: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """Dense ``J`` (``(m, n)``) from the pattern's entries (written into ``out``, a
        zero-filled ``(m, n)`` tensor, when given)."""
        J = values.new_zeros(self.shape) if out is None else out
        J[self.rows, self.cols] = values
        return J

    def matvec(self, values: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """``J v`` (``(m,)``) from the pattern's entries, without the dense matrix."""
        out = values.new_zeros(self.shape[0])
        return out.index_add_(0, self.rows, values * v[self.cols])


def colour_columns(
    J: torch.Tensor, max_colours: int, previous: ColumnColouring | None = None
) -> ColumnColouring | None:
    """Greedy colouring of the columns of ``J``'s nonzero pattern (``J``: ``(m, n)``), joined
    with a ``previous`` colouring's pattern (entries seen nonzero once stay in the pattern).

    Dense columns (:data:`DENSE_FRACTION`) get a colour each; the other columns are coloured
    first-fit, one colour class at a time (a column joins the class if none of its rows is taken
    yet). Returns ``None`` when more than ``max_colours`` colours would be needed.
    """
    m, n = J.shape
    nz = (J != 0).cpu().numpy()
    if previous is not None and previous.shape == (m, n):
        nz[previous.rows.cpu().numpy(), previous.cols.cpu().numpy()] = True
    counts = nz.sum(axis=0)
    colour = np.zeros(n, dtype=np.int64)
    dense = np.flatnonzero(counts > DENSE_FRACTION * m)
    if dense.size > max_colours:
        return None
    colour[dense] = np.arange(dense.size)
    n_colours = int(dense.size)
    sparse = np.flatnonzero((counts > 0) & (counts <= DENSE_FRACTION * m))
    if sparse.size:
        import scipy.sparse

        by_col = scipy.sparse.csc_matrix(nz[:, sparse])
        csc = [by_col.indices[by_col.indptr[k] : by_col.indptr[k + 1]] for k in range(sparse.size)]
        order = np.argsort(-counts[sparse], kind="stable")
        left = [int(k) for k in order]
        while left:
            if n_colours >= max_colours:
                return None
            taken = np.zeros(m, dtype=bool)
            rest = []
            for k in left:
                rows_k = csc[k]
                if taken[rows_k].any():
                    rest.append(k)
                else:
                    taken[rows_k] = True
                    colour[sparse[k]] = n_colours
            n_colours += 1
            left = rest
    n_colours = max(n_colours, 1)
    rows, cols = np.nonzero(nz)
    device = J.device
    return ColumnColouring(
        torch.as_tensor(rows, dtype=torch.int64, device=device),
        torch.as_tensor(cols, dtype=torch.int64, device=device),
        torch.as_tensor(colour, device=device),
        n_colours,
        (m, n),
    )
