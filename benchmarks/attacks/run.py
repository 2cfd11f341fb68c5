"""ncvx attacks against foolbox / torchattacks baselines on scikit-learn digits (offline).

Usage (one part at a time; each writes ``results/<part>.json``; ``report`` writes the table)::

    OMP_NUM_THREADS=1 python -m benchmarks.attacks.run min --n 100
    OMP_NUM_THREADS=1 python -m benchmarks.attacks.run maxloss --n 100
    OMP_NUM_THREADS=1 python -m benchmarks.attacks.run perceptual --n 100
    python -m benchmarks.attacks.report

Baselines are optional: ``pip install foolbox`` (FMN L1/L2/L∞, DeepFool, PGD) and
``pip install --no-deps torchattacks`` (FAB, APGD; torchattacks imports without torchvision).
The model is a :class:`DigitsCNN` trained with seed 0 on split seed 0 — not the model the tests
use. Inputs: the first ``n`` correctly classified test images. Every returned point of every
method is re-checked here with the same float64 model: inside [0, 1] to 1e-6, misclassified,
and for max-loss within eps (+1e-6).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ncvx_imaging.attacks import (
    FeatureDistance,
    MaxLossConfig,
    MinDistanceConfig,
    lp_distance,
    margins,
    max_loss_attack,
    min_distance_attack,
    ssim_distance,
)
from ncvx_imaging.attacks.models import (
    DigitsCNN,
    accuracy,
    load_digits_data,
    train_classifier,
)

RESULTS = Path(__file__).parent / "results"
TOL = 1e-6


def setup(n: int) -> tuple[nn.Module, torch.Tensor, torch.Tensor, float]:
    """The benchmark model (DigitsCNN, seed 0) and the first ``n`` correct test inputs."""
    data = load_digits_data(seed=0)
    model = train_classifier(DigitsCNN(), data.x_train, data.y_train, epochs=30, seed=0)
    with torch.no_grad():
        ok = (model(data.x_test).argmax(1) == data.y_test).nonzero()[:, 0][:n]
    return model, data.x_test[ok], data.y_test[ok], accuracy(model, data.x_test, data.y_test)


class _Cast(nn.Module):
    """Run the float64 model on inputs of any float dtype; logits come back in that dtype."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.double()).to(x.dtype)


