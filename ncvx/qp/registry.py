"""Catalogue of QP backends: lazy detection, capability flags and one adapter per backend.

Nothing here imports a solver at import time: availability is decided with
``importlib.util.find_spec``, and a solver module (``qpsolvers``, ``osqp``, ``gurobipy``) is
imported the first time its backend is called. Note that ``qpsolvers`` itself imports every
installed solver it knows (gurobipy included) when it is first imported.

Every adapter has the signature ``run(P, q, lb, ub, A, b, x0) -> x`` on the dense, already
scaled problem, returns the primal point (possibly inaccurate: the caller checks it) and raises
on any failure. Backend chatter on stdout is silenced and backend warnings are captured locally.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: ``run(P, q, lb, ub, A, b, x0) -> x``; shapes (k,k), (k,), (k,), (k,), (1,k)|None, (1,)|None,
#: (k,)|None -> (k,).
Runner = Callable[..., np.ndarray]


@dataclass(frozen=True)
class BackendInfo:
    """Static description of one backend.

    Attributes:
        name: public name, as accepted by :func:`select_backend`.
        module: top-level module whose presence makes the backend available.
        dense: takes a dense ``P`` natively (otherwise ``P`` is converted to CSC).
        needs_pd: needs a strictly positive definite ``P`` (a ridge is always added).
        returns_duals: the underlying solver computes multipliers.
        warm_start: uses a primal starting point.
        options: solver settings passed on every call.
    """

    name: str
    module: str
    dense: bool
    needs_pd: bool
    returns_duals: bool
    warm_start: bool
    options: dict[str, Any] = field(default_factory=dict)


#: Tolerances apply to the Jacobi-scaled problem the solver passes on (unit diagonal ``P``).
BACKENDS: dict[str, BackendInfo] = {
    info.name: info
    for info in (
        BackendInfo(
            "daqp", "daqp", dense=True, needs_pd=True, returns_duals=True, warm_start=False
        ),
        BackendInfo(
            "quadprog", "quadprog", dense=True, needs_pd=True, returns_duals=True, warm_start=False
        ),
        BackendInfo(
            "proxqp",
            "proxsuite",
            dense=True,
            needs_pd=False,
            returns_duals=True,
            warm_start=True,
            options={"backend": "dense", "eps_abs": 1e-12, "eps_rel": 0.0, "max_iter": 10_000},
        ),
        BackendInfo(
            "piqp",
            "piqp",
            dense=True,
            needs_pd=False,
            returns_duals=True,
            warm_start=False,
            # an interior point converges in ~15-25 iterations here; degenerate termination
            # QPs (near-duplicate samples) never reach 1e-12 and ran the full 200 for nothing
            # (svm-1000: 1.4 s each, the same KKT residual as after 25 iterations)
            options={"backend": "dense", "eps_abs": 1e-12, "eps_rel": 1e-12, "max_iter": 50},
        ),
        BackendInfo(
            "clarabel",
            "clarabel",
            dense=False,
            needs_pd=False,
            returns_duals=True,
            warm_start=False,
            options={
                "tol_gap_abs": 1e-12,
                "tol_gap_rel": 1e-12,
                "tol_feas": 1e-12,
                "tol_ktratio": 1e-10,
                "max_iter": 200,
            },
        ),
        BackendInfo(
            "osqp",
            "osqp",
            dense=False,
            needs_pd=False,
            returns_duals=True,
            warm_start=True,
            options={
                "eps_abs": 1e-10,
                "eps_rel": 1e-10,
                "polishing": True,
                "polish_refine_iter": 10,
                "max_iter": 10_000,
                "verbose": False,
            },
        ),
        BackendInfo(
            "gurobi",
            "gurobipy",
            dense=True,
            needs_pd=False,
            returns_duals=True,
            warm_start=False,
            options={"OptimalityTol": 1e-9, "FeasibilityTol": 1e-9, "BarConvTol": 1e-12},
        ),
    )
}

#: Order tried by ``select_backend("auto")``; chosen from benchmarks/qp_backends.py (docs/qp.md).
AUTO_PREFERENCE: tuple[str, ...] = ("piqp", "daqp", "proxqp", "quadprog", "clarabel", "osqp")

#: Default fallback ladder after the selected backend (unavailable ones are skipped).
#: proxqp and osqp were dropped from the default ladder: through qpsolvers they took 3-5 s per
#: small (k <= 100) stationarity QP here (165 s of a 170 s run of example A3); name them in
#: ``QPSolver(fallbacks=...)`` to use them.
DEFAULT_FALLBACKS: tuple[str, ...] = ("daqp", "quadprog")

_gurobi_licensed: bool | None = None


def _module_present(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _gurobi_usable() -> bool:
    """Whether gurobipy is installed *and* can start an environment (licence present)."""
    global _gurobi_licensed
    if _gurobi_licensed is None:
        _gurobi_licensed = False
        if _module_present("gurobipy"):
            try:
                _gurobi_env()
                _gurobi_licensed = True
            except Exception:
                _gurobi_licensed = False
    return _gurobi_licensed


def is_available(name: str) -> bool:
    """Whether backend ``name`` is known and usable in this environment."""
    info = BACKENDS.get(name)
    if info is None:
        return False
    if name == "gurobi":
        return _gurobi_usable()
    if name != "osqp" and not _module_present("qpsolvers"):
        return False
    return _module_present(info.module)


def available_backends() -> list[str]:
    """Names of the usable backends, in the ``"auto"`` preference order, then the others.

    Gurobi is listed only when gurobipy is installed and licensed (probing the licence imports
    gurobipy, so this is done on the first call, never at import time).
    """
    order = list(AUTO_PREFERENCE) + [n for n in BACKENDS if n not in AUTO_PREFERENCE]
    return [name for name in order if is_available(name)]


def select_backend(name: str = "auto") -> str:
    """Resolve a backend name.

    Args:
        name: ``"auto"`` (the first available entry of :data:`AUTO_PREFERENCE`) or a backend name.

    Returns:
        The backend name.

    Raises:
        ValueError: ``name`` is unknown or not installed, or no backend is available.
    """
    if name == "auto":
        for candidate in AUTO_PREFERENCE:
            if is_available(candidate):
                return candidate
        raise ValueError(
            "no QP backend is available: install osqp (a dependency of ncvx) or the 'qp' extra"
        )
    if name not in BACKENDS:
        raise ValueError(f"unknown QP backend {name!r}; known backends: {sorted(BACKENDS)}")
    if not is_available(name):
        hint = " (install the 'gurobi' extra and a licence)" if name == "gurobi" else ""
        raise ValueError(
            f"QP backend {name!r} is not available{hint}; available: {available_backends()}"
        )
    return name


def _flush_c_stdout() -> None:
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError, TypeError):
        pass


#: Backends called directly with their output off, which print nothing: :func:`quiet` only
#: records their warnings (redirecting file descriptor 1 costs ~0.1 ms per call, a tenth of a
#: small QP's solve).
SILENT: frozenset[str] = frozenset({"piqp", "daqp", "quadprog"})


@contextlib.contextmanager
def quiet(backend: str | None = None) -> Iterator[list[warnings.WarningMessage]]:
    """Silence stdout (C and Python level) and record (not show) Python warnings for the block.

    OSQP prints "Polishing not needed ..." even with ``verbose=False``; hiding C output
    requires pointing file descriptor 1 at ``/dev/null`` for the duration of the call. The
    warnings filter change is local to the block (``warnings.catch_warnings``). For a
    ``backend`` in :data:`SILENT` only the warnings are recorded.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if backend in SILENT:
            yield caught
            return
        try:
            sys.stdout.flush()
            saved = os.dup(1)
        except (OSError, ValueError, AttributeError):
            yield caught
            return
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 1)
            # some extensions print through Python's sys.stdout (PySys_WriteStdout) instead
            with contextlib.redirect_stdout(io.StringIO()):
                yield caught
        finally:
            _flush_c_stdout()  # C printf output is buffered: drop it before fd 1 comes back
            os.dup2(saved, 1)
            os.close(saved)
            os.close(devnull)


