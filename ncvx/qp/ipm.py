r"""A primal-dual interior-point method for box-constrained QPs with a sparse + low-rank ``P``.

Solves ``min ½ yᵀPy + qᵀy  s.t.  lb ≤ y ≤ ub`` (and optionally one row ``a·y = b``) for a
:class:`ncvx.qp.structured.StructuredGram` ``P = S + U M Uᵀ`` (Mehrotra's predictor-corrector
on the box ``[0, 1]`` after rescaling each variable by its box width). Each iteration solves
``(P + D) Δ = r`` (``D`` the diagonal barrier term) by conjugate gradients on the exact
operator, preconditioned by a sparse LU of ``S + D + δI`` (a small shift ``δ`` keeps it well
conditioned) with the low-rank part added through the Woodbury identity or, when that is
inaccurate, by deflation (:class:`_Newton`); ``O(nnz + k r²)`` per iteration.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.linalg.blas import dsyrk

from ncvx.qp.check import kkt_residuals, linearize
from ncvx.qp.structured import StructuredGram, StructuredQP

#: Relative shift of the factorized matrix (to the largest diagonal entry of ``P``); the
#: conjugate gradients remove its bias.
SHIFT = 1e-9
#: The average complementarity below which the iterate is judged by the check (next).
TOL = 1e-14
MAX_ITER = 80
#: Once the average complementarity is below ``TOL``, the iterate is also judged by the
#: backend-independent check (:func:`ncvx.qp.kkt_residuals`, per-coordinate scales): the loop
#: stops when the scaled residuals are below ``TOL`` and the check gives at most the
#: caller's ``accept`` (default ``KKT_ACCEPT``, the steering QPs' loose tolerance), or, while
#: when the check has not improved by the factor ``KKT_PROGRESS`` for ``KKT_STALL`` iterations
#: (with the best iterate; session 13: also once an iterate was acceptable, since on degenerate
#: QPs with inexact CG steps the scaled residuals never reach ``TOL`` and the loop used to run
#: to ``MAX_ITER``: 80 iterations instead of ~20). Where the usual stop is acceptable nothing
#: changes: going on
#: whenever the check exceeded 1e-9 (the strict tolerance), or stopping once it reached 1e-12,
#: changed the SVM trajectories for the worse (svm-2500: 184 iterations and 203 s instead of
#: 96 and 14 s; svm-3000: 270 instead of 95).
#: ``TOL`` alone is relative to the largest gradient: on Gram matrices whose diagonal spans
#: decades (the CNN attack's late steering QPs: 2e5 … 1.2e8) the coordinates with small
#: gradients were left at ~1e-6 instead of 0, a dual residual of 4e-6 in the check, and the
#: QP went to the dense ladder (1.7–2.8 s each instead of 0.1–0.2 s).
KKT_ACCEPT = 1e-6
#: The check on the rescaled problem (box [0, 1], a pinned row dropped) and on the caller's
#: differ by a small factor (3× on a recorded termination QP), hence a margin.
ACCEPT_MARGIN = 0.1
KKT_STALL = 6
KKT_PROGRESS = 0.9
#: Fill-reducing ordering of the sparse LU (SuperLU's default), applied symmetrically and with
#: diagonal pivots only (the matrix is symmetric positive definite, so no pivoting is needed).
#: Partial pivoting undid the ordering: on the CNN attack's arrow-shaped ``S`` (k = 3066, one
#: dense row, 18 000 nonzeros) the factors had 3.9 million nonzeros instead of 21 000, and a
#: factorization took 38–118 ms instead of 1 ms, a solve 2.5 ms instead of 0.1 ms.
ORDERING = "COLAMD"
_SPD_LU = {"diag_pivot_thresh": 0.0, "options": {"SymmetricMode": True}}
#: Newton steps on guessed faces after the interior-point iterations.
FACE_ROUNDS = 8
#: A coordinate goes on the bound its scaled gradient points at when that gradient, times this
#: gain, exceeds its distance to the bound: at a degenerate bound an interior point leaves
#: distance and gradient both ~1e-6, while free coordinates have gradients at rounding level.
GUESS_GAIN = 1e3
#: Preconditioner applications with Woodbury after which CG switches to the deflated form
#: (:class:`_Newton`); a QP whose CG once switched starts its later systems deflated. With 4,
#: the SVMs' systems that need 5–8 Woodbury steps switched too and their runs moved
#: (svm-3000: 122 iterations and 35 s instead of 95 and 21 s).
SWITCH_AFTER = 8
#: With an equality row, a predictor-corrector step shorter than this is compared with a
#: centering step (no second-order term, ``σ ≥ SAFE_SIGMA``), and the longer one is taken.
SHORT_STEP = 0.1
SAFE_SIGMA = 0.5
_DEBUG = False


class _PairCholesky:
    """``A = L Lᵀ`` for ``A = S + diag(a_extra)`` when ``S`` is a diagonal plus disjoint
    symmetric pairs (:meth:`StructuredGram.pairs`): ``L`` has ``A``'s lower pattern, so the
    factorization and the triangular solves are elementwise (``O(k)`` per column)."""

    def __init__(self, diag: np.ndarray, pairs: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
        i, j, v = pairs
        l_diag = np.sqrt(diag)
        l_ji = v / l_diag[i]
        rest = diag[j] - l_ji * l_ji
        if not (np.all(np.isfinite(l_diag)) and np.all(rest > 0.0)):
            raise np.linalg.LinAlgError("pair Cholesky: not positive definite")
        l_diag[j] = np.sqrt(rest)
        self.l_diag, self.i, self.j, self.l_ji = l_diag, i, j, l_ji

    def solve_lower(self, x: np.ndarray) -> np.ndarray:
        """``L⁻¹ x`` for ``x`` ``(k,)`` or ``(k, r)``."""
        d = self.l_diag if x.ndim == 1 else self.l_diag[:, None]
        lji = self.l_ji if x.ndim == 1 else self.l_ji[:, None]
        y = x / d
        y[self.j] = (x[self.j] - lji * y[self.i]) / d[self.j]
        return y

    def solve_upper(self, y: np.ndarray) -> np.ndarray:
        """``L⁻ᵀ y`` for ``y`` ``(k,)`` or ``(k, r)``."""
        d = self.l_diag if y.ndim == 1 else self.l_diag[:, None]
        lji = self.l_ji if y.ndim == 1 else self.l_ji[:, None]
        z = y / d
        z[self.i] = (y[self.i] - lji * z[self.j]) / d[self.i]
        return z


class _Newton:
    """``(P + D)⁻¹`` for one barrier term ``D`` (``(k,)``): a preconditioner plus CG.

    ``A = S + D + δI`` is factorized by :class:`_PairCholesky` when ``S`` has that form, else by
    a sparse LU. The low-rank part ``U M Uᵀ`` enters the preconditioner in one of two ways:

    * Woodbury (first): ``A⁻¹ - Z (I + M UᵀZ)⁻¹ M Uᵀ A⁻¹`` with ``Z = A⁻¹U``; two ``k × r``
      products per application, exact up to the shift, but it subtracts nearly equal large
      vectors when ``A`` is nearly singular on ``span(U)``;
    * deflation (when CG needs more than ``SWITCH_AFTER`` applications with Woodbury): with
      ``Q`` an orthonormal basis of ``span(Z)`` and ``T = Qᵀ(P + D)Q``, the symmetric two-level form
      ``Q T⁻¹Qᵀ + (I - Q T⁻¹QᵀK) A⁻¹ (I - K Q T⁻¹Qᵀ)`` (``K = P + D``): symmetric positive
      definite by construction, five ``k × r`` products per application.

    On the CNN attack with the box as simple bounds, ``S``'s pairs ``γ[[1, -1], [-1, 1]]`` (one
    pixel's two L∞ rows) are singular along ``(1, 1)`` and the slack ``t``'s column covers
    exactly those directions: late in the iteration (``D`` ≈ 1e-7 … 1e-12) Woodbury's
    preconditioned operator had eigenvalues at ``-1e-4 … -1e-8`` and CG stopped at its cap
    with residuals up to 4e-2 (1500-row QPs: 45 factorizations, 2000 CG steps, 0.3–0.8 s);
    the deflated form takes 1–14 steps on the same systems.
    """

    def __init__(
        self, P: StructuredGram, D: np.ndarray, shift: float, deflate: bool = False
    ) -> None:
        self.P, self.D = P, D
        self.lu = None
        self.chol: _PairCholesky | None = None
        self.deflated = False
        pairs = P.pairs()
        if pairs is not None:
            try:
                self.chol = _PairCholesky(P.S.diagonal() + D + shift, pairs)
            except np.linalg.LinAlgError:
                self.chol = None
        if self.chol is None:
            A = (P.S + sp.diags(D + shift)).tocsc()
            try:
                self.lu = spla.splu(A, permc_spec=ORDERING, **_SPD_LU)
            except RuntimeError:  # a zero pivot in rounding: let SuperLU pivot
                self.lu = spla.splu(A, permc_spec=ORDERING)
        if P.rank:
            if self.chol is not None:
                V = self.chol.solve_lower(P.U)  # (k, r) = L⁻¹ U
                gram = dsyrk(1.0, V.T)  # V.T is (r, k) and Fortran-ordered: Vᵀ V, upper part
                gram = np.triu(gram) + np.triu(gram, 1).T
                self.Z = self.chol.solve_upper(V)  # A⁻¹ U
            else:
                self.Z = self.lu.solve(P.U)  # (k, r) = A⁻¹ U
                gram = P.U.T @ self.Z
            cap = np.eye(P.rank) + P.M @ gram
            self.cap = la.lu_factor(cap)
            if deflate:
                self._deflate()

    def _deflate(self) -> None:
        """Switch the preconditioner to the deflated two-level form (see the class)."""
        Q, _ = np.linalg.qr(self.Z)
        KQ = self.P @ Q + self.D[:, None] * Q
        T = Q.T @ KQ
        vals, vecs = np.linalg.eigh(0.5 * (T + T.T))
        if not vals[0] > 0.0:
            return  # K is not positive definite on span(Z) in rounding: keep Woodbury
        floor = float(vals[-1]) * 1e-15
        # T⁻¹ = E diag(1/λ) Eᵀ with λ floored (K is positive definite, rounding is not)
        self.Qe = Q @ vecs  # (k, r): Q E, so T⁻¹ Qᵀ = diag(1/λ) (QE)ᵀ
        self.KQe = KQ @ vecs
        self.inv_vals = 1.0 / np.maximum(vals, floor)
        self.deflated = True

    def _solve_base(self, r: np.ndarray) -> np.ndarray:
        if self.chol is not None:
            return self.chol.solve_upper(self.chol.solve_lower(r))
        return self.lu.solve(r)

    def precondition(self, r: np.ndarray) -> np.ndarray:
        if self.deflated:
            coarse = self.inv_vals * (self.Qe.T @ r)
            y = self._solve_base(r - self.KQe @ coarse)
            y = y - self.Qe @ (self.inv_vals * (self.KQe.T @ y))
            return self.Qe @ coarse + y
        x = self._solve_base(r)
        if self.P.rank:
            x = x - self.Z @ la.lu_solve(self.cap, self.P.M @ (self.P.U.T @ x))
        return x

    def operator(self, x: np.ndarray) -> np.ndarray:
        return self.P @ x + self.D * x

    def solve(self, r: np.ndarray, iters: int = 25) -> np.ndarray:
        """Preconditioned CG on ``(P + D) x = r`` to a relative residual of ``1e-13``; with
        Woodbury, after ``SWITCH_AFTER`` steps CG restarts from its iterate deflated."""
        x = np.zeros_like(r)
        res = r
        target = 1e-13 * float(np.linalg.norm(r))
        budget = iters + 1
        if self.P.rank and not self.deflated:
            x, res, used, status = self._pcg(x, res, target, min(SWITCH_AFTER, budget))
            budget -= used
            if status != "steps" or budget <= 0:
                return x
            self._deflate()  # (keeps Woodbury if K is not positive on span(Z) in rounding)
        return self._pcg(x, res, target, budget)[0]

    def _pcg(
        self, x: np.ndarray, res: np.ndarray, target: float, steps: int
    ) -> tuple[np.ndarray, np.ndarray, int, str]:
        """Up to ``steps`` preconditioner applications of PCG from ``x`` (residual ``res``).
        Returns ``(x, res, applications, status)``, status ``"converged"``, ``"steps"`` (out of
        applications) or ``"breakdown"`` (``pᵀKp ≤ 0``: ``K`` is not positive definite in
        rounding, and the iterate so far is the answer)."""
        if float(np.linalg.norm(res)) <= target:
            return x, res, 0, "converged"
        z = self.precondition(res)
        used = 1
        if not x.any():  # the first application is the preconditioned guess itself
            x = z
            res = res - self.operator(z)
            if float(np.linalg.norm(res)) <= target:
                return x, res, used, "converged"
            if used >= steps:
                return x, res, used, "steps"
            z = self.precondition(res)
            used += 1
        p = z.copy()
        rz = float(res @ z)
        while True:
            Ap = self.operator(p)
            pAp = float(p @ Ap)
            if not pAp > 0.0:
                return x, res, used, "breakdown"
            alpha = rz / pAp
            x = x + alpha * p
            res = res - alpha * Ap
            if float(np.linalg.norm(res)) <= target:
                return x, res, used, "converged"
            if used >= steps:
                return x, res, used, "steps"
            z = self.precondition(res)
            used += 1
            rz_new = float(res @ z)
            p = z + (rz_new / rz) * p
            rz = rz_new


class _Step:
    """Newton directions and step lengths at one interior iterate (box ``[0, 1]``)."""

    def __init__(
        self,
        newton: _Newton,
        a: np.ndarray | None,
        fixed: np.ndarray,
        inner: np.ndarray,
        y: np.ndarray,
        z_l: np.ndarray,
        z_u: np.ndarray,
        r_d: np.ndarray,
        r_p: float,
    ) -> None:
        self.newton, self.a, self.fixed, self.inner = newton, a, fixed, inner
        self.s_l, self.s_u, self.z_l, self.z_u = y, 1.0 - y, z_l, z_u
        self.r_d, self.r_p = r_d, r_p
        self.Ka = None if a is None else newton.solve(a)

    def direction(self, c_l: np.ndarray, c_u: np.ndarray) -> tuple[np.ndarray, ...]:
        """``(Δy, Δz_l, Δz_u, Δν)`` for the complementarity targets ``c_l``, ``c_u``."""
        s_l, s_u = self.s_l, self.s_u
        rhs = -self.r_d + c_l / s_l - c_u / s_u
        rhs[self.fixed] = 0.0
        dy = self.newton.solve(rhs)
        dnu = 0.0
        if self.a is not None and self.Ka is not None:
            dnu = (float(self.a @ dy) + self.r_p) / float(self.a @ self.Ka)
            dy = dy - dnu * self.Ka
        dy[self.fixed] = 0.0
        return dy, (c_l - self.z_l * dy) / s_l, (c_u + self.z_u * dy) / s_u, dnu

    def length(self, dy: np.ndarray, dz_l: np.ndarray, dz_u: np.ndarray) -> float:
        """The longest step in ``[0, 1]`` keeping slacks and multipliers nonnegative."""
        i = self.inner
        return min(
            _max_step(self.s_l[i], dy[i]),
            _max_step(self.s_u[i], -dy[i]),
            _max_step(self.z_l[i], dz_l[i]),
            _max_step(self.z_u[i], dz_u[i]),
        )


def _max_step(v: np.ndarray, dv: np.ndarray) -> float:
    neg = dv < 0.0
    if not np.any(neg):
        return 1.0
    return float(min(1.0, np.min(-v[neg] / dv[neg])))


def _face_step(
    P: StructuredGram,
    q: np.ndarray,
    a: np.ndarray | None,
    b: float,
    y: np.ndarray,
    at_lower: np.ndarray,
    at_upper: np.ndarray,
    shift: float,
    deflate: bool = False,
) -> tuple[np.ndarray, bool] | None:
    """``y`` with the coordinates in ``at_lower`` / ``at_upper`` on those bounds of ``[0, 1]``
    and the others moved along the Newton step of the QP restricted to that face, up to the
    first bound it reaches (ratio test). Returns the point and whether the full step was taken.
    """
    snapped = np.where(at_lower, 0.0, np.where(at_upper, 1.0, y))
    active = at_lower | at_upper
    if not np.any(~active):
        return snapped, True
    if a is not None:
        # back onto the equality row through the free coordinates (snapping moved it)
        a_f = np.where(active, 0.0, a)
        gap = b - float(a @ snapped)
        norm = float(a_f @ a_f)
        if norm > 0.0:
            snapped = np.clip(snapped + a_f * (gap / norm), 0.0, 1.0)
    face = _Newton(P, np.where(active, 1e20, shift * 1e-3), shift, deflate)
    rhs = -(P @ snapped + q)
    rhs[active] = 0.0
    step = face.solve(rhs, iters=50)
    if a is not None:
        a_f = np.where(active, 0.0, a)
        Ka = face.solve(a_f, iters=50)
        denom = float(a_f @ Ka)
        if denom > 0.0:
            step = step - ((float(a_f @ step) - (b - float(a @ snapped))) / denom) * Ka
    step[active] = 0.0
    if not np.all(np.isfinite(step)):
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        room = np.where(
            step < 0, -snapped / step, np.where(step > 0, (1.0 - snapped) / step, np.inf)
        )
    alpha = float(min(1.0, np.min(room, initial=np.inf)))
    return np.clip(snapped + alpha * step, 0.0, 1.0), alpha >= 1.0


def _pin_forced(problem: StructuredQP) -> StructuredQP:
    """``problem`` with the coordinates that its equality row forces to one value fixed there
    (``lb = ub``) and the row dropped, else ``problem`` itself.

    Forced: the row's only coordinate (``a_j y_j = b``), or every coordinate of a row whose
    ``b`` is the largest or smallest value ``a·y`` takes on the box (then each sits on the bound
    that attains it). A termination QP with a single objective sample has ``λ₀ = 1`` on
    ``[0, 1]``: its feasible set has no interior, the interior-point multipliers of that
    coordinate and of the row grow without bound, and the iteration blew up (dual residual
    from 2e-9 to 8e8 in one step on the CNN attack).
    """
    if problem.A is None or problem.b is None:
        return problem
    a, b = problem.A[0], float(problem.b[0])
    lb, ub = problem.lb, problem.ub
    on = a != 0.0
    low = np.where(a > 0, lb, ub)  # the bound minimising a_i y_i
    high = np.where(a > 0, ub, lb)
    row_min, row_max = float(a[on] @ low[on]), float(a[on] @ high[on])
    slack = 1e-14 * max(float(np.abs(a) @ np.maximum(np.abs(lb), np.abs(ub))), abs(b), 1e-300)
    if b >= row_max - slack:
        value = np.where(on, high, 0.0)
    elif b <= row_min + slack:
        value = np.where(on, low, 0.0)
    elif int(on.sum()) == 1:
        j = int(np.flatnonzero(on)[0])
        value = np.zeros_like(a)
        value[j] = min(max(b / a[j], lb[j]), ub[j])
    else:
        return problem
    return StructuredQP(
        problem.P, problem.q, np.where(on, value, lb), np.where(on, value, ub), None, None
    )


def solve_structured(
    problem: StructuredQP, x0: np.ndarray | None = None, accept: float = KKT_ACCEPT
) -> np.ndarray:
    """An approximate minimiser (``(k,)``, inside the box) of ``problem``.

    ``accept``: the check's residual (:func:`ncvx.qp.kkt_residuals`) the caller accepts; the
    iteration goes on past its usual stopping point only while the answer is above it.

    Raises ``RuntimeError`` if the iteration breaks down (non-finite values); the caller
    judges the accuracy of the answer with :func:`ncvx.qp.kkt_residuals`.
    """
    termination = problem.A is not None  # (its row may be pinned away next)
    problem = _pin_forced(problem)
    lb, ub = problem.lb, problem.ub
    width = ub - lb
    fixed = width <= 0.0
    w = np.where(fixed, 0.0, width)  # fixed coordinates drop out of P, q and a
    # y = lb + w ŷ with ŷ ∈ [0, 1]; fixed coordinates stay at lb (their ŷ is pinned by a huge D)
    Pw = problem.P.scaled(w)
    q_hat = w * (problem.q + problem.P @ lb)
    scale = max(
        float(np.max(np.abs(Pw.diagonal()), initial=0.0)), float(np.max(np.abs(q_hat))), 1e-300
    )
    P = Pw.scaled(np.ones_like(w), 1.0 / scale)
    q = q_hat / scale
    a = None if problem.A is None else problem.A[0] * w
    b = 0.0 if problem.b is None else float(problem.b[0]) - float(problem.A[0] @ lb)
    k = q.shape[0]
    shift = SHIFT * max(float(np.max(P.diagonal(), initial=0.0)), 1.0)

    y = np.full(k, 0.5)
    if x0 is not None:
        offset = np.asarray(x0, dtype=np.float64) - lb
        y = np.clip(np.divide(offset, w, out=np.full(k, 0.5), where=w > 0), 0.05, 0.95)
    if a is not None:
        # start on the equality row (inside the box when the row is reachable)
        for _ in range(3):
            gap = b - float(a @ y)
            aa = float(a @ a)
            if aa == 0.0 or abs(gap) <= 1e-15 * (1.0 + abs(b)):
                break
            room = np.where(np.sign(a) * np.sign(gap) > 0, 1.0 - y, y) * 0.98
            move = np.sign(a) * np.sign(gap) * room
            cap = float(np.abs(a) @ room)
            y = y + move * min(1.0, abs(gap) / cap) if cap > 0 else y
    y[fixed] = 0.5  # pinned (D is huge there); mapped to lb at the end
    z_l = np.ones(k)
    z_u = np.ones(k)
    nu = 0.0
    inner = ~fixed
    pairs = max(2 * int(inner.sum()), 1)
    unit = StructuredQP(
        P,
        q,
        np.zeros(k),
        np.where(fixed, 0.0, 1.0),
        None if a is None else a[None, :],
        None if a is None else np.array([b]),
    )
    best, best_kkt, stall, stalled = None, math.inf, 0, False
    value = math.inf
    deflate = False  # set once a system needed the deflated preconditioner (see _Newton)
    for _it in range(MAX_ITER):
        s_l, s_u = y, 1.0 - y
        r_d = P @ y + q - z_l + z_u + (0.0 if a is None else a * nu)
        r_d[fixed] = 0.0
        r_p = 0.0 if a is None else float(a @ y) - b
        mu = float((s_l[inner] @ z_l[inner] + s_u[inner] @ z_u[inner]) / pairs)
        if mu <= TOL:
            point = np.where(fixed, 0.0, y)
            value = kkt_residuals(unit, point)["kkt"]
            stall = 0 if value <= KKT_PROGRESS * best_kkt else stall + 1
            if value < best_kkt:
                best, best_kkt = point, value
            converged = float(np.max(np.abs(r_d))) <= TOL * (
                1.0 + float(np.max(np.abs(q)))
            ) and abs(r_p) <= TOL * (1.0 + abs(b))
            if converged and value <= ACCEPT_MARGIN * accept:
                best = None  # the usual stop, with an acceptable answer: keep this iterate
                break
            if stall >= KKT_STALL:
                # no progress: stop with the best iterate (acceptable or not; the scaled
                # residuals of an inexact CG need not reach TOL on a degenerate QP)
                stalled = True
                break
        if _DEBUG:
            print("ipm", _it, float(np.max(np.abs(r_d))), r_p, mu)
        D = np.minimum(z_l / s_l + z_u / s_u, 1e20)  # beyond 1e20: held at the bound anyway
        D[fixed] = 1e20
        newton = _Newton(P, D, shift, deflate)
        step = _Step(newton, a, fixed, inner, y, z_l, z_u, r_d, r_p)
        dy, dz_l, dz_u, _ = step.direction(-s_l * z_l, -s_u * z_u)
        alpha = step.length(dy, dz_l, dz_u)
        mu_aff = float(
            (
                (s_l + alpha * dy)[inner] @ (z_l + alpha * dz_l)[inner]
                + (s_u - alpha * dy)[inner] @ (z_u + alpha * dz_u)[inner]
            )
            / pairs
        )
        sigma = (mu_aff / mu) ** 3 if mu > 0 else 0.0
        c_l = sigma * mu - s_l * z_l - dy * dz_l
        c_u = sigma * mu - s_u * z_u + dy * dz_u
        dy, dz_l, dz_u, dnu = step.direction(c_l, c_u)
        alpha = min(1.0, 0.995 * step.length(dy, dz_l, dz_u))
        if alpha < SHORT_STEP and termination:
            # Mehrotra's second-order term can jam the iterate against the boundary (termination
            # QPs of the CNN attack: steps below 0.1, the answer stuck at 5e-5 against the 1e-5
            # required, and the dense ladder took over): a plain centering step re-centres it.
            # Only with an equality row (the termination QPs): on the SVMs' steering QPs the
            # comparison changed answers within their tolerance and moved the chaotic runs
            # (svm-1500: 114 iterations and 40 s instead of 75 and 11 s)
            safe = step.direction(
                max(sigma, SAFE_SIGMA) * mu - s_l * z_l, max(sigma, SAFE_SIGMA) * mu - s_u * z_u
            )
            alpha_safe = min(1.0, 0.995 * step.length(*safe[:3]))
            if alpha_safe > alpha:
                (dy, dz_l, dz_u, dnu), alpha = safe, alpha_safe
        deflate = deflate or newton.deflated
        y = y + alpha * dy
        z_l = z_l + alpha * dz_l
        z_u = z_u + alpha * dz_u
        nu = nu + alpha * dnu
        # strictly inside (a slack rounded to 0 would divide by zero); the finish below puts
        # the coordinates that belong on a bound there exactly
        y = np.clip(y, 1e-15, 1.0 - 1e-15)
        y[fixed] = 0.5  # pinned (D is huge there); mapped to lb at the end
        if not (np.all(np.isfinite(y)) and math.isfinite(nu)):
            raise RuntimeError("structured IPM: non-finite iterate")
    y = np.where(fixed, 0.0, y)
    if best is not None and (stalled or best_kkt < value):
        y = best  # no acceptable stop: the iterate the check liked best
    # The bounds whose multipliers dominate their slacks are taken exactly (interior points
    # only approach them, degenerate ones slowly), then Newton steps on that face put the free
    # coordinates at the face's minimiser; the face is guessed again from the gradient there.
    best, best_kkt = y, kkt_residuals(unit, y)["kkt"]
    lin = linearize(unit, y)
    trial = y - GUESS_GAIN * lin.h / lin.w
    at_lower = fixed | (trial <= 0.0)
    at_upper = ~at_lower & (trial >= 1.0)
    for _round in range(FACE_ROUNDS):
        found = _face_step(P, q, a, b, y, at_lower, at_upper, shift, deflate)
        if found is None:
            break
        candidate, full = found
        value = kkt_residuals(unit, candidate)["kkt"]
        if value < best_kkt:
            best, best_kkt = candidate, value
        if value <= 1e-12:
            break
        y = candidate
        if full:  # optimal on this face: guess the face again from the gradient
            lin = linearize(unit, y)
            trial = y - GUESS_GAIN * lin.h / lin.w
            at_lower = fixed | (trial <= 0.0)
            at_upper = ~at_lower & (trial >= 1.0)
        else:  # blocked: the coordinates that reached a bound join the face
            at_lower = at_lower | (y <= 0.0)
            at_upper = ~at_lower & (at_upper | (y >= 1.0))
    y = best
    return lb + w * y
