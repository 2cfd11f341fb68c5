"""Session-7 experiment (not adopted): an upward check for the ``"fit"`` start's half-size stage.

At the exact kernel size the half-size warm start (7 for an 11- or 13-px blur) can settle on a
compact 5-7 px kernel that is *not* cut off (ring mass 0.005-0.035), and the support refit then
goes smaller still (four held-out exact-size failures, 16.9-18.5 dB). The check runs stages 1-2
once more at ``_odd(3 S / 4)`` and switches to that support when its kernel is longer than the
half size (``--rule longer``; ``--rule disagree``: only when the half-size kernel is shorter
than its support and the 3/4 kernel spans all of its own). Two modes:

    OMP_NUM_THREADS=1 python -m benchmarks.deblurring.upward_check run CASE [CASE ...]
    OMP_NUM_THREADS=1 python -m benchmarks.deblurring.upward_check extents --set held1 ...

``run``: the whole ``"fit"`` pipeline with the check (records ``results/upward_check/<case>.json``);
``extents``: only stages 1-2 at 3/4 of the size for every case of the sets (the kernel extent
there; ``results/upward_check/extents.jsonl``), to see offline which cases a rule would switch.
``agreement``: stages 1-2 at the half and at 3/4 of the size for the named cases, and the
normalised cross-correlation (maximum over shifts) of the two kernels with each other and with
the true kernel (``results/upward_check/agreement.jsonl``).
CASE names are ``blind_choice.case_name`` (e.g. ``astronaut-shake13_17-13-0.01-s2``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import benchmarks.deblurring.blind_choice as bc
import ncvx_imaging.deblurring.pipeline as pm
from ncvx_imaging.deblurring.blind import BlindResult, _odd, crop_latent_centred
from ncvx_imaging.deblurring.blind_dip import double_dip_naive
from ncvx_imaging.deblurring.synthetic import make_blur_problem
from ncvx_imaging.metrics import kernel_error_aligned, psnr_aligned

OUT = Path(__file__).resolve().parent / "results" / "upward_check"


def fit_with_upward_check(
    y: torch.Tensor, S: int, sigma: float, seed: int = 0, tau: float = 1.0, iters: int = 1500,
    outer: int = 8, final_maxit: int = 300, frac: float = 0.75, rule: str = "longer",
) -> tuple[BlindResult, dict]:
    """``pipeline._one_start(..., "fit", ...)`` with the upward check between the half-size
    stage (and its fallback) and the support refit. ``rule``: switch to the 3/4 support when
    its kernel is longer than the half size (``"longer"``), or only when the half-size kernel is
    shorter than its support and the 3/4 kernel spans its whole support (``"disagree"``)."""
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    x0, k0, info = pm.size_pyramid_warm_start(y, S, sigma, tau, iters, seed, None, None,
                                              ring_max=1.0)
    size = S
    if info["enlarged"]:
        warm = info["small_warmup"]
        size = info["small_size"]
        x0, k0 = warm.x.to(y).clamp(0, 1), warm.k.to(y) / warm.k.sum()
    am = pm.blind_deblur_am(y, size, sigma, tau, outer=outer, x0=x0, k0=k0)
    if size < S and pm.estimate_support(am.k) >= size and info["ring_mass"] > 0.25:
        torch.manual_seed(seed)
        warm = double_dip_naive(y, S, iters=iters, seed=seed, stop_mse=tau * sigma**2)
        size = S
        am = pm.blind_deblur_am(y, size, sigma, tau, outer=outer, x0=warm.x.to(y).clamp(0, 1),
                                k0=warm.k.to(y))
    if size < S:  # the upward check
        m = _odd(frac * S)
        if size < m < S:
            torch.manual_seed(seed)
            warm = double_dip_naive(y, m, iters=iters, seed=seed, stop_mse=tau * sigma**2)
            am_m = pm.blind_deblur_am(y, m, sigma, tau, outer=outer,
                                      x0=warm.x.to(y).clamp(0, 1), k0=warm.k.to(y) / warm.k.sum())
            e_m = pm.estimate_support(am_m.k)
            e_h = pm.estimate_support(am.k)
            info.update(up_size=m, up_extent=e_m, half_extent=e_h)
            if (e_m > size) if rule == "longer" else (e_h < size and e_m >= m):
                info["up_used"] = True
                size, am = m, am_m
    size, am = pm._refit_support(y, S, size, am, sigma, tau, iters, seed, outer, None, None,
                                 info)
    final = pm.deconv_tv_discrepancy(y, am.k, sigma, tau, boundary="valid",
                                     x0=am.x.clamp(0, 1), maxit=final_maxit, box="fold")
    x_out, k_out = final.x, am.k
    if size < S:
        x_out, k_out = pm.enlarge_support(x_out, k_out, S)
    return BlindResult(x=x_out, k=k_out, result=final.result, seconds=time.perf_counter() - t0,
                       sigma=sigma, misfit_ratio=final.misfit_ratio), info


def _problem(c: tuple):
    image, kspec, _spec, sigma, seed = c
    return make_blur_problem(image, 64, bc._kernel(kspec), sigma, boundary="valid", seed=seed)


def run(names: list[str], rule: str = "longer") -> None:
    cases = {bc.case_name(c): c for s in bc.SETS.values() for c in s}
    cases.update({bc.case_name(bc.exact_size(c)): bc.exact_size(c) for c in list(cases.values())})
    OUT.mkdir(parents=True, exist_ok=True)
    keys = ("small_size", "up_size", "up_extent", "half_extent", "up_used", "support_estimate",
            "refit", "refit_extent", "refit_rejected", "refit_size", "enlarged")
    for n in names:
        c = cases[n]
        P = _problem(c)
        t = time.process_time()
        out, info = fit_with_upward_check(P.y, c[2], c[3], rule=rule)
        img = crop_latent_centred(out.x, out.k).clamp(0, 1)
        rec = {"case": n, "rule": rule, "cpu_s": time.process_time() - t, "psnr": psnr_aligned(img, P.x, 8)[0],
               "blurry": psnr_aligned(P.y, P.x, 8)[0],
               "kernel_error": kernel_error_aligned(out.k, P.k),
               **{k: info.get(k) for k in keys}}
        (OUT / f"{n}{'' if rule == 'longer' else '-' + rule}.json").write_text(json.dumps(rec, indent=1))
        print(json.dumps(rec), flush=True)


def extents(sets: list[str]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name in sets:
        for c in bc.SETS[name]:
            P = _problem(c)
            m = _odd(0.75 * c[2])
            t = time.process_time()
            torch.manual_seed(0)
            warm = double_dip_naive(P.y, m, iters=1500, seed=0, stop_mse=c[3] ** 2)
            am = pm.blind_deblur_am(P.y, m, c[3], 1.0, outer=8, x0=warm.x.to(P.y).clamp(0, 1),
                                    k0=warm.k.to(P.y) / warm.k.sum())
            rec = {"case": bc.case_name(c), "m": m, "up_extent": pm.estimate_support(am.k),
                   "up_ring": pm.ring_mass(am.k), "cpu_s": time.process_time() - t}
            with open(OUT / "extents.jsonl", "a") as f:
                f.write(json.dumps(rec) + "\n")
            print(json.dumps(rec), flush=True)


def kernel_agreement(a: torch.Tensor, b: torch.Tensor) -> float:
    """Maximum over integer shifts of ``<a, shifted b> / (|a| |b|)`` for two square kernels."""
    big, small = (a, b) if a.shape[0] >= b.shape[0] else (b, a)
    p = small.shape[0] - 1
    c = F.conv2d(F.pad(big[None, None], (p, p, p, p)), small[None, None])
    return float(c.max() / (big.norm() * small.norm()))


def _stage(y: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    torch.manual_seed(0)
    w = double_dip_naive(y, size, iters=1500, seed=0, stop_mse=sigma**2)
    return pm.blind_deblur_am(y, size, sigma, 1.0, outer=8, x0=w.x.to(y).clamp(0, 1),
                              k0=w.k.to(y) / w.k.sum()).k


def agreement(names: list[str]) -> None:
    cases = {bc.case_name(c): c for s in bc.SETS.values() for c in s}
    cases.update({bc.case_name(bc.exact_size(c)): bc.exact_size(c) for c in list(cases.values())})
    OUT.mkdir(parents=True, exist_ok=True)
    for n in names:
        c = cases[n]
        P = _problem(c)
        h, m = _odd(c[2] / 2), _odd(0.75 * c[2])
        kh, km = _stage(P.y, h, c[3]), _stage(P.y, m, c[3])
        rec = {"case": n, "h": h, "m": m, "e_h": pm.estimate_support(kh),
               "e_m": pm.estimate_support(km), "ncc": kernel_agreement(kh, km),
               "ncc_true_h": kernel_agreement(kh, P.k), "ncc_true_m": kernel_agreement(km, P.k)}
        with open(OUT / "agreement.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")
        print(json.dumps(rec), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["run", "extents", "agreement"])
    ap.add_argument("cases", nargs="*")
    ap.add_argument("--set", action="append", choices=list(bc.SETS), default=[])
    ap.add_argument("--rule", choices=["longer", "disagree"], default="longer")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.mode == "run":
        run(args.cases, args.rule)
    elif args.mode == "agreement":
        agreement(args.cases)
    else:
        extents(args.set)


if __name__ == "__main__":
    main()
