"""Optimal objective of the benchmark's soft-margin SVMs, by Clarabel on the primal QP.

``python -m benchmarks.svm_reference 1000 5000`` prints the optimum for each sample count (the
reference against which the ncvx and PyGRANSO answers in docs/performance.md are judged).
"""

from __future__ import annotations

import sys

import numpy as np
import scipy.sparse as sp

from benchmarks.problems import svm_data


def svm_optimum(samples: int, d: int = 20, C: float = 10.0) -> float:
    """``min ½‖w‖² + (C/n)Σζ`` s.t. ``y_i(x_iᵀw + b) ≥ 1 − ζ_i``, ``ζ ≥ 0`` (interior point)."""
    import clarabel

    X, y = (t.numpy() for t in svm_data(samples, d))
    P = sp.diags(np.r_[np.ones(d), np.zeros(1 + samples)]).tocsc()
    q = np.r_[np.zeros(d + 1), np.full(samples, C / samples)]
    margin = sp.hstack(
        [sp.csr_matrix(-y[:, None] * X), sp.csr_matrix(-y[:, None]), -sp.eye(samples)]
    )
    nonneg = sp.hstack([sp.csr_matrix((samples, d + 1)), -sp.eye(samples)])
    A = sp.vstack([margin, nonneg]).tocsc()
    b = np.r_[-np.ones(samples), np.zeros(samples)]
    settings = clarabel.DefaultSettings()
    settings.verbose = False
    settings.tol_gap_abs = settings.tol_gap_rel = settings.tol_feas = 1e-12
    cones = [clarabel.NonnegativeConeT(2 * samples)]
    solution = clarabel.DefaultSolver(P, q, A, b, cones, settings).solve()
    return float(solution.obj_val)


if __name__ == "__main__":
    for arg in sys.argv[1:] or ["200", "1000", "5000"]:
        print(arg, repr(svm_optimum(int(arg))))
