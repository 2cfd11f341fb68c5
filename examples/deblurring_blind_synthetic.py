"""Blind deblurring with an over-specified kernel size: naive double DIP vs the constrained
pipeline on ncvx (camera 64², 9-px motion blur, kernel specified as 25x25, sigma = 0.01).

    OMP_NUM_THREADS=1 python examples/deblurring_blind_synthetic.py          # ~3 min, one core
    python examples/deblurring_blind_synthetic.py --from-benchmark           # plot saved outputs

Saves docs/img/deblurring_blind.png (blurry input, both estimates with their kernels, the truth;
PSNR shift-aligned). ``--from-benchmark`` plots the outputs saved by
``python -m benchmarks.deblurring.cpu --group blind`` instead of recomputing them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from ncvx_imaging.deblurring import motion_kernel
from ncvx_imaging.deblurring.blind import crop_latent
from ncvx_imaging.deblurring.blind_dip import double_dip_naive
from ncvx_imaging.deblurring.pipeline import blind_deblur_constrained
from ncvx_imaging.deblurring.synthetic import make_blur_problem
from ncvx_imaging.metrics import psnr_aligned

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "img" / "deblurring_blind.png"
BENCH = ROOT / "benchmarks" / "deblurring" / "results" / "cpu"


def _outputs(spec: int, sigma: float, from_benchmark: bool) -> dict[str, torch.Tensor]:
    if from_benchmark:
        out: dict[str, torch.Tensor] = {}
        for method in ("naive_double_dip", "ncvx_constrained"):
            d = np.load(BENCH / f"blind-motion9_30-{spec}-{sigma}-{method}.npz")
            out.update({k: torch.as_tensor(d[k], dtype=torch.float64) for k in d.files})
        return out
    torch.set_num_threads(1)
    P = make_blur_problem("camera", 64, motion_kernel(9, 30.0), sigma, boundary="valid")
    naive = double_dip_naive(P.y, spec, iters=1500)
    ours = blind_deblur_constrained(P.y, spec, sigma)
    return {"truth": P.x, "y": P.y, "kernel": P.k,
            "naive_double_dip_latent": naive.x.double(), "naive_double_dip_kernel": naive.k,
            "ncvx_constrained_latent": ours.x, "ncvx_constrained_kernel": ours.k}


def main(spec: int = 25, sigma: float = 0.01) -> None:
    d = _outputs(spec, sigma, "--from-benchmark" in sys.argv)
    x, y = d["truth"], d["y"]
    panels = [(y, f"blurry {psnr_aligned(y, x, 8)[0]:.2f} dB", "gray")]
    for method, label in (("naive_double_dip", "naive double DIP"),
                          ("ncvx_constrained", "constrained (ncvx)")):
        k = d[f"{method}_kernel"]
        img = crop_latent(d[f"{method}_latent"], tuple(k.shape)).clamp(0, 1)
        panels.append((img, f"{label} {psnr_aligned(img, x, 8)[0]:.2f} dB", "gray"))
        panels.append((k, f"its kernel ({spec}x{spec})", "viridis"))
    panels.append((x, "truth", "gray"))
    fig, axes = plt.subplots(1, len(panels), figsize=(3 * len(panels), 3.4))
    for ax, (im, title, cmap) in zip(axes, panels):
        kw = {"vmin": 0, "vmax": 1} if cmap == "gray" else {}
        ax.imshow(im.numpy(), cmap=cmap, **kw)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.suptitle(f"camera 64², true kernel 9-px motion, specified {spec}x{spec}, σ = {sigma}",
                 fontsize=10)
    fig.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=90)
    print(OUT)


if __name__ == "__main__":
    main()
