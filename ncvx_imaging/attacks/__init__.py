"""Adversarial robustness as constrained problems solved (and certified) by ncvx.

>>> from ncvx_imaging.attacks import min_distance_attack, max_loss_attack, MinDistanceConfig
>>> res = min_distance_attack(model, x, y, distance="linf")       # doctest: +SKIP
>>> res.examples[0].distance, res.examples[0].success, res.examples[0].feasible  # doctest: +SKIP

- :func:`min_distance_attack`: ``min d(x, x')`` s.t. misclassified and ``0 <= x' <= 1``.
- :func:`max_loss_attack`: ``max loss(x')`` s.t. ``d(x, x') <= eps`` and the box.
- distances: ``"l1"``, ``"l2"``, ``"linf"`` (slack/epigraph or direct), ``"feature"`` (the
  classifier's own normalised feature maps) and ``"ssim"`` (``1 − SSIM``).
- :mod:`.models`: scikit-learn digits (offline) and tiny classifiers trained in seconds.

See ``docs/attacks.md`` for the formulations and how to read the certificate.
"""

from .attack import max_loss_attack as max_loss_attack
from .attack import min_distance_attack as min_distance_attack
from .config import AttackResult as AttackResult
from .config import ExampleResult as ExampleResult
from .config import MaxLossConfig as MaxLossConfig
from .config import MinDistanceConfig as MinDistanceConfig
from .config import SolverConfig as SolverConfig
from .distances import FeatureDistance as FeatureDistance
from .distances import lp_distance as lp_distance
from .distances import ssim as ssim
from .distances import ssim_distance as ssim_distance
from .validate import margins as margins

__all__ = [
    "AttackResult",
    "ExampleResult",
    "FeatureDistance",
    "MaxLossConfig",
    "MinDistanceConfig",
    "SolverConfig",
    "lp_distance",
    "margins",
    "max_loss_attack",
    "min_distance_attack",
    "ssim",
    "ssim_distance",
]
