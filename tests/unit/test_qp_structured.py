"""Sparse + low-rank QPs: the structure is exact, and the interior-point method solves them.

Checked against the dense ladder (:class:`ncvx.qp.QPSolver` on the formed matrix), against
the explicit BFGS matrix, and end to end on a soft-margin SVM with the structured path forced.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import ncvx
import ncvx.directions as directions_mod
import ncvx.qp.ipm as ipm_mod
from ncvx.bounds import masked
from ncvx.gram import identity, low_rank_of, structured_gram_of
from ncvx.hessian import LBFGS, DenseBFGS
from ncvx.qp import QPProblem, QPSolver, kkt_residuals
from ncvx.qp import structured as structured_mod
from ncvx.qp.ipm import solve_structured
from ncvx.qp.solver import restore_feasibility
from ncvx.qp.structured import StructuredGram, StructuredQP, structured_gram

F64 = torch.float64


def _svm_like_rows(samples: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """Margin rows over (w, b, ζ_i) and ζ_i ≥ 0 rows: a few dense columns, the rest sparse."""
    n = d + 1 + samples
    R = np.zeros((2 * samples, n))
    R[:samples, :d] = rng.standard_normal((samples, d))
    R[:samples, d] = rng.choice([-1.0, 1.0], samples)
    R[np.arange(samples), d + 1 + np.arange(samples)] = -1.0
    R[samples + np.arange(samples), d + 1 + np.arange(samples)] = -1.0
    return R


def _bfgs(n: int, updates: int, rng: np.random.Generator) -> DenseBFGS:
    H = DenseBFGS(torch.eye(n, dtype=F64))
    for _ in range(updates):
        s = torch.as_tensor(rng.standard_normal(n))
        y = s * torch.as_tensor(rng.uniform(0.2, 5.0, n)) + 0.05 * torch.as_tensor(
            rng.standard_normal(n)
        )
        H.update(s, y)
    return H


def _random_structured(k: int, r: int, rng: np.random.Generator) -> StructuredGram:
    """PSD ``S + U M Uᵀ`` with an indefinite ``M`` (as BFGS factors are)."""
    B = sp.random(k, k, density=2.0 / k, random_state=int(rng.integers(1 << 30)))
    S = (B @ B.T + sp.diags(rng.uniform(0.0, 1.0, k) * (rng.random(k) < 0.5))).tocsr()
    U = rng.standard_normal((k, r))
    G = rng.standard_normal((r, r))
    M = G @ G.T / r - 0.3 * np.eye(r)  # indefinite; made PSD overall below
    low = np.linalg.eigvalsh(S.toarray() + U @ M @ U.T)[0]
    if low < 0:
        S = (S + sp.eye(k) * (1e-3 - low)).tocsr()
    return StructuredGram(S, U, M)


def test_bfgs_low_rank_form_is_the_matrix():
    rng = np.random.default_rng(0)
    H = _bfgs(40, 15, rng)
    beta, W, M = H.low_rank()
    torch.testing.assert_close(
        beta * torch.eye(40, dtype=F64) + W @ M @ W.T, H.H, atol=1e-12, rtol=0
    )
    general = DenseBFGS(torch.diag(torch.arange(1.0, 41.0, dtype=F64)))
    assert general.low_rank() is None  # no tracked form from a general H0


def test_lbfgs_and_identity_low_rank_forms():
    rng = np.random.default_rng(1)
    L = LBFGS(30, 5)
    for _ in range(8):
        s = torch.as_tensor(rng.standard_normal(30))
        L.update(s, 2.0 * s + 0.1 * torch.as_tensor(rng.standard_normal(30)))
    beta, W, M = low_rank_of(L.apply)
    torch.testing.assert_close(
        beta * torch.eye(30, dtype=F64) + W @ M @ W.T, L.as_matrix(), atol=1e-10, rtol=0
    )
    assert low_rank_of(None)[0] == 1.0  # the identity
    beta, W, M = low_rank_of(identity)  # the H = I of the fallback steering (level 1)
    assert beta == 1.0 and W.numel() == 0 and M.numel() == 0
    assert low_rank_of(lambda v: v) is None  # an opaque operator has no known form


def test_identity_steering_of_many_sparse_rows_is_structured():
    """Level 1 (steering with H = I) of an SVM-sized problem gets the sparse form (it went to a
    dense PIQP solve of 5022 rows, 17 s, when its identity was a local function)."""
    rng = np.random.default_rng(5)
    R = torch.as_tensor(_svm_like_rows(structured_mod.MIN_SIZE, 8, rng)).to_sparse()
    out = structured_gram(R, lambda: low_rank_of(identity))
    assert out is not None
    P, _ = out
    dense = (R.to_dense() @ R.to_dense().T).numpy()
    y = rng.standard_normal(R.shape[0])
    np.testing.assert_allclose(P @ y, dense @ y, atol=1e-9)
    assert directions_mod.identity is identity  # the operator level 1 passes to the QP


def test_structured_gram_matches_dense_products(monkeypatch):
    monkeypatch.setattr(structured_mod, "MIN_SIZE", 10)
    rng = np.random.default_rng(2)
    R = torch.as_tensor(_svm_like_rows(300, 8, rng))
    H = _bfgs(R.shape[1], 12, rng)
    out = structured_gram(R, H.low_rank())
    assert out is not None
    P, HRt = out
    y = torch.as_tensor(rng.standard_normal(R.shape[0]))
    torch.testing.assert_close(HRt @ y, H.H @ (R.T @ y), atol=1e-10, rtol=0)
    dense = (R @ H.H @ R.T).numpy()
    np.testing.assert_allclose(P.dense(), 0.5 * (dense + dense.T), atol=1e-10)
    np.testing.assert_allclose(P.diagonal(), np.diag(dense), atol=1e-10)
    x = rng.standard_normal(R.shape[0])
    np.testing.assert_allclose(P @ x, dense @ x, atol=1e-9)
    # no low-rank form, or dense rows of rank above k/2: the dense path
    assert structured_gram(torch.randn(400, 30, dtype=F64), H.low_rank() and None) is None
    assert (
        structured_gram(
            torch.randn(400, 300, dtype=F64), (1.0, torch.zeros(300, 0), torch.zeros(0, 0))
        )
        is None
    )


def _attack_like_rows(pixels: int, dense: int, rng: np.random.Generator) -> np.ndarray:
    """An L∞ attack's rows over (x', t): ``±(x'_i − x_i) − t ≤ 0`` and the box ``0 ≤ x'_i ≤ 1``
    (four rows per pixel, ``t`` a dense column), plus ``dense`` rows over every pixel (one
    classifier margin per gradient sample)."""
    n = pixels + 1
    R = np.zeros((4 * pixels + dense, n))
    idx = np.arange(pixels)
    R[idx, idx], R[pixels + idx, idx] = 1.0, -1.0
    R[: 2 * pixels, pixels] = -1.0
    R[2 * pixels + idx, idx], R[3 * pixels + idx, idx] = 1.0, -1.0
    R[4 * pixels :, :pixels] = rng.standard_normal((dense, pixels))
    return R


@pytest.mark.parametrize("updates", [0, 6])
def test_structured_gram_moves_dense_rows_into_the_low_rank_part(monkeypatch, updates):
    """Dense rows among sparse ones that fill ``C_s C_sᵀ`` beyond ``SPARSE_FILL``: the Gram
    matrix is still exact, ``S`` stays sparse (no dense row or column), the rank grows by two
    per dense row, and the IPM agrees with the dense ladder. Below the fill limit they stay in
    ``S`` (rank unchanged)."""
    monkeypatch.setattr(structured_mod, "MIN_SIZE", 10)
    monkeypatch.setattr(structured_mod, "SPARSE_FILL", 8)  # 603 rows: S has ~6000 nonzeros
    rng = np.random.default_rng(5)
    R = torch.as_tensor(_attack_like_rows(150, 3, rng))
    n = R.shape[1]
    if updates:
        H = _bfgs(n, updates, rng)
        low_rank, H_dense = H.low_rank(), H.H
    else:
        low_rank = (0.7, torch.zeros(n, 0, dtype=F64), torch.zeros(0, 0, dtype=F64))
        H_dense = 0.7 * torch.eye(n, dtype=F64)
    out = structured_gram(R, low_rank)
    assert out is not None
    P, HRt = out
    dense = (R @ H_dense @ R.T).numpy()
    np.testing.assert_allclose(P.dense(), 0.5 * (dense + dense.T), atol=1e-10)
    np.testing.assert_allclose(P.diagonal(), np.diag(dense), atol=1e-10)
    assert P.rank == 1 + low_rank[1].shape[1] + 2 * 3
    assert int(np.max(np.diff(P.S.indptr))) <= 4  # one pixel's rows couple, nothing else
    y = torch.as_tensor(rng.standard_normal(R.shape[0]))
    torch.testing.assert_close(HRt @ y, H_dense @ (R.T @ y), atol=1e-10, rtol=0)
    k = R.shape[0]
    q = rng.standard_normal(k)
    structured = StructuredQP(P, q, np.zeros(k), np.ones(k))
    x = solve_structured(structured)
    assert kkt_residuals(structured, x)["kkt"] <= 1e-8
    reference = QPSolver().solve(QPProblem(P.dense(), q, np.zeros(k), np.ones(k)))
    objective = lambda z: 0.5 * z @ (P @ z) + q @ z  # noqa: E731
    assert objective(x) <= objective(reference.x) + 1e-9 * (1.0 + abs(objective(reference.x)))
    monkeypatch.setattr(structured_mod, "SPARSE_FILL", 20)
    kept = structured_gram(R, low_rank)
    assert kept is not None and kept[0].rank == 1 + low_rank[1].shape[1]
    np.testing.assert_allclose(kept[0].dense(), P.dense(), atol=1e-10)


@pytest.mark.parametrize("updates", [0, 12])
def test_structured_gram_from_sparse_rows_matches_dense_rows(monkeypatch, updates):
    """The steering QP hands over a sparse row selection of C: same Gram and operator as from
    the dense rows (also with H = βI, no low-rank part yet)."""
    monkeypatch.setattr(structured_mod, "MIN_SIZE", 10)
    rng = np.random.default_rng(3)
    R = torch.as_tensor(_svm_like_rows(300, 8, rng))
    low_rank = (
        _bfgs(R.shape[1], updates, rng).low_rank()
        if updates
        else (0.7, torch.zeros(R.shape[1], 0, dtype=F64), torch.zeros(0, 0, dtype=F64))
    )
    from_dense = structured_gram(R, low_rank)
    from_sparse = structured_gram(R.to_sparse(), low_rank)
    assert from_dense is not None and from_sparse is not None
    np.testing.assert_allclose(from_sparse[0].dense(), from_dense[0].dense(), atol=1e-12)
    y = torch.as_tensor(rng.standard_normal(R.shape[0]))
    torch.testing.assert_close(from_sparse[1] @ y, from_dense[1] @ y, atol=1e-12, rtol=0)


@pytest.mark.parametrize("equality", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ipm_matches_the_dense_ladder(seed, equality):
    rng = np.random.default_rng(seed)
    k, r = 120, 7
    P = _random_structured(k, r, rng)
    q = rng.standard_normal(k)
    lb = -rng.uniform(0.0, 1.0, k) * (rng.random(k) < 0.5)
    ub = lb + rng.uniform(0.1, 2.0, k)
    A = b = None
    if equality:
        A = (rng.random(k) < 0.3).astype(float)[None, :]
        b = np.array([float(A[0] @ (0.5 * (lb + ub)))])
    prob = StructuredQP(P, q, lb, ub, A, b)
    x = restore_feasibility(prob, solve_structured(prob))
    dense = QPProblem(P.dense(), q, lb, ub, A, b)
    ref = QPSolver().solve(dense)
    assert kkt_residuals(dense, x)["kkt"] <= 1e-7
    assert prob.objective(x) <= dense.objective(ref.x) + 1e-9 * (1 + abs(dense.objective(ref.x)))


def _paired_structured(k: int, r: int, pairs: int, rng: np.random.Generator) -> StructuredGram:
    """PSD ``S + U M Uᵀ`` whose ``S`` is a diagonal plus ``pairs`` disjoint symmetric pairs
    (the SVM's margin and nonnegativity rows of one sample)."""
    idx = rng.permutation(k)[: 2 * pairs].reshape(pairs, 2)
    d = rng.uniform(0.1, 2.0, k)
    rows = [np.arange(k)]
    cols = [np.arange(k)]
    vals = [d]
    off = rng.uniform(-1.0, 1.0, pairs) * np.sqrt(d[idx[:, 0]] * d[idx[:, 1]])
    rows += [idx[:, 0], idx[:, 1]]
    cols += [idx[:, 1], idx[:, 0]]
    vals += [off, off]
    S = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(k, k)
    )
    U = rng.standard_normal((k, r))
    G = rng.standard_normal((r, r))
    return StructuredGram(S, U, G @ G.T / max(r, 1))


@pytest.mark.parametrize("r", [0, 5])
def test_pair_cholesky_newton_matches_the_sparse_lu(r):
    """S = diagonal + disjoint pairs: the elementwise Cholesky gives the LU path's Newton
    solves and preconditioner to rounding; other patterns keep the LU."""
    rng = np.random.default_rng(3)
    P = _paired_structured(200, r, 40, rng)
    assert P.pairs() is not None and P.pairs()[0].size == 40
    D = 10.0 ** rng.uniform(-6, 6, 200)
    fast = ipm_mod._Newton(P, D, 1e-9)
    assert fast.chol is not None and fast.lu is None
    slow = ipm_mod._Newton(StructuredGram(P.S, P.U, P.M, _pairs=None), D, 1e-9)
    assert slow.chol is None
    v = rng.standard_normal(200)
    np.testing.assert_allclose(fast.precondition(v), slow.precondition(v), rtol=1e-9, atol=0)
    np.testing.assert_allclose(fast.solve(v), slow.solve(v), rtol=1e-9, atol=1e-12)
    dense = P.dense() + np.diag(D)
    np.testing.assert_allclose(dense @ fast.solve(v), v, rtol=0, atol=1e-9 * np.abs(v).max())
    # a row with two off-diagonal entries: not of that form
    S3 = P.S.tolil()
    S3[0, 1] = S3[1, 0] = S3[0, 2] = S3[2, 0] = 0.01
    assert StructuredGram(S3.tocsr(), P.U, P.M).pairs() is None


def test_ipm_on_paired_problems_matches_the_dense_ladder():
    rng = np.random.default_rng(11)
    P = _paired_structured(150, 6, 30, rng)
    q = rng.standard_normal(150)
    lb, ub = np.zeros(150), np.ones(150)
    prob = StructuredQP(P, q, lb, ub)
    x = restore_feasibility(prob, solve_structured(prob))
    dense = QPProblem(P.dense(), q, lb, ub)
    ref = QPSolver().solve(dense)
    assert kkt_residuals(dense, x)["kkt"] <= 1e-7
    assert prob.objective(x) <= dense.objective(ref.x) + 1e-9 * (1 + abs(dense.objective(ref.x)))


def test_ipm_keeps_fixed_coordinates_and_the_solver_dispatches():
    rng = np.random.default_rng(5)
    P = _random_structured(60, 4, rng)
    lb, ub = np.zeros(60), np.ones(60)
    lb[:5] = ub[:5] = 0.25  # fixed
    prob = StructuredQP(P, rng.standard_normal(60), lb, ub)
    sol = QPSolver().solve(prob)
    assert sol.backend.startswith("ipm-structured")
    np.testing.assert_array_equal(sol.x[:5], 0.25)
    assert sol.kkt <= 1e-6


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(2, 40), r=st.integers(0, 5))
def test_ipm_optimal_on_random_problems(seed, k, r):
    rng = np.random.default_rng(seed)
    P = _random_structured(k, r, rng)
    q = 10.0 ** rng.uniform(-3, 2) * rng.standard_normal(k)
    prob = StructuredQP(P, q, np.zeros(k), np.ones(k))
    x = restore_feasibility(prob, solve_structured(prob))
    dense = QPProblem(P.dense(), q, np.zeros(k), np.ones(k))
    ref = QPSolver().solve(dense)
    scale = 1.0 + abs(dense.objective(ref.x))
    assert dense.objective(x) <= dense.objective(ref.x) + 1e-8 * scale


