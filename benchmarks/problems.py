"""Benchmark problems, written only with torch and the PyGRANSO-style API.

Every builder has the signature ``builder(struct, **params) -> (var_spec, combined_fn, opts, meta)``
where ``struct`` is the solver's attribute-bag class (``ncvx.pygransoStruct`` or
``pygranso.pygransoStruct.pygransoStruct``), so the *same* code builds the problem under ncvx,
under PyGRANSO (in its own virtual environment) and for the scipy/IPOPT peers.

This module imports nothing from ncvx (the PyGRANSO environment does not have it); the problems
A1–C3 are re-stated from SPEC Part B §7 and use the bundled A2 data file by path.

``opts`` is a plain dict of PyGRANSO option names (``x0`` included, as an ``(n, 1)`` float64
column); ``meta`` holds ``n`` (variables), ``m_i``/``m_e`` (scalar constraints), ``smooth``
(whether a smooth NLP solver is a fair peer), an optional ``f_ref`` and, for problems that are a
sequence of solves (C3's regularization path), ``path``: a list of ``(combined_fn, opts)`` pairs
solved one after the other (the record sums their iterations, evaluations and times).
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(__file__).resolve().parent / ".cache"
A2_DATA = ROOT / "ncvx" / "examples" / "data" / "spec_radius_opt_data.mat"

DOUBLE = torch.double

Built = tuple[dict[str, list[int]], Callable[[Any], Any], dict[str, Any], dict[str, Any]]


def _meta(var_spec: dict[str, list[int]], m_i: int, m_e: int, **kw: Any) -> dict[str, Any]:
    n = sum(math.prod(s) for s in var_spec.values())
    return {"n": n, "m_i": m_i, "m_e": m_e, "smooth": False, **kw}


# --------------------------------------------------------------------------------------------
# A1–C3: PyGRANSO's reproducible examples (SPEC Part B §7), documented sizes and options
# --------------------------------------------------------------------------------------------


def a1_rosenbrock(struct: type) -> Built:
    """A1: ``8|x1² − x2| + (1 − x1)²`` s.t. ``√2·x1 ≤ 1``, ``2·x2 ≤ 1``; x0 = (1, 1)."""

    def combined_fn(X):
        x1, x2 = X.x1, X.x2
        f = 8 * torch.abs(x1**2 - x2) + (1 - x1) ** 2
        ci = struct()
        ci.c1 = math.sqrt(2) * x1 - 1
        ci.c2 = 2 * x2 - 1
        return f, ci, None

    var_spec = {"x1": [1], "x2": [1]}
    opts = {"x0": torch.ones(2, 1, dtype=DOUBLE)}
    return var_spec, combined_fn, opts, _meta(var_spec, 2, 0, f_ref=(1 - 1 / math.sqrt(2)) ** 2)


def a2_spectral_abscissa(struct: type, maxit: int = 200) -> Built:
    """A2: ``max Im λ(A + BXC)`` s.t. ``max Re λ(A + BXC) + 1 ≤ 0``; X 10×20, x0 = 0."""
    from scipy.io import loadmat

    sys_ = loadmat(str(A2_DATA))["sys"][0, 0]
    A, B, C = (torch.tensor(sys_[k], dtype=DOUBLE) for k in ("A", "B", "C"))

    def combined_fn(X):
        M = A + B @ X.X @ C
        lam = torch.linalg.eigvals(M)
        ci = struct()
        ci.c1 = lam.real.max() + 1.0
        return lam.imag.max(), ci, None

    var_spec = {"X": [10, 20]}
    opts = {"x0": torch.zeros(200, 1, dtype=DOUBLE), "maxit": maxit}
    return var_spec, combined_fn, opts, _meta(var_spec, 1, 0)


def _dictionary_data(n: int, theta: float = 0.3) -> tuple[torch.Tensor, torch.Tensor]:
    import numpy as np
    from scipy.stats import norm

    m = 10 * n**2
    rng = np.random.RandomState(1)
    U1 = rng.rand(n, m)
    U2 = rng.rand(n, m)
    Y = norm.ppf(U1) * (norm.ppf(U2) <= theta)
    rng = np.random.RandomState(1)
    q0 = norm.ppf(rng.rand(n, 1))
    q0 = q0 / np.linalg.norm(q0)
    return torch.tensor(Y, dtype=DOUBLE), torch.tensor(q0, dtype=DOUBLE)


def a3_dictionary_learning(
    struct: type, n: int = 30, maxit: int = 500, device: str = "cpu"
) -> Built:
    """A3: ``(1/m)‖qᵀY‖₁`` s.t. ``qᵀq = 1``; m = 10·n² samples (n = 30 documented)."""
    Y, q0 = _dictionary_data(n)
    Y = Y.to(device)
    m = Y.shape[1]

    def combined_fn(X):
        q = X.q
        ce = struct()
        ce.c1 = q.T @ q - 1
        return (q.T @ Y).abs().sum() / m, None, ce

    var_spec = {"q": [n, 1]}
    opts = {"x0": q0, "maxit": maxit}
    return var_spec, combined_fn, opts, _meta(var_spec, 0, 1, samples=m)


def b1_feasibility(struct: type) -> Built:
    """B1: f ≡ 0 with three nonlinear inequalities; x0 = (0, 0)."""

    def combined_fn(X):
        x, y = X.x, X.y
        ci = struct()
        ci.c1 = (y + x**2) ** 2 + 0.1 * y**2 - 1
        ci.c2 = y - torch.exp(-x) - 3
        ci.c3 = y - x + 4
        return (0 * x + 0 * y).sum(), ci, None

    var_spec = {"x": [1, 1], "y": [1, 1]}
    opts = {"x0": torch.zeros(2, 1, dtype=DOUBLE)}
    return var_spec, combined_fn, opts, _meta(var_spec, 3, 0, f_ref=0.0, smooth=True)


def b2_sphere_rayleigh(struct: type, n: int = 300) -> Built:
    """B2: ``−xᵀAx`` s.t. ``xᵀx = 1``; A symmetric 300×300 (seed 0); optimum −λ_max(A)."""
    torch.manual_seed(0)
    A = torch.randn(n, n).to(DOUBLE)
    A = (A + A.T) / 2
    x0 = torch.randn(n, 1).to(DOUBLE)

    def combined_fn(X):
        x = X.x
        ce = struct()
        ce.c1 = x.T @ x - 1
        return -(x.T @ A @ x).sum(), None, ce

    var_spec = {"x": [n, 1]}
    opts = {"x0": x0, "mu0": 0.1, "opt_tol": 1e-6}
    f_ref = -float(torch.linalg.eigvalsh(A)[-1])
    return var_spec, combined_fn, opts, _meta(var_spec, 0, 1, f_ref=f_ref, smooth=True)


def b3_trace_maximization(struct: type, d: int = 1, n: int = 5) -> Built:
    """B3: ``−tr(VᵀAV)`` s.t. ``VᵀV = I_d`` (d² equalities); A 5×5 symmetric (seed 0)."""
    torch.manual_seed(0)
    A = torch.randn(n, n)
    A = ((A + A.T) / 2).to(DOUBLE)
    x0 = torch.randn(n * d, 1).to(DOUBLE)

    def combined_fn(X):
        V = X.V
        ce = struct()
        ce.c1 = V.T @ V - torch.eye(d, dtype=V.dtype)
        return -torch.trace(V.T @ A @ V), None, ce

    var_spec = {"V": [n, d]}
    opts: dict[str, Any] = {"x0": x0, "maxit": 3000 if d == 1 else 1000}
    if d > 1:
        opts["opt_tol"] = 5e-6
    f_ref = -float(torch.linalg.eigvalsh(A)[-d:].sum())
    return var_spec, combined_fn, opts, _meta(var_spec, 0, d * d, f_ref=f_ref, smooth=True)


def c1_robust_pca(struct: type, d1: int = 3, d2: int = 4, eta: float = 0.05) -> Built:
    """C1: ``‖M‖_* + η‖S‖₁`` s.t. ``M + S = Y`` (12 equalities); Y 3×4 (seed 1)."""
    torch.manual_seed(1)
    Y = torch.randn(d1, d2).to(DOUBLE)

    def combined_fn(X):
        M, S = X.M, X.S
        ce = struct()
        ce.c1 = M + S - Y
        return torch.linalg.matrix_norm(M, ord="nuc") + eta * S.abs().sum(), None, ce

    var_spec = {"M": [d1, d2], "S": [d1, d2]}
    opts = {"x0": 0.2 * torch.ones(2 * d1 * d2, 1, dtype=DOUBLE), "opt_tol": 1e-6}
    return var_spec, combined_fn, opts, _meta(var_spec, 0, d1 * d2)


def c2_generalized_lasso(struct: type, n: int = 80, eta: float = 0.5) -> Built:
    """C2: 1-D TV denoising ``‖x − b‖² + η‖Fx‖₁`` (unconstrained); b uniform (seed 1)."""
    torch.manual_seed(1)
    b = torch.rand(n, 1).to(DOUBLE)
    F = (torch.diag(torch.ones(n), 0) * -1 + torch.diag(torch.ones(n - 1), 1))[:-1].to(DOUBLE)

    def combined_fn(X):
        x = X.x
        return ((x - b).T @ (x - b)).sum() + eta * (F @ x).abs().sum(), None, None

    var_spec = {"x": [n, 1]}
    opts = {"x0": torch.ones(n, 1, dtype=DOUBLE)}
    return var_spec, combined_fn, opts, _meta(var_spec, 0, 0)


def c3_logistic_l1_path(struct: type, points: int = 16) -> Built:
    """C3: l1-regularized logistic regression on iris 0/1, the whole path of 16 values of C."""
    import numpy as np
    from sklearn.datasets import load_iris
    from sklearn.svm import l1_min_c

    X_np, y_np = load_iris(return_X_y=True)
    keep = y_np != 2
    X_np, y_np = X_np[keep], y_np[keep]
    X_np = X_np / X_np.max()
    Cs = l1_min_c(X_np, y_np, loss="log") * np.logspace(0, 7, points)
    Xt = torch.tensor(X_np, dtype=DOUBLE)
    yt = torch.tensor(y_np, dtype=DOUBLE).reshape(-1, 1)

    def make(C: float) -> Callable[[Any], Any]:
        def combined_fn(Xs):
            w = Xs.w
            return torch.log1p(torch.exp(-yt * (Xt @ w))).sum() + w.abs().sum() / C, None, None

        return combined_fn

    def opts() -> dict[str, Any]:
        return {"x0": torch.zeros(4, 1, dtype=DOUBLE), "maxit": 50, "opt_tol": 1e-6}

    path = [(make(float(C)), opts()) for C in Cs]
    var_spec = {"w": [4, 1]}
    meta = _meta(var_spec, 0, 0, path=path, path_values={"C": [float(c) for c in Cs]})
    return var_spec, path[0][0], path[0][1], meta


# --------------------------------------------------------------------------------------------
# constraints suite: many scalar constraints
# --------------------------------------------------------------------------------------------


def svm_data(n: int, d: int = 20, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two seeded Gaussian blobs in ``R^d`` with labels ±1 (overlapping, so some ζ > 0)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0).to(DOUBLE)
    center = torch.full((d,), 1.5 / math.sqrt(d), dtype=DOUBLE)
    X = y[:, None] * center + torch.randn(n, d, generator=g, dtype=DOUBLE)
    return X, y


def svm_soft_margin(
    struct: type, n: int = 200, d: int = 20, C: float = 10.0, device: str = "cpu"
) -> Built:
    """Soft-margin SVM (primal): ``½‖w‖² + (C/n)Σζ`` s.t. ``y_i(x_iᵀw + b) ≥ 1 − ζ_i``, ``ζ ≥ 0``.

    2n scalar inequalities (one per sample plus ζ ≥ 0), n + d + 1 variables, a convex QP
    (smooth), so SLSQP/IPOPT are fair peers. x0: w = 0, b = 0, ζ = 1 (feasible).
    """
    X, y = svm_data(n, d)
    X, y = X.to(device), y.to(device)

    def combined_fn(V):
        w, b, zeta = V.w, V.b, V.zeta
        margin = y.reshape(-1, 1) * (X @ w + b)
        ci = struct()
        ci.margin = 1 - zeta - margin
        ci.zeta_nonneg = -zeta
        f = 0.5 * (w * w).sum() + (C / n) * zeta.sum()
        return f, ci, None

    var_spec = {"w": [d, 1], "b": [1, 1], "zeta": [n, 1]}
    x0 = torch.cat([torch.zeros(d + 1, 1, dtype=DOUBLE), torch.ones(n, 1, dtype=DOUBLE)])
    opts = {"x0": x0, "maxit": 500, "opt_tol": 1e-6}
    return var_spec, combined_fn, opts, _meta(var_spec, 2 * n, 0, smooth=True, samples=n)


class DigitsCNN(torch.nn.Module):
    """A small CNN for 28×28 digits: two 5×5 conv + ReLU + 2×2 max-pool stages, one linear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 8, 5, padding=2)
        self.conv2 = torch.nn.Conv2d(8, 16, 5, padding=2)
        self.fc = torch.nn.Linear(16 * 7 * 7, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = torch.nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc(x.flatten(1))


CNN_CACHE = CACHE / "digits_cnn.pt"


def prepare_digits_cnn(epochs: int = 30, path: Path = CNN_CACHE) -> dict[str, Any]:
    """Train :class:`DigitsCNN` on scikit-learn's ``load_digits`` and cache it (float64).

    The 8×8 images (values 0..16) are scaled to [0, 1] and upsampled bilinearly to 28×28, so
    the attack has 784 pixels as on MNIST. 80 % train / 20 % test split (fixed permutation, seed
    0); Adam, one thread, ``epochs`` epochs with seeded shuffles, so every machine builds the
    same network (an earlier time budget of 10 s made the instance depend on the machine's
    speed; 30 epochs is what it gave on the machines of the recorded runs). The attacked image
    is the first test image that the trained network classifies correctly. Returns the cached
    dict (the weights, the image, its label, the test accuracy and the epochs trained); a
    cache trained for another number of epochs is rebuilt.
    """
    if path.exists():
        cached = torch.load(path, weights_only=True)
        if int(cached["epochs"]) == epochs:
            return cached
    from sklearn.datasets import load_digits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    X_np, y_np = load_digits(return_X_y=True)
    X = torch.tensor(X_np, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0
    X = torch.nn.functional.interpolate(X, size=(28, 28), mode="bilinear", align_corners=False)
    X = X.clamp(0.0, 1.0)
    y = torch.tensor(y_np, dtype=torch.long)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    cut = int(0.8 * len(y))
    tr, te = perm[:cut], perm[cut:]
    model = DigitsCNN()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for epoch in range(epochs):
        order = tr[torch.randperm(len(tr), generator=torch.Generator().manual_seed(epoch))]
        for i in range(0, len(order), 64):
            idx = order[i : i + 64]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(X[idx]), y[idx]).backward()
            opt.step()
    torch.set_num_threads(threads)
    model = model.double().eval()
    with torch.no_grad():
        pred = model(X[te].double()).argmax(1)
    acc = float((pred == y[te]).double().mean())
    first = int(te[(pred == y[te]).nonzero()[0, 0]])
    out = {
        "state": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "image": X[first : first + 1].double().clone(),
        "label": torch.tensor(int(y[first])),
        "test_accuracy": torch.tensor(acc),
        "epochs": torch.tensor(epochs),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{time.time_ns()}")
    torch.save(out, tmp)
    tmp.replace(path)
    return out


def cnn_linf_attack(
    struct: type,
    fold_box: bool = False,
    maxit: int = 100,
    device: str = "cpu",
    box: str | None = None,
) -> Built:
    """Minimum-distance L∞ attack on :class:`DigitsCNN` with a slack ``t``.

    ``min t`` s.t. ``−t ≤ x' − x ≤ t`` (2·784 inequalities), ``z_y(x') − max_{i≠y} z_i(x') ≤ 0``
    (misclassified), and the box ``0 ≤ x' ≤ 1``: either 2·784 scalar inequalities
    (``fold_box=False``), folded into one, ``Σ max(−x', 0) + max(x' − 1, 0) ≤ 0``
    (``fold_box=True``), or ncvx's simple bounds (``box="bounds"``: ncvx only).
    x0: x' = x (clean image), t = 0.
    """
    if box not in (None, "rows", "folded", "bounds"):
        raise ValueError(f"box must be 'rows', 'folded' or 'bounds', got {box!r}")
    if box is not None:
        fold_box = box == "folded"
    data = prepare_digits_cnn()
    model = DigitsCNN().double()
    model.load_state_dict(data["state"])
    model.eval().to(device)
    for p in model.parameters():
        p.requires_grad_(False)
    x = data["image"].to(device)
    label = int(data["label"])

    def combined_fn(V):
        xa, t = V.x_adv, V.t
        z = model(xa)[0]
        others = torch.cat([z[:label], z[label + 1 :]])
        ci = struct()
        ci.upper = (xa - x) - t
        ci.lower = (x - xa) - t
        ci.margin = z[label] - others.max()
        if box == "bounds":
            pass
        elif fold_box:
            ci.box = (torch.relu(-xa) + torch.relu(xa - 1)).sum()
        else:
            ci.box_lo = -xa
            ci.box_hi = xa - 1
        return t.sum(), ci, None

    var_spec = {"x_adv": [1, 1, 28, 28], "t": [1, 1]}
    x0 = torch.cat([x.reshape(-1, 1).cpu(), torch.zeros(1, 1, dtype=DOUBLE)])
    m_i = 2 * 784 + 1 + (0 if box == "bounds" else 1 if fold_box else 2 * 784)
    opts: dict[str, Any] = {"x0": x0, "maxit": maxit}
    if box == "bounds":
        opts["bounds"] = {"x_adv": (0.0, 1.0)}
    return var_spec, combined_fn, opts, _meta(var_spec, m_i, 0)


# --------------------------------------------------------------------------------------------
# scale suite: L-BFGS on large n with a few constraints
# --------------------------------------------------------------------------------------------


def synthetic_image(side: int, sigma: float = 0.1, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """A piecewise-constant ``side × side`` image (rectangle + disk) and a noisy copy."""
    g = torch.Generator().manual_seed(seed)
    u = torch.linspace(0.0, 1.0, side, dtype=DOUBLE)
    r, c = torch.meshgrid(u, u, indexing="ij")
    clean = 0.2 + 0.5 * ((r > 0.2) & (r < 0.6) & (c > 0.15) & (c < 0.55)).to(DOUBLE)
    clean = clean + 0.3 * (((r - 0.65) ** 2 + (c - 0.7) ** 2) < 0.04).to(DOUBLE)
    noisy = clean + sigma * torch.randn(side, side, generator=g, dtype=DOUBLE)
    return clean, noisy


def tv_denoise(
    struct: type, n: int = 10_000, maxit: int = 20, memory: int = 10, device: str = "cpu"
) -> Built:
    """Constrained TV denoising of a synthetic ``√n × √n`` image with L-BFGS(``memory``).

    ``min TV(x)`` (anisotropic, l1 of horizontal and vertical differences) s.t. the
    discrepancy ``mean((x − b)²) ≤ σ²`` and the mean ``mean(x) = mean(b)``. x0 = b (feasible).
    ``maxit`` is small on purpose: the suite measures time per iteration and memory against n.
    """
    side = round(math.sqrt(n))
    sigma = 0.1
    _, b = synthetic_image(side, sigma)
    b_device = b.to(device)
    b_mean = b_device.mean()

    def combined_fn(V):
        x = V.x
        tv = (x[1:, :] - x[:-1, :]).abs().sum() + (x[:, 1:] - x[:, :-1]).abs().sum()
        ci = struct()
        ci.discrepancy = ((x - b_device) ** 2).mean() - sigma**2
        ce = struct()
        ce.mean = x.mean() - b_mean
        return tv, ci, ce

    var_spec = {"x": [side, side]}
    opts = {"x0": b.reshape(-1, 1).clone(), "maxit": maxit, "limited_mem_size": memory}
    return var_spec, combined_fn, opts, _meta(var_spec, 1, 1, side=side)


BUILDERS: dict[str, Callable[..., Built]] = {
    "A1": a1_rosenbrock,
    "A2": a2_spectral_abscissa,
    "A3": a3_dictionary_learning,
    "B1": b1_feasibility,
    "B2": b2_sphere_rayleigh,
    "B3": b3_trace_maximization,
    "C1": c1_robust_pca,
    "C2": c2_generalized_lasso,
    "C3": c3_logistic_l1_path,
    "svm": svm_soft_margin,
    "cnn_attack": cnn_linf_attack,
    "tv_denoise": tv_denoise,
}


def build(builder: str, struct: type, device: str = "cpu", **params: Any) -> Built:
    """Build a problem by builder name (the name is what crosses the process boundary).

    ``device``: where the problem's data (matrices, networks) live; builders that do not take
    a ``device`` argument only run on the CPU.
    """
    try:
        fn = BUILDERS[builder]
    except KeyError:
        raise ValueError(f"unknown builder {builder!r}; known: {sorted(BUILDERS)}") from None
    if device != "cpu":
        if "device" not in inspect.signature(fn).parameters:
            raise ValueError(f"builder {builder!r} builds CPU data only (no device argument)")
        params = {**params, "device": device}
    return fn(struct, **params)


def prepare(builder: str, **params: Any) -> None:
    """One-time set-up in the parent process before any solver runs (e.g. train the CNN)."""
    if builder == "cnn_attack":
        prepare_digits_cnn()
