"""Markdown tables from ``results/cpu/*.json`` (or another folder), and PSNR recomputed from the
saved ``.npz`` outputs.

    python -m benchmarks.deblurring.report                      # writes results/cpu.md
    python -m benchmarks.deblurring.report --recompute          # + PSNR re-measured from .npz
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
BLIND_SHIFT = 8


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((np.clip(a, 0, 1) - b) ** 2)))


def _psnr_aligned(a: np.ndarray, b: np.ndarray, m: int = BLIND_SHIFT) -> float:
    H, W = b.shape
    ref = b[m : H - m, m : W - m]
    return max(
        _psnr(a[m + dy : H - m + dy, m + dx : W - m + dx], ref)
        for dy in range(-m, m + 1)
        for dx in range(-m, m + 1)
    )


def recompute(npz: Path) -> dict[str, float]:
    """PSNR of every image output in one task's ``.npz`` against its ``truth`` (shift-aligned
    for blind tasks, whose latent images are cropped with the saved kernel's size)."""
    d = np.load(npz)
    truth = d["truth"]
    out: dict[str, float] = {}
    blind = npz.name.startswith("blind")
    for key in d.files:
        if key in ("truth", "kernel") or key.endswith(("_kernel", "_curve")):
            continue
        img = d[key].astype(np.float64)
        if key.endswith("_latent"):
            kh, kw = d[key.replace("_latent", "_kernel")].shape
            img = img[kh // 2 : kh // 2 + truth.shape[0], kw // 2 : kw // 2 + truth.shape[1]]
        out[key] = _psnr_aligned(img, truth) if blind else _psnr(img, truth)
    return out


def _f(v: float | None, nd: int = 2) -> str:
    return "–" if v is None else f"{v:.{nd}f}"


def nonblind_table(recs: list[dict]) -> list[str]:
    lines = [
        "| n | kernel | σ | blurry | Wiener (oracle NSR) | TV (oracle λ) | ncvx τ=1 "
        "| ncvx τ=1−df/N (τ) | ncvx τ=1−df/N, σ estimated | gap to oracle TV | gain over Wiener "
        "| ncvx s (τ=df) | status |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in recs:
        m = r["methods"]
        c1 = m["ncvx_tv_discrepancy"]
        c = m.get("ncvx_tv_discrepancy_df", c1)
        e = m.get("ncvx_tv_discrepancy_sigma_estimated", {})
        gap = m["tv_oracle_lambda"]["psnr"] - c["psnr"]
        gain = c["psnr"] - m["wiener_oracle_nsr"]["psnr"]
        lines.append(
            f"| {r['n']} | {r['kernel']} | {r['sigma']} | {_f(m['blurry']['psnr'])} "
            f"| {_f(m['wiener_oracle_nsr']['psnr'])} | {_f(m['tv_oracle_lambda']['psnr'])} "
            f"| {_f(c1['psnr'])} | {_f(c['psnr'])} ({_f(c.get('tau'), 3)}) "
            f"| {_f(e.get('psnr'))} (σ̂={_f(e.get('sigma_estimated'), 4)}) "
            f"| {_f(gap)} | {_f(gain)} | {_f(c['seconds'], 0)} | {c['status']} |"
        )
    return lines


def dip_table(recs: list[dict]) -> list[str]:
    lines = [
        "| σ | blurry | Adam DIP final | Adam DIP best (iter) | ES-WMV (detected iter) "
        "| ncvx discrepancy DIP final | iters | s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in recs:
        m = r["methods"]
        a = m["dip_adam"]
        es = m.get("dip_adam_es_wmv", {})
        c = m["dip_ncvx_discrepancy"]
        lines.append(
            f"| {r['sigma']} | {_f(m['blurry']['psnr'])} | {_f(a['psnr_final'])} "
            f"| {_f(a['psnr_best'])} ({a['best_iteration']}) "
            f"| {_f(es.get('psnr'))} ({es.get('detected_iteration', '–')}) "
            f"| {_f(c['psnr_final'])} | {c['iterations']} | {_f(c['seconds'], 0)} |"
        )
    return lines


def blind_table(recs: list[dict]) -> list[str]:
    lines = [
        "| kernel | true | specified | σ | method | blurry (aligned) | estimate (aligned) "
        "| gain | kernel error | s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in recs:
        m = r["methods"]
        for name, v in m.items():
            if name == "blurry":
                continue
            lines.append(
                f"| {r['kernel']} | {r['true_size']} | {r['specified_size']} | {r['sigma']} "
                f"| {name} | {_f(m['blurry']['psnr'])} | {_f(v['psnr'])} "
                f"| {_f(v['psnr'] - m['blurry']['psnr'])} | {_f(v['kernel_error'], 3)} "
                f"| {_f(v['seconds'], 0)} |"
            )
    return lines


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="deblurring benchmark report")
    ap.add_argument("--dir", default=str(HERE / "results" / "cpu"))
    ap.add_argument("--out", default=None)
    ap.add_argument("--recompute", action="store_true")
    args = ap.parse_args(argv)
    d = Path(args.dir)
    recs = [json.loads(p.read_text()) for p in sorted(d.glob("*.json"))]
    groups = {g: [r for r in recs if r["task"].startswith(g)] for g in ("nonblind", "dip", "blind")}
    lines = [f"# Deblurring benchmark ({d.name} tier)", "",
             "PSNR in dB against the sharp image (blind: best over integer shifts up to "
             f"{BLIND_SHIFT} px, on the interior). Generated by `benchmarks/deblurring/report.py`.",
             ""]
    for g, fn in (("nonblind", nonblind_table), ("dip", dip_table), ("blind", blind_table)):
        if groups[g]:
            lines += [f"## {g}", "", *fn(groups[g]), ""]
    if args.recompute:
        lines += ["## PSNR recomputed from the saved outputs (.npz)", ""]
        for p in sorted(d.glob("*.npz")):
            vals = ", ".join(f"{k} {v:.2f}" for k, v in recompute(p).items())
            lines.append(f"- `{p.stem}`: {vals}")
        lines.append("")
    out = Path(args.out) if args.out else d.parent / f"{d.name}.md"
    out.write_text("\n".join(lines))
    print(out)


if __name__ == "__main__":
    main()