def _svm(samples: int, d: int = 6):
    g = torch.Generator().manual_seed(0)
    y = torch.where(torch.rand(samples, generator=g) < 0.5, -1.0, 1.0).to(F64)
    X = y[:, None] * 0.8 + torch.randn(samples, d, generator=g, dtype=F64)

    def fn(v):
        w, b, zeta = v["w"], v["b"], v["zeta"]
        margin = y * (X @ w + b)
        f = 0.5 * (w * w).sum() + (10.0 / samples) * zeta.sum()
        return f, torch.cat([1 - zeta - margin, -zeta]), None

    x0 = {
        "w": torch.zeros(d, dtype=F64),
        "b": torch.zeros(1, dtype=F64),
        "zeta": torch.ones(samples, dtype=F64),
    }
    return fn, x0


def test_svm_with_the_structured_path_reaches_the_dense_answer(monkeypatch):
    fn, x0 = _svm(150)
    dense = ncvx.solve(fn, x0, maxit=300, opt_tol=1e-6, print_level=0)
    monkeypatch.setattr(structured_mod, "MIN_SIZE", 50)
    used = []
    real = structured_mod.structured_gram

    def spy(rows, low_rank):
        out = real(rows, low_rank)
        used.append(out is not None)
        return out

    monkeypatch.setattr(structured_mod, "structured_gram", spy)
    res = ncvx.solve(fn, x0, maxit=300, opt_tol=1e-6, print_level=0)
    assert any(used), "the structured path was not taken"
    assert int(res.status) == 0 and int(dense.status) == 0
    assert abs(res.final.f - dense.final.f) <= 1e-7 * abs(dense.final.f)
    assert res.final.tv <= 1e-6


