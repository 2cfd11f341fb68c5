"""Builders of PyGRANSO's reproducible examples (problem statements from SPEC Part B §7).

Every builder makes its data from fixed seeds (or the bundled ``.mat`` file, or scikit-learn's
iris), so results are reproducible; reference values are the known optima or the values the
reference implementation reports.
"""

from __future__ import annotations

import math
from importlib import resources

import numpy as np
import torch

from ..compat import pygransoStruct
from ._base import Example

_DOUBLE = torch.double


def rosenbrock(x0: tuple[float, float] = (1.0, 1.0)) -> Example:
    """A1: nonsmooth Rosenbrock ``8|x1² − x2| + (1 − x1)²`` s.t. ``√2 x1 ≤ 1``, ``2 x2 ≤ 1``.

    Optimum ``x* = (1/√2, 1/2)``, ``f* = (1 − 1/√2)²``.
    """

    def comb_fn(X):
        x1, x2 = X.x1, X.x2
        f = 8 * torch.abs(x1**2 - x2) + (1 - x1) ** 2
        ci = pygransoStruct()
        ci.c1 = math.sqrt(2) * x1 - 1
        ci.c2 = 2 * x2 - 1
        return f.sum(), ci, None

    return Example(
        "A1",
        {"x1": [1], "x2": [1]},
        comb_fn,
        {"x0": torch.tensor(x0, dtype=_DOUBLE).reshape(2, 1)},
        f_ref=(1 - 1 / math.sqrt(2)) ** 2,
        notes="closed form: x* = (1/sqrt(2), 1/2)",
    )


def _spectral_data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    from scipy.io import loadmat

    path = resources.files("ncvx.examples").joinpath("data/spec_radius_opt_data.mat")
    with resources.as_file(path) as p:
        sys_ = loadmat(str(p))["sys"][0, 0]
    return tuple(torch.tensor(np.asarray(sys_[k]), dtype=_DOUBLE) for k in ("A", "B", "C"))


def spectral_abscissa(maxit: int = 200) -> Example:
    """A2: minimise ``max Im λ(A + BXC)`` s.t. ``max Re λ(A + BXC) + 1 ≤ 0``, ``X`` 10×20.

    Reference: PyGRANSO reaches 11.078 (CPU) after 200 iterations from ``X = 0``.
    """
    A, B, C = _spectral_data()
    stability_margin = 1.0

    def comb_fn(X):
        M = A + B @ X.X @ C
        lam = torch.linalg.eigvals(M)
        f = lam.imag.max()
        ci = pygransoStruct()
        ci.c1 = lam.real.max() + stability_margin
        return f, ci, None

    return Example(
        "A2",
        {"X": [10, 20]},
        comb_fn,
        {"x0": torch.zeros(200, 1, dtype=_DOUBLE), "maxit": maxit, "print_frequency": 10},
        f_ref=11.078066147,
        notes="PyGRANSO 2.0 CPU, 200 iterations (SPEC B §7 A2, run L)",
    )


def _dictionary_data(n: int = 30, theta: float = 0.3) -> tuple[torch.Tensor, torch.Tensor]:
    from scipy.stats import norm

    m = 10 * n**2
    rng = np.random.RandomState(1)
    U1 = rng.rand(n, m)
    U2 = rng.rand(n, m)
    Y = norm.ppf(U1) * (norm.ppf(U2) <= theta)
    rng = np.random.RandomState(1)
    q0 = norm.ppf(rng.rand(n, 1))
    q0 = q0 / np.linalg.norm(q0)
    return torch.tensor(Y, dtype=_DOUBLE), torch.tensor(q0, dtype=_DOUBLE)


def dictionary_learning(n: int = 30, explicit_gradients: bool = False) -> Example:
    """A3: ``min (1/m)‖qᵀY‖₁`` s.t. ``qᵀq = 1`` (one column of an orthogonal dictionary).

    Success: ``max|q_j| ≈ 1``. Reference ``f`` 0.4919421 (PyGRANSO, n = 30).
    """
    Y, q0 = _dictionary_data(n)
    m = Y.shape[1]

    if explicit_gradients:

        def comb_fn(X):
            q = X.q
            qY = q.T @ Y
            f = qY.abs().sum() / m
            f_grad = Y @ torch.sign(qY).T / m
            ce = q.T @ q - 1
            return f, f_grad, None, None, ce, 2 * q

    else:

        def comb_fn(X):
            q = X.q
            f = (q.T @ Y).abs().sum() / m
            ce = pygransoStruct()
            ce.c1 = q.T @ q - 1
            return f, None, ce

    def check(soln) -> str | None:
        top = float(soln.final.x.abs().max())
        return None if top > 0.99 else f"max|q| = {top:.4f}, expected ≈ 1"

    return Example(
        "A3",
        {"q": [n, 1]},
        comb_fn,
        {"x0": q0, "maxit": 500, "print_frequency": 10, "globalAD": not explicit_gradients},
        f_ref=0.49194212276 if n == 30 else None,
        notes="PyGRANSO 2.0 CPU (SPEC B §7 A3)",
        check=check,
    )


def feasibility() -> Example:
    """B1: find a point with ``(y + x²)² + 0.1y² ≤ 1``, ``y ≤ e^{−x} + 3``, ``y ≤ x − 4``."""

    def comb_fn(X):
        x, y = X.x, X.y
        f = (0 * x + 0 * y).sum()
        ci = pygransoStruct()
        ci.c1 = (y + x**2) ** 2 + 0.1 * y**2 - 1
        ci.c2 = y - torch.exp(-x) - 3
        ci.c3 = y - x + 4
        return f, ci, None

    return Example(
        "B1",
        {"x": [1, 1], "y": [1, 1]},
        comb_fn,
        {"x0": torch.zeros(2, 1, dtype=_DOUBLE)},
        f_ref=0.0,
        notes="any feasible point is optimal",
    )


