"""Learned inversion of real Gaussian phase retrieval, before and after symmetry breaking.

A fixed ``A`` (``m x n``, n = 5, m = 4n) and training pairs ``(y, x)`` with ``x ~ N(0, I)``,
``y = |Ax|^2``. Two regressors learn ``y -> x``: a small MLP (torch, Adam) and a k-NN regressor
(scikit-learn). "before": raw targets ``x``; "after": targets canonicalised with
:func:`ncvx_imaging.symmetry.canonical_sign` (first coordinate positive). The test error is the
mean relative error ``min(||x^ - x||, ||x^ + x||) / ||x||`` in percent, so the only ambiguity of
the problem is forgiven in both settings.

    OMP_NUM_THREADS=1 python -m benchmarks.phase_retrieval.symmetry_breaking

Writes ``results/symmetry_breaking.json`` and ``.md``. The law to see: before, the error does not
fall with more samples; after, it does. ``--sizes 1e6`` is for a GPU (``--device cuda``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch import nn

from benchmarks.phase_retrieval._common import (
    environment,
    md_table,
    quiet_threads,
    write_json,
    write_markdown,
)
from ncvx_imaging.phase_retrieval import GaussianMeasurement
from ncvx_imaging.symmetry import canonical_sign


def make_data(model: GaussianMeasurement, num: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(num, model.n, dtype=torch.float64, generator=g)
    return model(x), x


def sign_error(pred: torch.Tensor, x: torch.Tensor) -> float:
    """Mean of min(||p - x||, ||p + x||) / ||x|| in percent."""
    e = torch.minimum((pred - x).norm(dim=1), (pred + x).norm(dim=1)) / x.norm(dim=1)
    return 100.0 * float(e.mean())


def features(y: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    return (y.sqrt() - mean) / std


def train_mlp(
    f: torch.Tensor, t: torch.Tensor, *, epochs: int, width: int, seed: int, device: str
) -> nn.Module:
    torch.manual_seed(seed)
    d_in, d_out = f.shape[1], t.shape[1]
    net = nn.Sequential(
        nn.Linear(d_in, width),
        nn.ReLU(),
        nn.Linear(width, width),
        nn.ReLU(),
        nn.Linear(width, width),
        nn.ReLU(),
        nn.Linear(width, d_out),
    ).to(device)
    f32, t32 = f.float().to(device), t.float().to(device)
    batch = 256
    steps_per_epoch = max(1, len(f32) // batch)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps_per_epoch)
    g = torch.Generator(device="cpu").manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(f32), generator=g).to(device)
        for i in range(steps_per_epoch):
            idx = perm[i * batch : (i + 1) * batch]
            loss = (net(f32[idx]) - t32[idx]).square().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return net.eval()


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=5)
    ap.add_argument("--m-ratio", type=int, default=4)
    ap.add_argument("--sizes", type=float, nargs="+", default=[2e4, 5e4, 1e5])
    ap.add_argument("--test", type=int, default=5000)
    ap.add_argument("--steps", type=int, default=12_000, help="MLP Adam steps (batch 256) per run")
    ap.add_argument(
        "--epochs", type=int, default=0, help="fixed MLP epochs instead of a fixed step budget"
    )
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--k", type=int, default=5, help="neighbours of the k-NN regressor")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--name", default="symmetry_breaking")
    args = ap.parse_args()
    quiet_threads()
    try:
        from sklearn.neighbors import KNeighborsRegressor
    except ImportError as exc:  # pragma: no cover - imaging extra missing
        raise SystemExit("scikit-learn is needed: pip install scikit-learn") from exc
    model = GaussianMeasurement.random(args.m_ratio * args.n, args.n, seed=args.seed)
    y_test, x_test = make_data(model, args.test, seed=10**6 + args.seed)
    records = []
    for size in args.sizes:
        num = int(size)
        y, x = make_data(model, num, seed=args.seed + 1)
        mean, std = y.sqrt().mean(0), y.sqrt().std(0)
        f, f_test = features(y, mean, std), features(y_test, mean, std)
        for setting, target in (("before", x), ("after", canonical_sign(x))):
            rec = {"samples": num, "setting": setting}
            t = time.perf_counter()
            knn = KNeighborsRegressor(n_neighbors=args.k).fit(f.numpy(), target.numpy())
            pred = torch.from_numpy(knn.predict(f_test.numpy()))
            rec["knn_error_pct"] = sign_error(pred, x_test)
            rec["knn_s"] = time.perf_counter() - t
            t = time.perf_counter()
            epochs = args.epochs or max(1, round(args.steps * 256 / num))
            net = train_mlp(
                f, target, epochs=epochs, width=args.width, seed=args.seed, device=args.device
            )
            with torch.no_grad():
                pred = net(f_test.float().to(args.device)).double().cpu()
            rec["mlp_error_pct"] = sign_error(pred, x_test)
            rec["mlp_s"] = time.perf_counter() - t
            rec["mlp_epochs"] = epochs
            records.append(rec)
            print(rec, flush=True)
    write_json(args.name, {"config": vars(args), "env": environment(), "records": records})
    rows = []
    for size in args.sizes:
        r = {rec["setting"]: rec for rec in records if rec["samples"] == int(size)}
        rows.append(
            [
                f"{int(size):.0e}",
                f"{r['after']['mlp_error_pct']:.2f}",
                f"{r['after']['knn_error_pct']:.2f}",
                f"{r['before']['mlp_error_pct']:.2f}",
                f"{r['before']['knn_error_pct']:.2f}",
            ]
        )
    text = (
        f"# Symmetry breaking: learned inversion of real Gaussian PR (n = {args.n}, "
        f"m = {args.m_ratio * args.n})\n\nMean test error (%) up to the global sign, "
        f"{args.test} test samples; MLP 3x{args.width} ReLU, Adam (cosine schedule), "
        + (f"{args.epochs} epochs" if args.epochs else f"{args.steps} steps")
        + f" of batch 256; "
        f"k-NN k = {args.k}.\n\n"
        + md_table(["samples", "after: MLP", "after: k-NN", "before: MLP", "before: k-NN"], rows)
        + "\nSeed talk (its own setup): after DNN 4.08 / 2.20 / 1.30, k-NN 11.82 / 9.41 / 7.98; "
        "before DNN 85.37 / 90.51 / 96.66, k-NN 68.26 / 66.58 / 66.18 at 2e4 / 5e4 / 1e5.\n"
    )
    write_markdown(args.name, text)
    print(np.array(rows))


if __name__ == "__main__":
    main()