def _run_qpsolvers(info: BackendInfo) -> Runner:
    def run(P, q, lb, ub, A, b, x0):
        import qpsolvers
        import scipy.sparse as sp

        P_in = P if info.dense else sp.csc_matrix(P)
        A_in = None if A is None else (A if info.dense else sp.csc_matrix(A))
        problem = qpsolvers.Problem(P_in, q, A=A_in, b=b, lb=lb, ub=ub)
        initvals = x0 if info.warm_start else None
        solution = qpsolvers.solve_problem(
            problem, solver=info.name, initvals=initvals, verbose=False, **info.options
        )
        if solution.x is None:
            raise RuntimeError(f"{info.name} returned no solution")
        return np.asarray(solution.x, dtype=np.float64)

    return run


def osqp_setup(
    P: np.ndarray,
    q: np.ndarray,
    lb: np.ndarray,
    ub: np.ndarray,
    A: np.ndarray | None = None,
    b: np.ndarray | None = None,
) -> Any:
    """A configured ``osqp.OSQP`` object; reusable for a new ``q`` via ``update(q=...)``.

    Args:
        P: (k, k) dense PSD matrix (only its upper triangle is passed on).
        q: (k,) linear term.
        lb: (k,) lower bounds.
        ub: (k,) upper bounds.
        A: optional (1, k) equality row.
        b: optional (1,) right-hand side.
    """
    import osqp
    import scipy.sparse as sp

    M = sp.identity(q.shape[0], format="csc")
    lo, hi = lb, ub
    if A is not None and b is not None:
        M = sp.vstack([M, sp.csc_matrix(A)], format="csc")
        lo, hi = np.concatenate([lb, b]), np.concatenate([ub, b])
    solver = osqp.OSQP()
    solver.setup(
        P=sp.triu(sp.csc_matrix(P), format="csc"),
        q=q,
        A=M,
        l=lo,
        u=hi,
        **BACKENDS["osqp"].options,
    )
    return solver


