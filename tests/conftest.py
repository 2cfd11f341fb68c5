"""Shared test configuration: deterministic hypothesis profiles, tolerances, CUDA auto-skip."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
import torch
from hypothesis import HealthCheck, settings

# Deterministic by default: the same examples on every run and machine, no example database.
settings.register_profile(
    "ncvx",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=50,
    suppress_health_check=[HealthCheck.too_slow],
)
# Opt-in wider search: HYPOTHESIS_PROFILE=thorough pytest ...
settings.register_profile("thorough", parent=settings.get_profile("ncvx"), max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ncvx"))


@dataclass(frozen=True)
class Tolerances:
    """Default float64 comparison tolerances (``torch.testing.assert_close`` style)."""

    rtol: float = 1e-10
    atol: float = 1e-12


@pytest.fixture
def tol() -> Tolerances:
    """Float64 default tolerances."""
    return Tolerances()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests marked ``cuda`` when no CUDA device is present."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
