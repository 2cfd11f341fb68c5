"""Deep image priors (DIP): generator networks, fitting through ncvx, early stopping."""

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
    "KernelMLP",
    "SkipEncoderDecoder",
    "count_parameters",
    "make_input",
    "small_skip",
    "standard_skip",
]
