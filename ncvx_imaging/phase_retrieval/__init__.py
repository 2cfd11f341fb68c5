"""Gaussian and Fourier (CDI) phase retrieval: forward models, noise, ambiguity-free metrics,
classical baselines (Wirtinger/amplitude flow, HIO/ER with shrinkwrap) and ncvx formulations.

See ``docs/phase-retrieval.md``.
"""

from .cdi_baselines import (
    PhasingResult,
    fourier_projection,
    hio_er,
    random_start,
    shrinkwrap_support,
    support_from_autocorrelation,
)
from .formulations import (
    CDIProblem,
    RestartResult,
    data_misfit,
    gaussian_pr_fn,
    real_projection,
    solve_with_restarts,
    to_complex,
    total_variation,
)
from .forward import (
    CodedDiffraction,
    FarField,
    GaussianMeasurement,
    complex_dtype_for,
    gaussian_matrix,
)
from .gaussian_baselines import (
    FlowResult,
    amplitude_flow,
    orthogonality_init,
    spectral_init,
    wirtinger_flow,
)
from .metrics import (
    align_fourier,
    align_global_phase,
    psnr,
    relative_error,
    relative_error_fourier,
    relative_error_global_phase,
    success,
)
from .noise import gaussian_noise, poisson_amplitude_variance, poisson_noise
from .tv_path import (
    TVPathResult,
    energy_window,
    grown_window,
    hio_fallback_windows,
    hio_polish,
    tv_path,
    tv_path_restarts,
)

__all__ = [
    "CDIProblem",
    "CodedDiffraction",
    "FarField",
    "FlowResult",
    "GaussianMeasurement",
    "PhasingResult",
    "RestartResult",
    "TVPathResult",
    "align_fourier",
    "align_global_phase",
    "amplitude_flow",
    "complex_dtype_for",
    "data_misfit",
    "energy_window",
    "fourier_projection",
    "gaussian_matrix",
    "gaussian_noise",
    "gaussian_pr_fn",
    "grown_window",
    "hio_er",
    "hio_fallback_windows",
    "hio_polish",
    "orthogonality_init",
    "poisson_amplitude_variance",
    "poisson_noise",
    "psnr",
    "random_start",
    "real_projection",
    "relative_error",
    "relative_error_fourier",
    "relative_error_global_phase",
    "shrinkwrap_support",
    "solve_with_restarts",
    "spectral_init",
    "success",
    "support_from_autocorrelation",
    "to_complex",
    "total_variation",
    "tv_path",
    "tv_path_restarts",
    "wirtinger_flow",
]