@pytest.mark.cuda
def test_svm_structured_path_on_cuda(monkeypatch):
    """The structured path with CUDA tensors (sparse products on the device, QP on the host)."""
    fn, x0 = _svm(150)
    cpu = ncvx.solve(fn, x0, maxit=300, opt_tol=1e-6, print_level=0)
    monkeypatch.setattr(structured_mod, "MIN_SIZE", 50)
    x0_gpu = {k: v.cuda() for k, v in x0.items()}
    g = torch.Generator().manual_seed(0)
    y = torch.where(torch.rand(150, generator=g) < 0.5, -1.0, 1.0).to(F64)
    X = y[:, None] * 0.8 + torch.randn(150, 6, generator=g, dtype=F64)
    y, X = y.cuda(), X.cuda()

    def fn_gpu(v):
        margin = y * (X @ v["w"] + v["b"])
        f = 0.5 * (v["w"] ** 2).sum() + (10.0 / 150) * v["zeta"].sum()
        return f, torch.cat([1 - v["zeta"] - margin, -v["zeta"]]), None

    res = ncvx.solve(fn_gpu, x0_gpu, maxit=300, opt_tol=1e-6, print_level=0, torch_device="cuda")
    assert int(res.status) == 0
    assert abs(res.final.f - cpu.final.f) <= 1e-7 * abs(cpu.final.f)


