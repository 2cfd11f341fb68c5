"""ncvx: constrained, nonsmooth, nonconvex optimization in PyTorch.

A BFGS-SQP solver with penalty-parameter steering and a gradient-sampling stationarity
certificate (Curtis, Mitchell & Overton's GRANSO), with PyGRANSO's API:

>>> from ncvx import pygranso, pygransoStruct          # PyGRANSO-compatible
>>> from ncvx import solve, Options, Status            # native API
"""

import logging as _logging

from . import fold as fold
from ._api import solve as solve
from ._api import solve_module as solve_module
from ._api import unflatten as unflatten
from .callbacks import History as History
from .callbacks import IterationRecord as IterationRecord
from .compat import pygranso as pygranso
from .compat import pygransoStruct as pygransoStruct
from .errors import NcvxError as NcvxError
from .errors import OptionsError as OptionsError
from .errors import ProblemError as ProblemError
from .errors import QPBackendError as QPBackendError
from .errors import SolveFailed as SolveFailed
from .options import Options as Options
from .result import Iterate as Iterate
from .result import Result as Result
from .result import Status as Status

__version__ = "0.1.0"

_logging.getLogger("ncvx").addHandler(_logging.NullHandler())

__all__ = [
    "History",
    "Iterate",
    "IterationRecord",
    "NcvxError",
    "Options",
    "OptionsError",
    "ProblemError",
    "QPBackendError",
    "Result",
    "SolveFailed",
    "Status",
    "pygranso",
    "pygransoStruct",
    "solve",
    "solve_module",
    "unflatten",
]
