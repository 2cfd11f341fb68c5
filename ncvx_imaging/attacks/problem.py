"""One attack on one example as an ncvx problem: variables, ``fn``, starting points, re-check.

Variables are a dict: ``{"x": (1, C, H, W)}`` plus, with slack formulations, ``{"t": (1,)}``
(L∞ epigraph: ``|x' − x| <= t``) or ``{"s": (1, C, H, W)}`` (L1: ``|x' − x| <= s``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ncvx import fold

from .config import MaxLossConfig, MinDistanceConfig, SolverConfig
from .distances import FeatureDistance, check_window, lp_distance, ssim_distance
from .validate import margins

__all__ = ["AttackProblem", "Check"]


class Check(dict):
    """Independent re-evaluation of a returned point (a dict of plain Python numbers)."""


class AttackProblem:
    """The constrained problem for one example ``x`` (``(1, C, H, W)``) and one label.

    ``kind`` is ``"min"`` (min-distance) or ``"max"`` (max-loss). ``label`` is the true label;
    ``target`` the target label of a targeted attack (else ``None``).
    """

    def __init__(
        self,
        model: nn.Module,
        x: torch.Tensor,
        label: int,
        target: int | None,
        cfg: SolverConfig,
        feature: FeatureDistance | None = None,
        versus: int | None = None,
    ) -> None:
        self.model = model
        self.versus = versus
        self.x = x.detach()
        self.label = label
        self.target = target
        self.cfg = cfg
        self.kind = "max" if isinstance(cfg, MaxLossConfig) else "min"
        self.fold = cfg.folds(x.numel())
        self.dist = cfg.distance
        self.cls = torch.tensor([target if cfg.targeted else label], device=x.device)
        self.ssim_window = check_window(x.shape[-2], x.shape[-1], cfg.ssim_window)
        self.feature = feature
        self.ref: Sequence[torch.Tensor] = ()
        if self.dist == "feature":
            if feature is None:
                raise ValueError("the feature distance needs a FeatureDistance")
            with torch.no_grad():
                self.ref = [f.detach() for f in feature.features(self.x)]
        self.slack: str | None = None
        if self.dist in ("l1", "linf") and cfg.formulation == "slack":
            if self.dist == "l1":
                self.slack = "s"
            elif self.kind == "min":
                self.slack = "t"
            # max-loss L∞ needs no slack: |x' − x| <= eps and the box are one box.
        if self.kind == "max":
            assert isinstance(cfg, MaxLossConfig)
            self.eps = float(cfg.eps)
            if self.dist == "linf":
                self.lo = torch.clamp(self.x - self.eps, min=0.0)
                self.hi = torch.clamp(self.x + self.eps, max=1.0)

    # ------------------------------------------------------------------ distances and margin
    def distance(self, xa: torch.Tensor) -> torch.Tensor:
        """The attack's distance ``d(x, xa)`` as a 0-dim tensor (differentiable)."""
        if self.dist in ("l1", "l2", "linf"):
            return lp_distance(self.x, xa, self.dist)[0]
        if self.dist == "ssim":
            return ssim_distance(
                self.x, xa, window=self.ssim_window, sigma=self.cfg.ssim_sigma
            )[0]
        assert self.feature is not None
        return self.feature.from_reference(self.ref, xa)[0]

    def margin(self, z: torch.Tensor) -> torch.Tensor:
        """Margin (< 0 means success) of logits ``(1, K)``, 0-dim."""
        return margins(z, self.cls, targeted=self.cfg.targeted)[0]

    def solver_margin(self, z: torch.Tensor) -> torch.Tensor:
        """The margin the solver constrains: against one class ``versus`` if set (smooth in z)."""
        if self.versus is None:
            return self.margin(z)
        return z[0, self.label] - z[0, self.versus]

    def against(self, versus: int) -> AttackProblem:
        """The same problem with the misclassification constraint ``z_y − z_versus + κ <= 0``."""
        other = object.__new__(AttackProblem)
        other.__dict__.update(self.__dict__)
        other.versus = versus
        return other

    # ------------------------------------------------------------------ the ncvx problem
    def box_constraint(self, xa: torch.Tensor) -> torch.Tensor:
        lo: Any = 0.0
        hi: Any = 1.0
        if self.kind == "max" and self.dist == "linf":
            lo, hi = self.lo, self.hi
        if self.fold:
            return fold.box(xa, lo, hi, self.cfg.fold_kind).reshape(1)
        return torch.cat([(lo - xa).reshape(-1), (xa - hi).reshape(-1)])

    def slack_constraint(self, delta: torch.Tensor, slack: torch.Tensor) -> torch.Tensor:
        if self.fold:
            return fold.fold_ineq(delta.abs() - slack, self.cfg.fold_kind).reshape(1)
        return torch.cat([(delta - slack).reshape(-1), (-delta - slack).reshape(-1)])

    def fn(self, v: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor], None]:
        """``(f, ci, None)`` for ncvx."""
        xa = v["x"]
        delta = xa - self.x
        z = self.model(xa)
        ci: dict[str, torch.Tensor] = {"box": self.box_constraint(xa)}
        if self.slack is not None:
            ci["slack"] = self.slack_constraint(delta, v[self.slack])
        if self.kind == "min":
            assert isinstance(self.cfg, MinDistanceConfig)
            ci["misclassify"] = (self.solver_margin(z) + self.cfg.confidence).reshape(1)
            if self.slack == "t":
                f = v["t"].sum()
            elif self.slack == "s":
                f = v["s"].sum()
            elif self.dist == "l2":
                f = (delta * delta).sum()  # smooth; same minimiser as ||delta||_2
            else:
                f = self.distance(xa)
            return f, ci, None
        assert isinstance(self.cfg, MaxLossConfig)
        if self.cfg.loss == "margin":
            f = self.margin(z)
        else:
            ce = nn.functional.cross_entropy(z, self.cls)
            f = ce if self.cfg.targeted else -ce
        if self.dist == "l1" and self.slack == "s":
            ci["radius"] = (v["s"].sum() - self.eps).reshape(1)
        elif self.dist != "linf":
            ci["radius"] = (self.distance(xa) - self.eps).reshape(1)
        return f, ci, None

    # ------------------------------------------------------------------ starting points
    def start(self, random: bool, gen: torch.Generator | None) -> dict[str, torch.Tensor]:
        """The clean input (``random=False``) or a random point near it, with matching slacks."""
        xa = self.x.clone()
        if random:
            assert gen is not None
            noise = torch.randn(self.x.shape, generator=gen, dtype=self.x.dtype).to(self.x.device)
            scale = self.cfg.restart_scale
            if self.kind == "min":
                xa = self.x + scale * noise
            else:
                if self.dist == "linf":
                    u = torch.rand(self.x.shape, generator=gen, dtype=self.x.dtype)
                    delta = (2 * u - 1).to(self.x.device) * self.eps * scale
                elif self.dist == "l1":
                    delta = noise / noise.abs().sum() * self.eps * scale
                elif self.dist == "l2":
                    delta = noise / noise.norm() * self.eps * scale
                else:
                    delta = 0.02 * scale * noise
                xa = self.x + delta
            xa = xa.clamp(0.0, 1.0)
        return self.pack(xa)

    def pack(self, xa: torch.Tensor) -> dict[str, torch.Tensor]:
        """Variables for ``xa`` with the tightest feasible slack."""
        v = {"x": xa.clone()}
        d = (xa - self.x).abs()
        if self.slack == "t":
            v["t"] = d.max().reshape(1)
        elif self.slack == "s":
            v["s"] = d.clone()
        return v

    def unpack(self, flat: torch.Tensor) -> torch.Tensor:
        """The image part ``(1, C, H, W)`` of a flat solver vector (``x`` comes first)."""
        return flat[: self.x.numel()].reshape(self.x.shape)

    # ------------------------------------------------------------------ independent check
    def project(self, xa: torch.Tensor) -> torch.Tensor:
        """Clip onto the box (and, for max-loss lp balls, onto the ball) — never farther from x."""
        xa = xa.detach().clamp(0.0, 1.0)
        if self.kind == "max":
            if self.dist == "linf":
                xa = torch.minimum(torch.maximum(xa, self.lo), self.hi)
            elif self.dist == "l2":
                d = xa - self.x
                nrm = float(d.norm())
                if nrm > self.eps:
                    xa = (self.x + d * (self.eps / nrm)).clamp(0.0, 1.0)
        return xa

    @torch.no_grad()
    def check(self, xa: torch.Tensor) -> Check:
        """Re-evaluate a point from scratch: distances, margin, violations, feasibility, success."""
        xa = xa.detach()
        tol = self.cfg.viol_tol
        z = self.model(xa)
        margin = float(self.margin(z))
        box_viol = float(torch.clamp(torch.maximum(-xa, xa - 1.0), min=0.0).max())
        dist = float(self.distance(xa))
        lp = {p: float(lp_distance(self.x, xa, p)[0]) for p in ("l1", "l2", "linf")}
        viol = box_viol
        if self.kind == "min":
            # The user-level constraints: the box and misclassification (margin <= 0).
            viol = max(viol, margin, 0.0)
            feasible = viol <= tol
            success = margin < 0.0 and box_viol <= tol
        else:
            viol = max(viol, dist - self.eps, 0.0)
            feasible = viol <= tol
            success = feasible and margin < 0.0
        if not math.isfinite(margin) or not math.isfinite(dist):
            feasible = success = False
        return Check(
            margin=margin,
            distance=dist,
            distances=lp,
            max_violation=viol,
            feasible=feasible,
            success=success,
        )