def _load_structured(name: str) -> StructuredQP:
    data = np.load(Path(__file__).parent.parent / "data" / name)
    k = data["q"].shape[0]
    S = sp.csr_matrix((data["S_data"], data["S_indices"], data["S_indptr"]), shape=(k, k))
    A, b = (data["A"], data["b"]) if "A" in data.files else (None, None)
    P = StructuredGram(S, data["U"], data["M"])
    return StructuredQP(P, data["q"], data["lb"], data["ub"], A, b)


@pytest.mark.parametrize(
    ("name", "accuracy"),
    [
        # a steering QP (2014 rows, rank 2, Gram diagonal 2e5 … 1.2e8): judged by the global
        # complementarity alone, the small-gradient coordinates stayed at ~1e-6 (kkt 3.7e-6)
        ("cnn_attack_steering_qp.npz", 1e-9),
        # a termination QP whose equality row pins λ₀ = 1 on [0, 1] (one objective sample):
        # no interior, the multipliers blew up (kkt 1.9e-4)
        ("cnn_attack_termination_qp.npz", 1e-6),
    ],
)
def test_ipm_on_recorded_cnn_attack_qps(name, accuracy):
    """QPs recorded from the L∞ CNN attack with its box as rows, where the structured IPM used
    to miss the loose tolerance and the 2000-row dense ladder took 2–15 s each."""
    problem = _load_structured(name)
    x = solve_structured(problem)
    assert kkt_residuals(problem, x)["kkt"] <= accuracy
    if problem.A is not None:
        assert x[0] == pytest.approx(1.0, abs=1e-15)
    answer = QPSolver().solve(problem, loose_tol=1e-5)
    assert answer.backend == "ipm-structured"