def recheck(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, xa: torch.Tensor, p: str,
    eps: float | None = None, dist_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> dict[str, list]:
    """Independent check of points ``xa`` (float64): distance, box violation, success."""
    xa = xa.detach().double()
    with torch.no_grad():
        m = margins(model(xa), y)
        d = dist_fn(x, xa) if dist_fn is not None else lp_distance(x, xa, p)
    box = torch.clamp(torch.maximum(-xa, xa - 1), min=0).flatten(1).amax(1)
    ok_box = box <= TOL
    ok_eps = torch.ones_like(ok_box) if eps is None else d <= eps + TOL
    success = (m < 0) & ok_box & ok_eps
    return {
        "distance": d.tolist(),
        "margin": m.tolist(),
        "box_violation": box.tolist(),
        "feasible": (ok_box & ok_eps).tolist(),
        "success": success.tolist(),
    }


def _median_radius(rec: dict[str, list]) -> float:
    vals = [d if s else math.inf for d, s in zip(rec["distance"], rec["success"])]
    return float(statistics.median(vals))


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def _foolbox():
    try:
        import foolbox as fb
    except ImportError:
        print("foolbox missing: pip install foolbox (baselines skipped)")
        return None
    return fb


def _torchattacks():
    try:
        import torchattacks
    except ImportError:
        print("torchattacks missing: pip install --no-deps torchattacks (FAB/APGD skipped)")
        return None
    return torchattacks


def _float32_copy(model: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(model).float().eval()


def part_min(
    n: int, norms: list[str], maxit: int, max_seconds: float, versus_top: int
) -> dict[str, Any]:
    model, x, y, acc = setup(n)
    fb, ta = _foolbox(), _torchattacks()
    out: dict[str, Any] = {"n": len(y), "test_accuracy": acc, "norms": {}}
    for p in norms:
        rows: dict[str, Any] = {}
        cfg = MinDistanceConfig(
            distance=p, maxit=maxit, max_seconds=max_seconds, versus_top=versus_top
        )
        res, secs = _timed(lambda cfg=cfg: min_distance_attack(model, x, y, cfg))
        rec = recheck(model, x, y, res.x_adv, p)
        rec.update(
            seconds_per_example=secs / len(y),
            status=[e.status_name for e in res.examples],
            iters=[e.iters for e in res.examples],
            config={k: v for k, v in cfg.__dict__.items() if k != "solver_options"},
        )
        rows["ncvx"] = rec
        print(p, "ncvx", _median_radius(rec), secs / len(y), flush=True)
        if fb is not None:
            fm = fb.PyTorchModel(_Cast(model).eval(), bounds=(0, 1))
            attacks = {
                "l1": {
                    "FMN": fb.attacks.L1FMNAttack(steps=1000),
                    "FMN (max_stepsize=0.1)": fb.attacks.L1FMNAttack(steps=1000, max_stepsize=0.1),
                },
                "l2": {
                    "FMN": fb.attacks.L2FMNAttack(steps=1000),
                    "FMN (max_stepsize=0.1)": fb.attacks.L2FMNAttack(steps=1000, max_stepsize=0.1),
                    "DeepFool": fb.attacks.L2DeepFoolAttack(steps=100, overshoot=0.02),
                },
                "linf": {
                    "FMN": fb.attacks.LInfFMNAttack(steps=1000),
                    "DeepFool": fb.attacks.LinfDeepFoolAttack(steps=100, overshoot=0.02),
                },
            }[p]
            for name, atk in attacks.items():
                (_, clipped, _), secs = _timed(lambda atk=atk, fm=fm: atk(fm, x, y, epsilons=None))
                rec = recheck(model, x, y, clipped, p)
                rec["seconds_per_example"] = secs / len(y)
                rows[f"foolbox {name}"] = rec
                print(p, name, _median_radius(rec), secs / len(y), flush=True)
        if ta is not None and p in ("l2", "linf"):
            m32 = _float32_copy(model)
            atk = ta.FAB(m32, norm={"l2": "L2", "linf": "Linf"}[p], steps=100, n_restarts=1, eps=1e3,
                         n_classes=10, seed=0)
            adv, secs = _timed(lambda atk=atk: atk(x.float(), y))
            rec = recheck(model, x, y, adv, p)
            rec["seconds_per_example"] = secs / len(y)
            rows["torchattacks FAB (float32)"] = rec
            print(p, "FAB", _median_radius(rec), secs / len(y), flush=True)
        out["norms"][p] = rows
    return out


def part_maxloss(
    n: int, eps_linf: float, eps_l2: float, restarts: int = 2, loss: str = "margin",
    baselines: bool = True,
) -> dict[str, Any]:
    model, x, y, acc = setup(n)
    fb, ta = (_foolbox(), _torchattacks()) if baselines else (None, None)
    out: dict[str, Any] = {"n": len(y), "test_accuracy": acc, "norms": {}}
    for p, eps in (("linf", eps_linf), ("l2", eps_l2)):
        rows: dict[str, Any] = {"eps": eps}
        cfg = MaxLossConfig(distance=p, eps=eps, loss=loss, restarts=restarts)  # type: ignore[arg-type]
        res, secs = _timed(lambda cfg=cfg: max_loss_attack(model, x, y, cfg))
        rec = recheck(model, x, y, res.x_adv, p, eps)
        rec.update(seconds_per_example=secs / len(y), status=[e.status_name for e in res.examples])
        rows["ncvx"] = rec
        print(p, "ncvx robust acc", 1 - sum(rec["success"]) / len(y), secs / len(y), flush=True)
        if fb is not None:
            fm = fb.PyTorchModel(_Cast(model).eval(), bounds=(0, 1))
            atk = {"linf": fb.attacks.LinfPGD(steps=100, rel_stepsize=0.05),
                   "l2": fb.attacks.L2PGD(steps=100, rel_stepsize=0.05)}[p]
            (_, clipped, _), secs = _timed(lambda atk=atk, fm=fm, eps=eps: atk(fm, x, y, epsilons=eps))
            rec = recheck(model, x, y, clipped, p, eps)
            rec["seconds_per_example"] = secs / len(y)
            rows["foolbox PGD"] = rec
            print(p, "PGD robust acc", 1 - sum(rec["success"]) / len(y), flush=True)
        if ta is not None:
            m32 = _float32_copy(model)
            for loss in ("ce", "dlr"):
                atk = ta.APGD(m32, norm={"l2": "L2", "linf": "Linf"}[p], eps=eps, steps=100,
                              n_restarts=1, loss=loss, seed=0)
                adv, secs = _timed(lambda atk=atk: atk(x.float(), y))
                rec = recheck(model, x, y, adv, p, eps)
                rec["seconds_per_example"] = secs / len(y)
                rows[f"torchattacks APGD-{loss} (float32)"] = rec
                print(p, loss, "APGD robust acc", 1 - sum(rec["success"]) / len(y), flush=True)
        out["norms"][p] = rows
    return out


def lagrangian_pgd(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor,
    dist: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], eps: float,
    steps: int = 200, lr: float = 0.01, lam0: float = 1.0, lam_growth: float = 1.5,
) -> torch.Tensor:
    """Penalty-method baseline (Laidlaw et al. 2021 style, our own implementation).

    Gradient steps (normalised, box-projected) on ``−margin(x') − λ max(0, d(x, x') − eps)``;
    λ grows by ``lam_growth`` every 20 steps for examples still outside the ball. Returns the
    last iterate that was inside the ball and misclassified, else the last inside-ball iterate,
    else the final iterate (which the re-check will count as infeasible).
    """
    xa = x.clone()
    lam = torch.full((x.shape[0],), lam0, dtype=x.dtype)
    best = x.clone()
    found = torch.zeros(x.shape[0], dtype=torch.bool)
    for k in range(steps):
        xa = xa.detach().requires_grad_(True)
        m = margins(model(xa), y)
        d = dist(x, xa)
        obj = (m + lam * torch.clamp(d - eps, min=0)).sum()
        (g,) = torch.autograd.grad(obj, xa)
        with torch.no_grad():
            inside = d <= eps
            good = inside & (m < 0)
            keep = good | (inside & ~found)
            best[keep] = xa.detach()[keep]
            found |= good
            gn = g.flatten(1).norm(dim=1).clamp_min(1e-12).reshape(-1, 1, 1, 1)
            xa = (xa - lr * g / gn).clamp(0, 1)
            if (k + 1) % 20 == 0:
                lam = torch.where(d > eps, lam * lam_growth, lam)
    return best


def part_perceptual(n: int, eps_feature: float, eps_ssim: float) -> dict[str, Any]:
    model, x, y, acc = setup(n)
    feat = FeatureDistance(model.features)
    out: dict[str, Any] = {"n": len(y), "test_accuracy": acc, "distances": {}}
    for name, eps, fn in (
        ("feature", eps_feature, lambda a, b: feat(a, b)),
        ("ssim", eps_ssim, lambda a, b: ssim_distance(a, b, window=5, sigma=1.0)),
    ):
        rows: dict[str, Any] = {"eps": eps}
        cfg = MaxLossConfig(distance=name, eps=eps, loss="margin")  # type: ignore[arg-type]
        res, secs = _timed(lambda cfg=cfg: max_loss_attack(model, x, y, cfg))
        rec = recheck(model, x, y, res.x_adv, "l2", eps, fn)
        rec.update(seconds_per_example=secs / len(y), status=[e.status_name for e in res.examples])
        rows["ncvx"] = rec
        print(name, "ncvx success", sum(rec["success"]) / len(y), secs / len(y), flush=True)
        adv, secs = _timed(lambda fn=fn, eps=eps: lagrangian_pgd(model, x, y, fn, eps))
        rec = recheck(model, x, y, adv, "l2", eps, fn)
        rec["seconds_per_example"] = secs / len(y)
        rows["Lagrangian PGD"] = rec
        print(name, "LPGD success", sum(rec["success"]) / len(y), flush=True)
        out["distances"][name] = rows
    return out


def main() -> None:
    torch.set_num_threads(1)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("part", choices=["min", "maxloss", "perceptual"])
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--norms", default="l2,linf,l1")
    ap.add_argument("--maxit", type=int, default=200)
    ap.add_argument("--max-seconds", type=float, default=10.0)
    ap.add_argument("--versus-top", type=int, default=0)
    ap.add_argument("--eps-linf", type=float, default=0.1)
    ap.add_argument("--eps-l2", type=float, default=0.5)
    ap.add_argument("--eps-feature", type=float, default=0.05)
    ap.add_argument("--eps-ssim", type=float, default=0.05)
    ap.add_argument("--restarts", type=int, default=2, help="max-loss restarts")
    ap.add_argument("--loss", default="margin", choices=["margin", "ce"], help="max-loss loss")
    ap.add_argument("--no-baselines", action="store_true")
    ap.add_argument("--tag", default="")
    args = ap.parse_args()
    t0 = time.perf_counter()
    if args.part == "min":
        out = part_min(args.n, args.norms.split(","), args.maxit, args.max_seconds, args.versus_top)
    elif args.part == "maxloss":
        out = part_maxloss(
            args.n, args.eps_linf, args.eps_l2, args.restarts, args.loss, not args.no_baselines
        )
    else:
        out = part_perceptual(args.n, args.eps_feature, args.eps_ssim)
    out["meta"] = {
        "args": vars(args),
        "wall_seconds": time.perf_counter() - t0,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "note": "2-core machine shared with other jobs; times are indicative",
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{args.part}{args.tag}.json"
    path.write_text(json.dumps(out, indent=1))
    print("wrote", path)


if __name__ == "__main__":
    main()
