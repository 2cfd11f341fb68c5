"""GPU tier: blind deblurring at 256² with an over-specified 127x127 kernel (one short script).

    python -m benchmarks.deblurring.gpu --out "$OUT" --budget-s 420

Not run yet (no GPU was lent to the session that wrote it); record its figures and the device in
``docs/deblurring.md`` when it is run. Problem: ``camera`` at 256², true kernel a 31-px motion blur
at 30°, 'valid' blur, σ = 0.01; the kernel size is specified as 127x127. Methods, each under a
time cap (``--budget-s`` split evenly):

- ``naive_double_dip``: the SelfDeblur recipe (MSE, Adam, softmax kernel MLP, no constraints) with
  the standard 5-level 128-channel generator;
- ``ncvx_constrained``: the constrained pipeline (:mod:`ncvx_imaging.deblurring.pipeline`: the
  same double DIP stopped at the noise level, ncvx alternating refinement with the kernel on the
  simplex, final TV-discrepancy deconvolution);
- the blurry input and, for reference, the non-blind ncvx TV-discrepancy with the true kernel.

Writes ``gpu.json`` (shift-aligned PSNR/SSIM, kernel error, seconds, device name) and
``gpu.npz`` (outputs) into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from ncvx_imaging.deblurring import motion_kernel
from ncvx_imaging.deblurring.blind import crop_latent
from ncvx_imaging.deblurring.blind_dip import double_dip_naive
from ncvx_imaging.deblurring.nonblind import deconv_tv_discrepancy
from ncvx_imaging.deblurring.pipeline import blind_deblur_constrained
from ncvx_imaging.deblurring.synthetic import make_blur_problem
from ncvx_imaging.dip import make_input, standard_skip
from ncvx_imaging.metrics import kernel_error_aligned, psnr_aligned, ssim_aligned

SHIFT = 16  # shift search in pixels (reduced automatically for tiny smoke-test sizes)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="deblurring GPU tier")
    ap.add_argument("--out", default="benchmarks/deblurring/results/gpu")
    ap.add_argument("--budget-s", type=float, default=420.0)
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--spec", type=int, default=127)
    args = ap.parse_args(argv)
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    shift = min(SHIFT, args.n // 4)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    P = make_blur_problem("camera", args.n, motion_kernel(31, 30.0), 0.01, boundary="valid")
    y = P.y.float().to(dev)
    spec = args.spec
    latent = (args.n + spec - 1, args.n + spec - 1)
    rec: dict = {"device": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu",
                 "n": args.n, "spec": spec, "true_kernel": "motion:31/30", "sigma": 0.01,
                 "methods": {}}
    arrays = {"truth": P.x, "y": P.y, "kernel": P.k}

    def score(name: str, x: torch.Tensor, k: torch.Tensor, secs: float, **extra: float) -> None:
        img = crop_latent(x.double().cpu(), tuple(k.shape)).clamp(0, 1)
        p, s = psnr_aligned(img, P.x, shift)
        q, _ = ssim_aligned(img, P.x, shift)
        rec["methods"][name] = {"psnr": p, "ssim": q, "shift": list(s), "seconds": secs,
                                "kernel_error": kernel_error_aligned(k.double().cpu(), P.k),
                                **extra}
        arrays[f"{name}_latent"] = x.cpu()
        arrays[f"{name}_kernel"] = k.cpu()
        print(name, json.dumps(rec["methods"][name]), flush=True)
        (out / "gpu.json").write_text(json.dumps(rec, indent=1))  # kept if a later step is cut

    p, _ = psnr_aligned(P.y, P.x, shift)
    rec["methods"]["blurry"] = {"psnr": p}
    cap = args.budget_s / 2

    def timed_iters(run_one: float) -> int:
        return max(int(cap / max(run_one, 1e-3)), 50)

    # naive double DIP: time 20 iterations, then run as many as fit the cap (at most 5000)
    torch.manual_seed(0)
    net = standard_skip(32, 1).to(dev)
    z = make_input(32, latent, device=dev)
    double_dip_naive(y, spec, iters=10, net=net, z=z)  # CUDA/cuDNN set-up, not timed
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    double_dip_naive(y, spec, iters=20, net=net, z=z)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    iters = min(timed_iters((time.perf_counter() - t) / 20), 5000)
    torch.manual_seed(0)
    net = standard_skip(32, 1).to(dev)
    res = double_dip_naive(y, spec, iters=iters, net=net, z=z)
    score("naive_double_dip", res.x, res.k, res.seconds, iterations=iters)

    torch.manual_seed(0)
    net = standard_skip(32, 1).to(dev)
    y64 = P.y.to(dev)
    res2 = blind_deblur_constrained(y64, spec, 0.01, warmup_iters=min(iters, 3000), net=net,
                                    z=z)
    score("ncvx_constrained", res2.x, res2.k, res2.seconds)

    nb = deconv_tv_discrepancy(P.y.to(dev), P.k.to(dev), 0.01, boundary="valid", maxit=300)
    score("nonblind_tv_true_kernel", nb.x, P.k, nb.seconds)
    (out / "gpu.json").write_text(json.dumps(rec, indent=1))
    np.savez_compressed(out / "gpu.npz", **{k: v.double().numpy().astype(np.float32)
                                           for k, v in arrays.items()})


if __name__ == "__main__":
    main()