@pytest.mark.parametrize("sparse", [False, True])
def test_structured_gram_of_a_masked_bfgs_is_exact(monkeypatch, sparse):
    """With simple bounds the operators are ``P_F H P_F``: the structured form of its Gram
    matrix and its ``H Rᵀ`` operator equal the dense ones (they were dense before)."""
    monkeypatch.setattr(structured_mod, "MIN_SIZE", 10)
    rng = np.random.default_rng(7)
    R = torch.as_tensor(_attack_like_rows(120, 2, rng))
    n = R.shape[1]
    H = _bfgs(n, 5, rng)
    free = torch.as_tensor(rng.random(n) < 0.7)
    op = masked(H.apply, free)
    out = structured_gram_of(R.to_sparse() if sparse else R, op)
    assert out is not None
    P, HRt = out
    eye = torch.eye(n, dtype=F64)
    PHP = torch.stack([op(eye[:, i]) for i in range(n)], dim=1)
    dense = (R @ PHP @ R.T).numpy()
    np.testing.assert_allclose(P.dense(), 0.5 * (dense + dense.T), atol=1e-9)
    y = torch.as_tensor(rng.standard_normal(R.shape[0]))
    torch.testing.assert_close(HRt @ y, op(R.T @ y), atol=1e-10, rtol=0)
    # an operator without a low-rank form stays on the dense path
    assert structured_gram_of(R, masked(lambda v: 2.0 * v, free)) is None