def sphere_rayleigh(n: int = 300) -> Example:
    """B2: ``min −xᵀAx`` s.t. ``xᵀx = 1``; optimum ``−λ_max(A)``."""
    torch.manual_seed(0)
    A = torch.randn(n, n).to(_DOUBLE)
    A = (A + A.T) / 2
    x0 = torch.randn(n, 1).to(_DOUBLE)
    lam_max = float(torch.linalg.eigvalsh(A)[-1])

    def comb_fn(X):
        x = X.x
        f = -(x.T @ A @ x).sum()
        ce = pygransoStruct()
        ce.c1 = x.T @ x - 1
        return f, None, ce

    return Example(
        "B2",
        {"x": [n, 1]},
        comb_fn,
        {"x0": x0, "mu0": 0.1, "opt_tol": 1e-6, "print_frequency": 10},
        f_ref=-lam_max,
        notes="closed form: -lambda_max(A)",
    )


def trace_maximization(d: int = 1, n: int = 5) -> Example:
    """B3: ``min −tr(VᵀAV)`` s.t. ``VᵀV = I_d``; optimum minus the sum of the top-d eigenvalues."""
    torch.manual_seed(0)
    A = torch.randn(n, n)
    A = ((A + A.T) / 2).to(_DOUBLE)
    x0 = torch.randn(n * d, 1).to(_DOUBLE)
    top = float(torch.linalg.eigvalsh(A)[-d:].sum())

    def comb_fn(X):
        V = X.V
        f = -torch.trace(V.T @ A @ V)
        ce = pygransoStruct()
        ce.c1 = V.T @ V - torch.eye(d, dtype=V.dtype)
        return f, None, ce

    opts = {"x0": x0, "maxit": 3000 if d == 1 else 1000}
    if d > 1:
        opts.update(opt_tol=5e-6, print_frequency=10)
    return Example(
        "B3",
        {"V": [n, d]},
        comb_fn,
        opts,
        f_ref=-top,
        notes="closed form: -sum of top-d eigenvalues",
    )


def robust_pca(d1: int = 3, d2: int = 4, eta: float = 0.05) -> Example:
    """C1: ``min ‖M‖_* + η‖S‖₁`` s.t. ``M + S = Y``. Reference f 0.33375045 (PyGRANSO)."""
    torch.manual_seed(1)
    Y = torch.randn(d1, d2).to(_DOUBLE)

    def comb_fn(X):
        M, S = X.M, X.S
        f = torch.linalg.matrix_norm(M, ord="nuc") + eta * S.abs().sum()
        ce = pygransoStruct()
        ce.c1 = M + S - Y
        return f, None, ce

    # reference: the convex problem's optimum, by a dense convex solve (see tests)
    return Example(
        "C1",
        {"M": [d1, d2], "S": [d1, d2]},
        comb_fn,
        {
            "x0": 0.2 * torch.ones(2 * d1 * d2, 1, dtype=_DOUBLE),
            "opt_tol": 1e-6,
            "print_frequency": 10,
        },
        f_ref=0.33375045022 if (d1, d2, eta) == (3, 4, 0.05) else None,
        notes="PyGRANSO 2.0 CPU (SPEC B §7 C1); convex, so this is the global optimum",
    )


def generalized_lasso(n: int = 80, eta: float = 0.5) -> Example:
    """C2: 1-D total-variation denoising ``min ‖x − b‖² + η‖Fx‖₁`` (unconstrained, nonsmooth)."""
    torch.manual_seed(1)
    b = torch.rand(n, 1).to(_DOUBLE)
    F = (torch.diag(torch.ones(n), 0) * -1 + torch.diag(torch.ones(n - 1), 1))[:-1].to(_DOUBLE)

    def comb_fn(X):
        x = X.x
        f = ((x - b).T @ (x - b)).sum() + eta * (F @ x).abs().sum()
        return f, None, None

    return Example(
        "C2",
        {"x": [n, 1]},
        comb_fn,
        {"x0": torch.ones(n, 1, dtype=_DOUBLE), "print_frequency": 10},
        f_ref=5.0779552562 if (n, eta) == (80, 0.5) else None,
        notes="PyGRANSO 2.0 CPU (SPEC B §7 C2); convex, so this is the global optimum",
    )


def logistic_l1_path(C: float = 1.0) -> Example:
    """C3: l1-regularised logistic regression on iris classes 0/1 (labels 0/1, as PyGRANSO)."""
    from sklearn.datasets import load_iris

    X_np, y_np = load_iris(return_X_y=True)
    keep = y_np != 2
    X_np, y_np = X_np[keep], y_np[keep]
    X_np = X_np / X_np.max()
    Xt = torch.tensor(X_np, dtype=_DOUBLE)
    yt = torch.tensor(y_np, dtype=_DOUBLE).reshape(-1, 1)

    def comb_fn(Xs):
        w = Xs.w
        f = torch.log1p(torch.exp(-yt * (Xt @ w))).sum() + w.abs().sum() / C
        return f, None, None

    return Example(
        "C3",
        {"w": [4, 1]},
        comb_fn,
        {"x0": torch.zeros(4, 1, dtype=_DOUBLE), "maxit": 50, "opt_tol": 1e-6, "print_level": 0},
        notes="convex; reference by scipy (see tests)",
    )
