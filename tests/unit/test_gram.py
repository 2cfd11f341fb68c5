"""``ncvx.gram``: the sparse path gives the dense products, and is taken only where it may."""

from __future__ import annotations

import torch

from ncvx import gram
from ncvx.bounds import masked
from ncvx.hessian import LBFGS, DenseBFGS

F64 = torch.float64


def _sparse_rows(k: int, n: int, g: torch.Generator) -> torch.Tensor:
    rows = torch.zeros(k, n, dtype=F64)
    rows[torch.arange(k), torch.randint(0, n, (k,), generator=g)] = 1.0  # box-like rows
    rows[: k // 4, :5] = torch.randn(k // 4, 5, generator=g, dtype=F64)  # a few denser ones
    return rows


def test_sparse_path_matches_dense_products(monkeypatch):
    g = torch.Generator().manual_seed(0)
    n, k = 300, 400
    A = torch.randn(n, n, generator=g, dtype=F64)
    H = DenseBFGS(A @ A.T / n + torch.eye(n, dtype=F64))
    rows = _sparse_rows(k, n, g)
    calls = []
    real = torch.Tensor.to_sparse
    monkeypatch.setattr(torch.Tensor, "to_sparse", lambda self: calls.append(1) or real(self))
    HRt, G = gram.h_rows_gram(rows, H.apply)
    assert calls, "the sparse path was not taken"
    torch.testing.assert_close(HRt, H.H @ rows.T, rtol=1e-12, atol=1e-12)
    dense = rows @ H.H @ rows.T
    torch.testing.assert_close(G, 0.5 * (dense + dense.T), rtol=1e-12, atol=1e-11)
    torch.testing.assert_close(G, G.T, rtol=0, atol=0)


def test_only_explicit_dense_operators_go_sparse():
    g = torch.Generator().manual_seed(1)
    n = 300
    H = DenseBFGS(torch.eye(n, dtype=F64))
    assert gram.dense_matrix(H.apply) is H.H
    assert gram.dense_matrix(masked(H.apply, torch.ones(n, dtype=torch.bool))) is None
    assert gram.dense_matrix(LBFGS(n, 5, dtype=F64, device=torch.device("cpu")).apply) is None
    # dense rows and small problems take the operator itself
    rows = torch.randn(50, n, generator=g, dtype=F64)
    HRt, G = gram.h_rows_gram(rows, H.apply)
    torch.testing.assert_close(HRt, rows.T)
    torch.testing.assert_close(G, rows @ rows.T)
