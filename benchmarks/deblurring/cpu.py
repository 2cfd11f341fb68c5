"""CPU tier of the deblurring / DIP benchmark (each task well under 3 minutes on one core).

    OMP_NUM_THREADS=1 python -m benchmarks.deblurring.cpu --list
    OMP_NUM_THREADS=1 python -m benchmarks.deblurring.cpu --task nonblind-64-gauss-0.01
    OMP_NUM_THREADS=1 python -m benchmarks.deblurring.cpu --group nonblind   # or dip, blind, all
    python -m benchmarks.deblurring.report     # results/cpu/*.json -> results/cpu.md

Each task writes ``results/cpu/<task>.json`` (PSNR/SSIM, shift-aligned where the answer is only
defined up to a shift, kernel error, seconds, solver status; ``wall_s`` and ``cpu_s`` for the whole
task — on a shared machine ``cpu_s`` is the better estimate of the quiet-core time) and ``results/cpu/<task>.npz`` (the
truth, the data, the kernel and every method's output), so any number can be recomputed:
:func:`benchmarks.deblurring.report.recompute` does it from the ``.npz`` files alone.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ncvx_imaging.deblurring import conv_circular, gaussian_kernel, motion_kernel
from ncvx_imaging.deblurring.baselines import oracle_tune, tv_deconv, wiener
from ncvx_imaging.deblurring.blind import blind_deblur_am, crop_latent
from ncvx_imaging.deblurring.blind_dip import blind_deblur_dip, double_dip_naive
from ncvx_imaging.deblurring.nonblind import deconv_tv_discrepancy
from ncvx_imaging.deblurring.pipeline import blind_deblur_constrained
from ncvx_imaging.deblurring.synthetic import make_blur_problem
from ncvx_imaging.dip import ESWMV, fit_dip_adam, fit_dip_ncvx, make_input, small_skip
from ncvx_imaging.metrics import kernel_error_aligned, psnr, psnr_aligned, ssim, ssim_aligned

OUT = Path(__file__).resolve().parent / "results" / "cpu"
#: shift search (pixels) for the blind scores; the blurry input is scored the same way
BLIND_SHIFT = 8


def _kernel(name: str) -> torch.Tensor:
    kind, _, arg = name.partition(":")
    if kind == "gauss":
        size, sd = arg.split("/")
        return gaussian_kernel(int(size), float(sd))
    if kind == "motion":
        length, angle = arg.split("/")
        return motion_kernel(float(length), float(angle))
    raise ValueError(f"unknown kernel spec {name!r}")


def _scores(est: torch.Tensor, ref: torch.Tensor) -> dict[str, float]:
    est = est.clamp(0, 1)
    return {"psnr": float(psnr(est, ref)), "ssim": float(ssim(est, ref))}


def _aligned(est: torch.Tensor, ref: torch.Tensor) -> dict[str, float]:
    est = est.clamp(0, 1)
    p, s = psnr_aligned(est, ref, BLIND_SHIFT)
    q, _ = ssim_aligned(est, ref, BLIND_SHIFT)
    return {"psnr": p, "ssim": q, "shift": list(s)}


# ----------------------------------------------------------------------------------- non-blind
NONBLIND_KERNELS = {"gauss": "gauss:13/2", "motion": "motion:11/30"}


def nonblind_task(n: int, kname: str, sigma: float, maxit: int) -> tuple[dict, dict]:
    k = _kernel(NONBLIND_KERNELS[kname])
    P = make_blur_problem("camera", n, k, sigma, boundary="circular", seed=0)
    rec: dict[str, Any] = {"image": "camera", "n": n, "kernel": NONBLIND_KERNELS[kname],
                           "sigma": sigma, "boundary": "circular", "methods": {}}
    arrays = {"truth": P.x, "y": P.y, "kernel": P.k}
    rec["methods"]["blurry"] = _scores(P.y, P.x)
    t = time.perf_counter()
    nsr, xw, _ = oracle_tune(lambda v: wiener(P.y, P.k, v), P.x, [10.0**e for e in range(-5, 1)])
    rec["methods"]["wiener_oracle_nsr"] = {**_scores(xw, P.x), "nsr": nsr,
                                           "seconds": time.perf_counter() - t}
    arrays["wiener_oracle_nsr"] = xw.clamp(0, 1)
    t = time.perf_counter()
    lam, xt, _ = oracle_tune(lambda v: tv_deconv(P.y, P.k, v, iters=800), P.x,
                             [10 ** (e / 2) for e in range(-9, -1)], refine=3)
    rec["methods"]["tv_oracle_lambda"] = {**_scores(xt, P.x), "lambda": lam,
                                          "seconds": time.perf_counter() - t}
    arrays["tv_oracle_lambda"] = xt
    out = deconv_tv_discrepancy(P.y, P.k, sigma, tau=1.0, maxit=maxit, limited_mem_size=20)
    rec["methods"]["ncvx_tv_discrepancy"] = {
        **_scores(out.x, P.x), "seconds": out.seconds, "status": int(out.result.status),
        "iters": out.iterations, "restarts": out.restarts, "misfit_ratio": out.misfit_ratio,
        "tau": 1.0, "box": "bounds",
        "box_violation": float(torch.relu(out.x - 1).max() + torch.relu(-out.x).max()),
    }
    arrays["ncvx_tv_discrepancy"] = out.x
    # tau from the estimate's degrees of freedom (the fixed point tau = 1 - df/N with the risk
    # safeguard, select_tau_fixed_point; no ground truth), sigma known; ncvx continues from its
    # tau = 1 answer (continuation: a cold start stalls at 128^2)
    out_df = deconv_tv_discrepancy(P.y, P.k, sigma, tau="df", x0=out.x, maxit=maxit,
                                   limited_mem_size=20)
    rec["methods"]["ncvx_tv_discrepancy_df"] = {
        **_scores(out_df.x, P.x), "seconds": out_df.seconds, "status": int(out_df.result.status),
        "iters": out_df.iterations, "misfit_ratio": out_df.misfit_ratio, "tau": out_df.tau,
        "tau_rule": "select_tau_fixed_point",
        "tau_history": out_df.tau_choice.history,
        "primal_dual_at_tau": _scores(out_df.tau_choice.x, P.x), "start": "ncvx tau=1 answer",
    }
    arrays["ncvx_tv_discrepancy_df"] = out_df.x
    # the same with sigma estimated from the data
    out2 = deconv_tv_discrepancy(P.y, P.k, None, tau="df", maxit=maxit, limited_mem_size=20)
    rec["methods"]["ncvx_tv_discrepancy_sigma_estimated"] = {
        **_scores(out2.x, P.x), "seconds": out2.seconds, "status": int(out2.result.status),
        "sigma_estimated": out2.sigma, "misfit_ratio": out2.misfit_ratio, "tau": out2.tau,
    }
    arrays["ncvx_tv_discrepancy_sigma_estimated"] = out2.x
    return rec, arrays


# ----------------------------------------------------------------------------------------- DIP
def dip_task(sigma: float, iters: int, ncvx_maxit: int) -> tuple[dict, dict]:
    P = make_blur_problem("camera", 64, _kernel("gauss:13/2"), sigma, boundary="circular")
    rec: dict[str, Any] = {"image": "camera", "n": 64, "kernel": "gauss:13/2", "sigma": sigma,
                           "net": "small_skip(width=16, depth=3)", "methods": {}}
    arrays = {"truth": P.x, "y": P.y, "kernel": P.k}
    rec["methods"]["blurry"] = _scores(P.y, P.x)

    def blur(im: torch.Tensor) -> torch.Tensor:
        return conv_circular(im, P.k.to(im.dtype))

    # plain DIP (Adam, MSE) with ES-WMV watching (the run continues to the end)
    torch.manual_seed(0)
    net = small_skip(8, 1, width=16)
    z = make_input(8, (64, 64))
    es = ESWMV(window=50, patience=iters)
    adam = fit_dip_adam(net, z, P.y.float(), blur, iters=iters, lr=0.01, reference=P.x.float(),
                        callback=lambda im, i: es.update(im))
    curve = np.array(adam.psnr)
    rec["methods"]["dip_adam"] = {
        "psnr_final": float(curve[-1]), "psnr_best": float(curve.max()),
        "best_iteration": int(curve.argmax()), "iterations": iters, "seconds": adam.seconds,
        **{f"{k}_final": v for k, v in _scores(adam.image.double(), P.x).items()},
    }
    arrays["dip_adam_final"] = adam.image.double()
    if es.best_image is not None and es.best_iteration is not None:
        rec["methods"]["dip_adam_es_wmv"] = {
            **_scores(es.best_image.double(), P.x), "detected_iteration": es.best_iteration,
            "psnr_gap_to_best": float(curve.max() - curve[es.best_iteration]),
        }
        arrays["dip_adam_es_wmv"] = es.best_image.double()
    arrays["dip_adam_psnr_curve"] = torch.as_tensor(curve)
    # discrepancy-constrained DIP on ncvx (float64 network)
    torch.manual_seed(0)
    net = small_skip(8, 1, width=16).double()
    z = make_input(8, (64, 64), dtype=torch.float64)
    fit = fit_dip_ncvx(net, z, P.y, blur, mode="discrepancy", sigma=sigma, maxit=ncvx_maxit,
                       limited_mem_size=10, reference=P.x)
    c2 = np.array(fit.psnr)
    rec["methods"]["dip_ncvx_discrepancy"] = {
        "psnr_final": float(c2[-1]), "psnr_best": float(c2.max()), "iterations": fit.iterations,
        "status": int(fit.result.status), "seconds": fit.seconds,
        **{f"{k}_final": v for k, v in _scores(fit.image, P.x).items()},
    }
    arrays["dip_ncvx_discrepancy"] = fit.image
    arrays["dip_ncvx_psnr_curve"] = torch.as_tensor(c2)
    return rec, arrays


# --------------------------------------------------------------------------------------- blind
def blind_task(kname: str, spec: int, sigma: float, method: str) -> tuple[dict, dict]:
    k = _kernel(kname)
    P = make_blur_problem("camera", 64, k, sigma, boundary="valid", seed=0)
    rec: dict[str, Any] = {"image": "camera", "n": 64, "kernel": kname, "true_size": k.shape[0],
                           "specified_size": spec, "sigma": sigma, "boundary": "valid",
                           "shift_search": BLIND_SHIFT, "methods": {}}
    arrays = {"truth": P.x, "y": P.y, "kernel": P.k}
    rec["methods"]["blurry"] = _aligned(P.y, P.x)
    if method == "naive_double_dip":
        out = double_dip_naive(P.y, spec, iters=1500)
    elif method == "ncvx_constrained":
        out = blind_deblur_constrained(P.y, spec, sigma)
    elif method == "ncvx_dip":
        out = blind_deblur_dip(P.y, spec, sigma)
    elif method == "ncvx_am":
        out = blind_deblur_am(P.y, spec, sigma)
    else:
        raise ValueError(method)
    img = crop_latent(out.x, tuple(out.k.shape))
    rec["methods"][method] = {
        **_aligned(img, P.x), "kernel_error": kernel_error_aligned(out.k, P.k),
        "seconds": out.seconds, "misfit_ratio": out.misfit_ratio,
        "kernel_min": float(out.k.min()), "kernel_sum": float(out.k.sum()),
    }
    arrays[f"{method}_latent"] = out.x
    arrays[f"{method}_kernel"] = out.k
    return rec, arrays


# --------------------------------------------------------------------------------------- tasks
def _tasks() -> dict[str, Callable[[], tuple[dict, dict]]]:
    tasks: dict[str, Callable[[], tuple[dict, dict]]] = {}
    for n, maxit in ((64, 600), (128, 600)):
        for kname in NONBLIND_KERNELS:
            for sigma in (0.01, 0.05):
                tasks[f"nonblind-{n}-{kname}-{sigma}"] = (
                    lambda n=n, kname=kname, sigma=sigma, maxit=maxit: nonblind_task(
                        n, kname, sigma, maxit
                    )
                )
    for sigma in (0.05, 0.02):
        tasks[f"dip-64-gauss-{sigma}"] = lambda sigma=sigma: dip_task(sigma, 1500, 600)
    # specified size: exact, or at least twice the true size and at least 25 (odd)
    for kname, true in (("motion:9/30", 9), ("motion:13/60", 13)):
        for spec in (true, max(2 * true, 25) // 2 * 2 + 1):
            for sigma in (0.01, 0.03):
                for method in ("naive_double_dip", "ncvx_constrained"):
                    name = f"blind-{kname.replace(':', '').replace('/', '_')}-{spec}-{sigma}-{method}"
                    tasks[name] = (
                        lambda kname=kname, spec=spec, sigma=sigma, method=method: blind_task(
                            kname, spec, sigma, method
                        )
                    )
    return tasks


def _save(name: str, rec: dict, arrays: dict[str, torch.Tensor], wall: float, cpu: float) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    rec = {"task": name, "wall_s": wall, "cpu_s": cpu,
           "machine": platform.processor() or platform.machine(),
           "torch": torch.__version__, "threads": torch.get_num_threads(), **rec}
    (OUT / f"{name}.json").write_text(json.dumps(rec, indent=1))
    np.savez_compressed(OUT / f"{name}.npz",
                        **{k: v.detach().cpu().numpy().astype(np.float32) for k, v in arrays.items()})


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", action="append", default=[])
    ap.add_argument("--group", choices=["nonblind", "dip", "blind", "all"])
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    tasks = _tasks()
    if args.list:
        print("\n".join(tasks))
        return
    names = list(args.task)
    if args.group:
        names += [t for t in tasks if args.group == "all" or t.startswith(args.group)]
    for name in names:
        if name not in tasks:
            raise SystemExit(f"unknown task {name!r}; see --list")
        t0 = time.perf_counter()
        c0 = time.process_time()
        rec, arrays = tasks[name]()
        wall = time.perf_counter() - t0
        _save(name, rec, arrays, wall, time.process_time() - c0)
        print(f"{name}: {wall:.0f} s", json.dumps(rec["methods"], default=str)[:600], flush=True)


if __name__ == "__main__":
    main()