@pytest.mark.parametrize("deflation", [True, False])
def test_deflation_keeps_cg_short_on_a_recorded_cnn_bounds_qp(monkeypatch, deflation):
    """A steering QP of the CNN attack with the box as simple bounds (k = 1530, rank 19): each
    pixel's two L∞ rows give ``S`` a singular block ``γ[[1, -1], [-1, 1]]`` whose null vector
    the slack's column spans. Late in the iteration Woodbury's preconditioned operator had
    eigenvalues at -1e-4 … -1e-8 and CG ran to its cap on most systems; the deflated form
    needs far fewer preconditioner applications (672 against 1555 here)."""
    problem = _load_structured("cnn_bounds_steering_qp.npz")
    if not deflation:
        monkeypatch.setattr(ipm_mod, "SWITCH_AFTER", 10**9)
    applications = [0]
    inner = ipm_mod._Newton.precondition

    def counted(self, r):
        applications[0] += 1
        return inner(self, r)

    monkeypatch.setattr(ipm_mod._Newton, "precondition", counted)
    x = solve_structured(problem)
    assert kkt_residuals(problem, x)["kkt"] <= ipm_mod.KKT_ACCEPT
    if deflation:
        assert applications[0] < 800
    else:  # Woodbury alone: the mechanism the deflation is there for
        assert applications[0] > 1200


def test_a_jammed_predictor_corrector_takes_a_centering_step(monkeypatch):
    """A termination QP of the same attack (k = 1548, one equality row, Gram diagonal up to
    6e28): Mehrotra's steps shrank to 1e-4 against the boundary and the answer stayed at 5e-5,
    above the termination QPs' 1e-5, so the dense ladder took over (0.7 s per DAQP call). A
    short step is now compared with a plain centering step."""
    data = np.load(Path(__file__).parent.parent / "data" / "cnn_bounds_termination_qp.npz")
    problem = _load_structured("cnn_bounds_termination_qp.npz")
    x0 = data["x0"] if "x0" in data.files else None
    assert kkt_residuals(problem, solve_structured(problem, x0, accept=1e-5))["kkt"] <= 1e-9
    monkeypatch.setattr(ipm_mod, "SHORT_STEP", 0.0)
    jammed = solve_structured(problem, x0, accept=1e-5)
    assert kkt_residuals(problem, jammed)["kkt"] > 1e-5


def test_a_termination_qp_the_interior_point_cannot_resolve_settles_in_the_dense_ladder():
    """The CNN attack's last termination QP from the suite's start (1566 rows, one objective
    sample pinned by the row, Gram diagonal 5e9 … 7.5e15, optimal value -1e-3): the interior
    point stops at 5.5e-5 and the dense ladder answers. At the termination QPs' loose tolerance
    (1e-5) it takes the first answer within it: one proximal step of the regularized active-set
    rung instead of three, each polished (4.8 s → 1.2 s here)."""
    problem = _load_structured("cnn_bounds_final_termination_qp.npz")
    solver = QPSolver()
    answer = solver.solve(problem, loose_tol=1e-5)
    assert answer.kkt <= 1e-5
    assert kkt_residuals(problem, answer.x)["kkt"] <= 1e-5
    assert solver.last_attempts[0].startswith("ipm-structured")
    assert answer.attempts <= 3  # the interior point, PIQP's refusal, one DAQP call
