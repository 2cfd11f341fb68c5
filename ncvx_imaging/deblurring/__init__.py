"""Deconvolution problems on ncvx: blur operators, kernels, noise, baselines, non-blind and blind
deblurring with discrepancy constraints (the misfit is bounded by the noise level instead of being
weighed against a regulariser)."""

from .kernels import (
    center_kernel,
    gaussian_kernel,
    motion_kernel,
    pad_kernel,
    random_motion_kernel,
)
from .noise import add_gaussian_noise, estimate_noise_sigma
from .operators import (
    conv_circular,
    conv_circular_adjoint,
    conv_valid,
    conv_valid_adjoint,
    kernel_otf,
)

__all__ = [
    "add_gaussian_noise",
    "center_kernel",
    "conv_circular",
    "conv_circular_adjoint",
    "conv_valid",
    "conv_valid_adjoint",
    "estimate_noise_sigma",
    "gaussian_kernel",
    "kernel_otf",
    "motion_kernel",
    "pad_kernel",
    "random_motion_kernel",
]
