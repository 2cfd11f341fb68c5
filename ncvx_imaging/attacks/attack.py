"""The attacks: one ncvx solve per example, with optional random restarts and a warm restart.

``min_distance_attack`` finds the smallest perturbation (in the chosen distance) that changes
the decision; ``max_loss_attack`` maximises a loss inside a ball of radius ``eps``. Every
returned point is re-evaluated independently (:meth:`AttackProblem.check`).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

import ncvx

from .config import AttackResult, ExampleResult, MaxLossConfig, MinDistanceConfig, SolverConfig
from .distances import FeatureDistance, FeatureFn, default_feature_fn
from .problem import AttackProblem, Check
from .validate import check_inputs

__all__ = ["max_loss_attack", "min_distance_attack"]


def min_distance_attack(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    config: MinDistanceConfig | None = None,
    *,
    target: torch.Tensor | None = None,
    feature_fn: FeatureFn | None = None,
    **overrides: Any,
) -> AttackResult:
    """Minimum-distance attack on each example of a batch.

    Solves ``min d(x, x')`` s.t. ``margin(x') <= -confidence`` and ``0 <= x' <= 1`` per example.

    Args:
        model: classifier in eval mode mapping ``(B, C, H, W)`` in [0, 1] to logits ``(B, K)``.
        x: inputs ``(B, C, H, W)`` in [0, 1] (the dtype of the model's parameters).
        y: true labels ``(B,)`` (integer).
        config: a :class:`MinDistanceConfig` (default: L2, untargeted, folded box).
        target: target labels ``(B,)`` for ``targeted=True``.
        feature_fn: feature maps for ``distance="feature"`` (default: ``model.features`` or hooks).
        **overrides: config fields to replace, e.g. ``distance="linf"``.

    Returns:
        An :class:`AttackResult` with one :class:`ExampleResult` per input.
    """
    cfg = dataclasses.replace(config or MinDistanceConfig(), **overrides)
    if not isinstance(cfg, MinDistanceConfig):
        raise TypeError(f"config must be a MinDistanceConfig, got {type(cfg).__name__}")
    return _run(model, x, y, cfg, target, feature_fn)


def max_loss_attack(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    config: MaxLossConfig | None = None,
    *,
    target: torch.Tensor | None = None,
    feature_fn: FeatureFn | None = None,
    **overrides: Any,
) -> AttackResult:
    """Maximum-loss attack: ``max loss(x')`` s.t. ``d(x, x') <= eps`` and ``0 <= x' <= 1``.

    Arguments as in :func:`min_distance_attack`; the config is a :class:`MaxLossConfig`
    (``eps``, ``loss``, ``stop_on_success``). ``success`` means a feasible misclassified point.
    """
    cfg = dataclasses.replace(config or MaxLossConfig(), **overrides)
    if not isinstance(cfg, MaxLossConfig):
        raise TypeError(f"config must be a MaxLossConfig, got {type(cfg).__name__}")
    return _run(model, x, y, cfg, target, feature_fn)


def _run(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: SolverConfig,
    target: torch.Tensor | None,
    feature_fn: FeatureFn | None,
) -> AttackResult:
    if cfg.targeted and target is None:
        raise ValueError("targeted=True needs target labels (target=...)")
    if not cfg.targeted and target is not None:
        raise ValueError("target labels were given but targeted=False; set targeted=True")
    check_inputs(model, x, y, target)
    feature = None
    if cfg.distance == "feature":
        feature = FeatureDistance(feature_fn or default_feature_fn(model))
    gen = torch.Generator().manual_seed(cfg.seed)
    examples = []
    for i in range(x.shape[0]):
        problem = AttackProblem(
            model,
            x[i : i + 1],
            int(y[i]),
            None if target is None else int(target[i]),
            cfg,
            feature,
        )
        examples.append(_attack_one(problem, i, gen))
    return AttackResult(examples=examples, config=cfg)


class _Tracker:
    """Callback: re-check every accepted iterate and keep the best successful one.

    Min-distance: the successful iterate (box to ``viol_tol``, margin < 0) of smallest distance.
    Max-loss with ``stop_on_success``: halt at the first feasible iterate with margin
    ``<= -confidence``.
    """

    def __init__(self, problem: AttackProblem) -> None:
        self.problem = problem
        cfg = problem.cfg
        self.stop = isinstance(cfg, MaxLossConfig) and cfg.stop_on_success
        self.found: torch.Tensor | None = None
        self.best = math.inf
        self.halted = False
        self.run = 0  # index of the solver run in progress (set by the driver)
        self.found_run = 0

    def __call__(self, record: Any) -> bool:
        p = self.problem
        xa = p.project(p.unpack(record.point.x)) if p.cfg.project else p.unpack(record.point.x)
        chk = p.check(xa)
        if not chk["success"]:
            return False
        if p.kind == "min":
            if chk["distance"] < self.best:
                self.best = chk["distance"]
                self.found = xa.detach().clone()
                self.found_run = self.run
            return False
        assert isinstance(p.cfg, MaxLossConfig)
        if self.stop and chk["margin"] <= -p.cfg.confidence:
            self.found = xa.detach().clone()
            self.found_run = self.run
            self.halted = True
            return True
        return False


def _solver_options(cfg: SolverConfig, maxit: int) -> dict[str, Any]:
    opts: dict[str, Any] = {
        "maxit": maxit,
        "print_level": 0,
        "opt_tol": cfg.opt_tol,
        "viol_ineq_tol": cfg.viol_tol,
        "viol_eq_tol": cfg.viol_tol,
        "maxclocktime": cfg.max_seconds,
        "limited_mem_size": cfg.limited_mem_size,
    }
    if cfg.ngrad is not None:
        opts["ngrad"] = cfg.ngrad
    opts.update(cfg.solver_options)
    return opts


def _key(problem: AttackProblem, chk: Check) -> tuple[float, float]:
    """Sort key of a candidate: successful first, then smaller distance / lower margin."""
    if problem.kind == "min":
        return (0.0 if chk["success"] else 1.0, chk["distance"] if chk["success"] else chk["margin"])
    return (0.0 if chk["success"] else 1.0, chk["margin"])


def _attack_one(problem: AttackProblem, index: int, gen: torch.Generator) -> ExampleResult:
    cfg = problem.cfg
    start = time.perf_counter()
    candidates: list[tuple[tuple[float, float], torch.Tensor, Check, int]] = []
    runs: list[ncvx.Result] = []
    tracker = _Tracker(problem)
    callback: Callable[[Any], bool] = tracker

    def consider(xa: torch.Tensor, run: int) -> None:
        xa = problem.project(xa) if cfg.project else xa.detach()
        chk = problem.check(xa)
        candidates.append((_key(problem, chk), xa, chk, run))

    def solve(
        v0: dict[str, torch.Tensor], maxit: int, prob: AttackProblem = problem, **warm: Any
    ) -> ncvx.Result:
        tracker.run = len(runs)
        res = ncvx.solve(prob.fn, v0, callback=callback, **_solver_options(cfg, maxit), **warm)
        runs.append(res)
        consider(problem.unpack(res.x), len(runs) - 1)
        return res

    if cfg.restarts == 0:
        solve(problem.start(False, None), cfg.maxit)
    else:
        short = []
        for r in range(cfg.restarts + 1):
            if tracker.halted:
                break
            short.append(solve(problem.start(r > 0, gen), cfg.restart_maxit))
        if not tracker.halted and cfg.maxit > 0:
            best = min(short, key=lambda res: _run_key(problem, res))
            warm: dict[str, Any] = {"mu0": float(best.mu)}
            if cfg.limited_mem_size > 0:
                warm["limited_mem_warm_start"] = best.hessian_state
            else:
                warm["H0"] = best.hessian_state
                warm["scaleH0"] = False
            v0 = _unflatten_like(problem, best.x)
            solve(v0, cfg.maxit, **warm)
    if isinstance(cfg, MinDistanceConfig) and cfg.versus_top > 0 and not cfg.targeted:
        with torch.no_grad():
            z = problem.model(problem.x)[0].clone()
        z[problem.label] = -math.inf
        for j in torch.argsort(z, descending=True)[: cfg.versus_top].tolist():
            pair = problem.against(int(j))
            solve(pair.start(False, None), cfg.maxit, prob=pair)
    if tracker.found is not None:
        consider(tracker.found, tracker.found_run)
    _, xa, chk, run = min(candidates, key=lambda c: c[0])
    final = runs[run]
    return ExampleResult(
        index=index,
        label=problem.label,
        target=problem.target,
        x_adv=xa[0].clone(),
        distance=chk["distance"],
        distances=chk["distances"],
        margin=chk["margin"],
        success=bool(chk["success"]),
        feasible=bool(chk["feasible"]),
        max_violation=chk["max_violation"],
        status=int(final.status),
        status_name=final.status.name,
        stat_value=float(final.stat_value),
        iters=sum(r.iters for r in runs),
        seconds=time.perf_counter() - start,
    )


def _run_key(problem: AttackProblem, res: ncvx.Result) -> tuple[float, float]:
    """Rank solver runs: a feasible best point first (lower objective), else smaller violation."""
    if res.best is not None and math.isfinite(res.best.f):
        return (0.0, res.best.f)
    return (1.0, res.most_feasible.tv)


def _unflatten_like(problem: AttackProblem, flat: torch.Tensor) -> dict[str, torch.Tensor]:
    """Split a flat solver vector into the problem's variable dict."""
    n = problem.x.numel()
    v = {"x": flat[:n].reshape(problem.x.shape).clone()}
    if problem.slack == "t":
        v["t"] = flat[n : n + 1].clone()
    elif problem.slack == "s":
        v["s"] = flat[n : 2 * n].reshape(problem.x.shape).clone()
    return v
