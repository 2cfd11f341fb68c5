"""Blind pipeline, one start at a time: full-resolution vs coarse (half-resolution) warm start.

    OMP_NUM_THREADS=1 python -m benchmarks.deblurring.blind_starts 13/60 27 0.03 full:0 coarse:0
    OMP_NUM_THREADS=1 python -m benchmarks.deblurring.blind_starts 13/60 27 0.03 sizes:0 final_box=bounds

Arguments: true motion kernel ``length/angle``, specified kernel size, sigma, then
``kind:seed`` starts. Prints per start the shift-aligned PSNR, the kernel error, the formulation's
objective ``||grad x||_1/||grad x||_2`` of the answer (what ``starts=[...]`` chooses by), the
misfit ratio and the warm start's Adam steps. Same problems as ``cpu.py``'s blind tasks (camera
64², 'valid' blur, noise seed 0).
"""

from __future__ import annotations

import sys
import time

import torch

from ncvx_imaging.deblurring import motion_kernel
from ncvx_imaging.deblurring.blind import crop_latent
from ncvx_imaging.deblurring.pipeline import _one_start
from ncvx_imaging.deblurring.regularizers import l1_over_l2
from ncvx_imaging.deblurring.synthetic import make_blur_problem
from ncvx_imaging.metrics import kernel_error_aligned, psnr_aligned


def main(argv: list[str]) -> None:
    torch.set_num_threads(1)
    kname, spec, sigma = argv[0], int(argv[1]), float(argv[2])
    final_box = "fold"
    if argv[-1].startswith("final_box="):
        final_box = argv.pop().split("=", 1)[1]
    starts = [(a.split(":")[0], int(a.split(":")[1])) for a in argv[3:]] or [("full", 0)]
    length, angle = map(float, kname.split("/"))
    P = make_blur_problem("camera", 64, motion_kernel(length, angle), sigma, boundary="valid",
                          seed=0)
    print(kname, spec, sigma, f"blurry {psnr_aligned(P.y, P.x, 8)[0]:.2f}", flush=True)
    for kind, seed in starts:
        t0 = time.process_time()
        out, info = _one_start(P.y, spec, sigma, 1.0, kind, seed, 1500, 8, 300, None, None,
                               final_box)
        img = crop_latent(out.x, tuple(out.k.shape))
        print(f"  {kind} seed {seed}: psnr {psnr_aligned(img.clamp(0, 1), P.x, 8)[0]:.2f}"
              f" kernel error {kernel_error_aligned(out.k, P.k):.3f}"
              f" objective {float(l1_over_l2(img)):.4f} misfit ratio {out.misfit_ratio:.3f}"
              f" warm-up {info['warmup'].iterations}"
              f" enlarged {info.get('enlarged')} ring {info.get('ring_mass', float('nan')):.3f}"
              f" cpu {time.process_time() - t0:.0f} s",
              flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
