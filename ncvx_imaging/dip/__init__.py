"""Deep image priors (DIP): generator networks, fitting through ncvx, early stopping."""

from .early_stopping import ESWMV
from .fit import DIPFit, fit_dip_adam, fit_dip_ncvx, image_from_flat
from .generators import (
    ACTIVATIONS,
    KernelMLP,
    SkipEncoderDecoder,
    count_parameters,
    make_input,
    small_skip,
    standard_skip,
)

__all__ = [
    "ACTIVATIONS",
    "ESWMV",
    "DIPFit",
    "KernelMLP",
    "SkipEncoderDecoder",
    "count_parameters",
    "fit_dip_adam",
    "fit_dip_ncvx",
    "image_from_flat",
    "make_input",
    "small_skip",
    "standard_skip",
]