def osqp_solve(solver: Any, k: int, x0: np.ndarray | None = None) -> np.ndarray:
    """Run a configured OSQP object, warm-started at ``x0``; returns the (k,) primal point."""
    if x0 is not None:
        solver.warm_start(x=x0)
    result = solver.solve(raise_error=False)
    x = np.asarray(result.x, dtype=np.float64)
    if x.shape != (k,) or not np.all(np.isfinite(x)):
        raise RuntimeError(f"osqp returned no solution (status {result.info.status!r})")
    return x


def _run_osqp(P, q, lb, ub, A, b, x0):
    return osqp_solve(osqp_setup(P, q, lb, ub, A, b), q.shape[0], x0)


_GUROBI_ENV: list[Any] = []


def _gurobi_env() -> Any:
    """The shared, silent ``gurobipy.Env`` (created on first use; raises when unlicensed)."""
    if not _GUROBI_ENV:
        gp = importlib.import_module("gurobipy")
        env = gp.Env(empty=True)
        env.setParam("OutputFlag", 0)
        env.start()
        _GUROBI_ENV.append(env)
    return _GUROBI_ENV[0]


def _run_gurobi(P, q, lb, ub, A, b, x0):
    gp = importlib.import_module("gurobipy")
    with gp.Model(env=_gurobi_env()) as model:
        for key, value in BACKENDS["gurobi"].options.items():
            model.setParam(key, value)
        y = model.addMVar(q.shape[0], lb=lb, ub=ub)
        model.setObjective(0.5 * (y @ P @ y) + q @ y, gp.GRB.MINIMIZE)
        if A is not None:
            model.addConstr(A @ y == b)
        model.optimize()
        if model.SolCount == 0:
            raise RuntimeError(f"gurobi found no solution (status {model.Status})")
        return np.asarray(y.X, dtype=np.float64)


def _run_piqp(P, q, lb, ub, A, b, x0):
    """PIQP's dense interior-point solver, called directly.

    Going through ``qpsolvers`` cost 1.2 s of imports on the first call (``qpsolvers`` imports
    every solver it knows, and scipy.sparse) and ~1 ms per call: more than the whole solve of
    the small examples.
    """
    import piqp

    solver = piqp.DenseSolver()
    settings = solver.settings
    settings.verbose = False
    for key, value in BACKENDS["piqp"].options.items():
        if key != "backend":
            setattr(settings, key, value)
    P = np.asfortranarray(P)
    A_in = None if A is None else np.asfortranarray(A)
    solver.setup(P, q, A_in, b, None, None, None, lb, ub)
    status = solver.solve()
    x = np.asarray(solver.result.x, dtype=np.float64)
    if status not in (piqp.PIQP_SOLVED, piqp.PIQP_MAX_ITER_REACHED):
        raise RuntimeError(f"piqp: {status}")
    return x


def _run_daqp(P, q, lb, ub, A, b, x0):
    """DAQP's dual active-set solver, called directly (box bounds as simple bounds)."""
    from ctypes import c_int

    import daqp

    k = q.shape[0]
    rows = 0 if A is None else A.shape[0]
    upper = np.concatenate([ub, b if A is not None else np.zeros(0)])
    lower = np.concatenate([lb, b if A is not None else np.zeros(0)])
    sense = np.zeros(k + rows, dtype=c_int)
    sense[k:] = 5  # equality rows: active and immutable
    A_in = np.zeros((0, k)) if A is None else np.ascontiguousarray(A)
    x, _, exitflag, _ = daqp.solve(np.ascontiguousarray(P), q, A_in, upper, lower, sense)
    if exitflag <= 0:
        raise RuntimeError(f"daqp exit flag {exitflag}")
    return np.asarray(x, dtype=np.float64)


def _run_quadprog(P, q, lb, ub, A, b, x0):
    """quadprog's dual active-set solver, called directly: ``min ½xᵀPx + qᵀx`` with the box as
    ``2k`` inequality rows and the equality row first (``meq``)."""
    import quadprog

    k = q.shape[0]
    eye = np.eye(k)
    blocks = [eye, -eye]
    rhs = [lb, -ub]
    meq = 0
    if A is not None:
        blocks.insert(0, A)
        rhs.insert(0, b)
        meq = A.shape[0]
    C = np.ascontiguousarray(np.vstack(blocks).T)
    x = quadprog.solve_qp(np.ascontiguousarray(P), -q, C, np.concatenate(rhs), meq)[0]
    return np.asarray(x, dtype=np.float64)


def runner(name: str) -> Runner:
    """The adapter of backend ``name`` (see the module docstring for its signature)."""
    if name == "piqp":
        return _run_piqp
    if name == "daqp":
        return _run_daqp
    if name == "quadprog":
        return _run_quadprog
    if name == "osqp":
        return _run_osqp
    if name == "gurobi":
        return _run_gurobi
    return _run_qpsolvers(BACKENDS[name])
