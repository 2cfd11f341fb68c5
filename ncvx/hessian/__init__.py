"""Inverse-Hessian approximations: dense BFGS and limited-memory BFGS, one protocol."""

from .base import BFGSStats, InverseHessian, UpdateInfo
from .bfgs import DenseBFGS
from .damping import damp_pair
from .lbfgs import LBFGS

__all__ = ["LBFGS", "BFGSStats", "DenseBFGS", "InverseHessian", "UpdateInfo", "damp_pair"]
