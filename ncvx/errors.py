"""Exceptions raised by ncvx.

Every error a user can trigger before the first iteration is a ``ValueError`` subclass whose
message names the offending option, variable or constraint and says how to fix it.
"""

from __future__ import annotations

from typing import Any


class NcvxError(Exception):
    """Base class of all ncvx errors."""


class OptionsError(NcvxError, ValueError):
    """An option is unknown, of the wrong type, or out of range."""


class ProblemError(NcvxError, ValueError):
    """The problem definition (variables, ``combined_fn`` output, starting point) is invalid."""


class QPBackendError(NcvxError, RuntimeError):
    """Every attempt to solve a quadratic subproblem failed (backend error or inaccurate answer)."""


class SolveFailed(NcvxError, RuntimeError):
    """Raised by ``solve(..., raise_on_failure=True)`` when the run did not succeed.

    The full :class:`ncvx.Result` is attached as ``.result``.
    """

    def __init__(self, result: Any) -> None:
        self.result = result
        super().__init__(f"ncvx did not converge: {result.status.name} ({result.message})")
