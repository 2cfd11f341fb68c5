"""Sparse COO tensors built from indices that are in range by construction."""

from __future__ import annotations

import warnings

import torch


def trusted_coo(indices: torch.Tensor, values: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """``torch.sparse_coo_tensor(indices, values, shape)`` without the invariant checks
    (``indices`` (2, nnz) are in range by construction), coalesced.

    Some CUDA builds of torch (2.11 on the H100 of session 13) warn that the checks are
    "implicitly disabled" even when ``check_invariants=False`` is passed; under the test suite's
    ``filterwarnings = error`` that warning aborted the first structured QP of a CUDA solve, and
    the solver returned its starting point. The warning is silenced here, for this call only.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")
        return torch.sparse_coo_tensor(indices, values, shape, check_invariants=False).coalesce()
