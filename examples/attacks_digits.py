"""Attack a digits classifier end to end and save a picture per distance.

Trains a small CNN on scikit-learn's digits (offline, a few seconds, fixed seed), runs the
minimum-distance attack for L1, L2, L∞, the feature distance and 1 − SSIM on one correctly
classified test image, prints each result with its certificate, and saves
``docs/img/attacks_digits.png`` (rows: distances; columns: original, perturbation, adversarial).

    OMP_NUM_THREADS=1 python examples/attacks_digits.py [--out docs/img/attacks_digits.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ncvx_imaging.attacks import MinDistanceConfig, min_distance_attack
from ncvx_imaging.attacks.models import DigitsCNN, accuracy, load_digits_data, train_classifier

DISTANCES = ("l1", "l2", "linf", "feature", "ssim")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("docs/img/attacks_digits.png"))
    ap.add_argument("--index", type=int, default=0, help="which correctly classified test image")
    args = ap.parse_args()
    torch.set_num_threads(1)

    data = load_digits_data(seed=0)
    model = train_classifier(DigitsCNN(), data.x_train, data.y_train, epochs=30, seed=0)
    print(f"test accuracy {accuracy(model, data.x_test, data.y_test):.3f}")
    with torch.no_grad():
        ok = (model(data.x_test).argmax(1) == data.y_test).nonzero()[:, 0]
    i = int(ok[args.index])
    x, y = data.x_test[i : i + 1], data.y_test[i : i + 1]

    rows = []
    for dist in DISTANCES:
        cfg = MinDistanceConfig(distance=dist, maxit=100, max_seconds=20.0)
        e = min_distance_attack(model, x, y, cfg).examples[0]
        with torch.no_grad():
            pred = int(model(e.x_adv[None]).argmax(1))
        print(
            f"{dist:8s} d={e.distance:.4g}  l2={e.distances['l2']:.3g}  label {e.label} -> {pred}"
            f"  margin={e.margin:.2e}  success={e.success}  feasible={e.feasible}"
            f"  status={e.status_name} (stat {e.stat_value:.1e}, {e.iters} it, {e.seconds:.1f} s)"
        )
        rows.append((dist, e, pred))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), 3, figsize=(6, 2.0 * len(rows)))
    for r, (dist, e, pred) in enumerate(rows):
        delta = (e.x_adv - x[0])[0]
        lim = float(delta.abs().max()) or 1.0
        panels = [
            (x[0, 0], "gray", 0.0, 1.0, f"original ({e.label})"),
            (delta, "seismic", -lim, lim, f"{dist}: d={e.distance:.3g}"),
            (e.x_adv[0], "gray", 0.0, 1.0, f"adversarial ({pred})"),
        ]
        for c, (img, cmap, lo, hi, title) in enumerate(panels):
            ax = axes[r, c]
            ax.imshow(img.numpy(), cmap=cmap, vmin=lo, vmax=hi)
            ax.set_title(title, fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=120)
    print("saved", args.out)


if __name__ == "__main__":
    main()
