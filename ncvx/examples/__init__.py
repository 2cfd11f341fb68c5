"""Bundled example problems (PyGRANSO's reproducible examples A1–C3, SPEC Part B §7).

Each builder returns an :class:`Example` whose ``var_spec``, ``combined_fn`` and ``options`` are
ready for :func:`ncvx.pygranso`. Run one from the command line::

    python -m ncvx.examples rosenbrock
"""

from __future__ import annotations

from collections.abc import Callable

from ._base import Example
from .problems import (
    dictionary_learning,
    feasibility,
    generalized_lasso,
    logistic_l1_path,
    robust_pca,
    rosenbrock,
    spectral_abscissa,
    sphere_rayleigh,
    trace_maximization,
)

EXAMPLES: dict[str, Callable[..., Example]] = {
    "rosenbrock": rosenbrock,
    "spectral_abscissa": spectral_abscissa,
    "dictionary_learning": dictionary_learning,
    "feasibility": feasibility,
    "sphere_rayleigh": sphere_rayleigh,
    "trace_maximization": trace_maximization,
    "robust_pca": robust_pca,
    "generalized_lasso": generalized_lasso,
    "logistic_l1_path": logistic_l1_path,
}

__all__ = ["EXAMPLES", "Example", *EXAMPLES]
