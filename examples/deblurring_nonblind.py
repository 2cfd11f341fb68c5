"""Non-blind deconvolution with a discrepancy constraint (ncvx) next to Wiener and oracle TV.

    OMP_NUM_THREADS=1 python examples/deblurring_nonblind.py        # about a minute on one core

Saves docs/img/deblurring_nonblind.png: blurry input, Wiener (best NSR on a grid, chosen with the
truth), TV with the best weight (chosen with the truth), and ncvx's
min TV(x) s.t. ||k*x - y||^2 <= sigma^2 N, 0 <= x <= 1 — which needs only sigma.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from ncvx_imaging.deblurring import estimate_noise_sigma, gaussian_kernel
from ncvx_imaging.deblurring.baselines import oracle_tune, tv_deconv, wiener
from ncvx_imaging.deblurring.nonblind import deconv_tv_discrepancy
from ncvx_imaging.deblurring.synthetic import make_blur_problem
from ncvx_imaging.metrics import psnr

OUT = Path(__file__).resolve().parent.parent / "docs" / "img" / "deblurring_nonblind.png"


def main() -> None:
    torch.set_num_threads(1)
    P = make_blur_problem("camera", 64, gaussian_kernel(13, 2.0), 0.01, seed=0)
    print(f"sigma = {P.sigma}, estimated from y: {float(estimate_noise_sigma(P.y)):.4f}")
    _, xw, pw = oracle_tune(lambda v: wiener(P.y, P.k, v), P.x, [10.0**e for e in range(-5, 1)])
    lam, xt, pt = oracle_tune(lambda v: tv_deconv(P.y, P.k, v, iters=800), P.x,
                              [10 ** (e / 2) for e in range(-9, -1)], refine=3)
    out = deconv_tv_discrepancy(P.y, P.k, P.sigma, maxit=600)
    pc = float(psnr(out.x, P.x))
    print(f"Wiener {pw:.2f} dB, oracle TV {pt:.2f} dB (lambda={lam:.2e}), "
          f"ncvx {pc:.2f} dB in {out.seconds:.0f} s, misfit ratio {out.misfit_ratio:.4f}")
    panels = [
        (P.x, "truth"),
        (P.y, f"blurry {float(psnr(P.y, P.x)):.2f} dB"),
        (xw, f"Wiener (oracle NSR) {pw:.2f} dB"),
        (xt, f"TV (oracle λ) {pt:.2f} dB"),
        (out.x, f"ncvx TV s.t. discrepancy {pc:.2f} dB"),
    ]
    fig, axes = plt.subplots(1, 5, figsize=(15, 3.4))
    for ax, (im, title) in zip(axes, panels):
        ax.imshow(im.clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=90)
    print(OUT)


if __name__ == "__main__":
    main()
