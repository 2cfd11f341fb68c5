"""Small dense convex QPs for the BFGS-SQP solver (steering and termination subproblems).

``QPSolver(backend="auto").solve(QPProblem(P, q, lb, ub, A=None, b=None))`` returns a
:class:`QPSolution` whose ``x`` has been checked with :func:`kkt_residuals`. See docs/qp.md.
"""

from ncvx.qp.check import kkt_residuals
from ncvx.qp.registry import available_backends, select_backend
from ncvx.qp.solver import QPSolver
from ncvx.qp.types import QPProblem, QPSolution

__all__ = [
    "QPProblem",
    "QPSolution",
    "QPSolver",
    "available_backends",
    "kkt_residuals",
    "select_backend",
]
