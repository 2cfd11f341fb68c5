"""Markdown tables from ``results/{min,maxloss,perceptual,folding}.json``.

    python -m benchmarks.attacks.report      # writes results/report.md and prints it
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def _load(name: str) -> dict | None:
    p = RESULTS / f"{name}.json"
    return json.loads(p.read_text()) if p.exists() else None


def _median(rec: dict) -> float:
    return statistics.median(d if s else math.inf for d, s in zip(rec["distance"], rec["success"]))


def _fmt(v: float) -> str:
    return "inf" if math.isinf(v) else f"{v:.4g}"


def min_table(data: dict) -> list[str]:
    lines = [
        f"### Minimum-distance attacks ({data['n']} correctly classified test inputs, "
        f"test accuracy {data['test_accuracy']:.3f})",
        "",
        "| norm | method | median radius | ratio to best baseline | success | feasible "
        "(box ≤ 1e-6) | max box violation | s / example |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p, rows in data["norms"].items():
        base = [_median(r) for k, r in rows.items() if k != "ncvx"]
        best = min(base) if base else math.nan
        for name, r in rows.items():
            med = _median(r)
            ratio = med / best if base and best > 0 else math.nan
            lines.append(
                f"| {p} | {name} | {_fmt(med)} | {ratio:.3f} | {sum(r['success'])}/{len(r['success'])}"
                f" | {sum(r['feasible'])}/{len(r['feasible'])} | {max(r['box_violation']):.1e}"
                f" | {r['seconds_per_example']:.3f} |"
            )
        if "ncvx" in rows and base:
            # per-example comparison against the per-example best baseline
            nc = rows["ncvx"]
            per = []
            for i in range(len(nc["distance"])):
                b = min(
                    (r["distance"][i] if r["success"][i] else math.inf)
                    for k, r in rows.items() if k != "ncvx"
                )
                a = nc["distance"][i] if nc["success"][i] else math.inf
                if math.isfinite(b) and b > 0:
                    per.append(a / b)
            if per:
                lines.append(
                    f"| {p} | ncvx / per-example best baseline | median ratio "
                    f"{statistics.median(per):.3f} | ≤ 1.0 on {sum(v <= 1.0 + 1e-9 for v in per)}"
                    f"/{len(per)} | | | | |"
                )
    return lines


def maxloss_table(data: dict) -> list[str]:
    lines = [
        f"### Maximum-loss attacks ({data['n']} inputs): robust accuracy at fixed ε",
        "",
        "| norm | ε | method | robust accuracy | attack success | feasible | max box violation "
        "| s / example |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p, rows in data["norms"].items():
        eps = rows["eps"]
        for name, r in rows.items():
            if name == "eps":
                continue
            n = len(r["success"])
            lines.append(
                f"| {p} | {eps} | {name} | {1 - sum(r['success']) / n:.3f} | {sum(r['success'])}/{n}"
                f" | {sum(r['feasible'])}/{n} | {max(r['box_violation']):.1e}"
                f" | {r['seconds_per_example']:.3f} |"
            )
    return lines


def perceptual_table(data: dict) -> list[str]:
    lines = [
        f"### Perceptual max-loss attacks ({data['n']} inputs): success rate at the same radius",
        "",
        "| distance | ε | method | success rate | feasible (d ≤ ε, box) | s / example |",
        "|---|---|---|---|---|---|",
    ]
    for name, rows in data["distances"].items():
        eps = rows["eps"]
        for meth, r in rows.items():
            if meth == "eps":
                continue
            n = len(r["success"])
            lines.append(
                f"| {name} | {eps} | {meth} | {sum(r['success']) / n:.3f} | "
                f"{sum(r['feasible'])}/{n} | {r['seconds_per_example']:.3f} |"
            )
    return lines


def folding_table(data: dict) -> list[str]:
    lines = [
        f"### Folded vs unfolded ({data['n']} inputs, min-distance)",
        "",
        "| distance | folded | median distance | success | all feasible | s / example |",
        "|---|---|---|---|---|---|",
    ]
    for r in data["attacks"]:
        lines.append(
            f"| {r['distance']} | {r['folded']} | {_fmt(r['median_distance'])} | "
            f"{r['success_rate']:.2f} | {r['all_feasible']} | {r['seconds_per_example']:.2f} |"
        )
    lines += ["", "Projection onto [0, 1]^50:", "", "| box | status | iterations | seconds |"
              " max error vs clamp |", "|---|---|---|---|---|"]
    for r in data["projection"]:
        lines.append(
            f"| {r['box']} | {r['status']} | {r['iters']} | {r['seconds']:.2f} | "
            f"{r['error_vs_clamp']:.1e} |"
        )
    return lines


def main() -> None:
    out: list[str] = ["# ncvx attacks vs baselines (generated by benchmarks/attacks/report.py)", ""]
    mins = sorted(p.stem for p in RESULTS.glob("min*.json"))
    maxes = sorted(p.stem for p in RESULTS.glob("maxloss*.json"))
    parts = [(m, min_table) for m in mins] + [(m, maxloss_table) for m in maxes] + [
        ("perceptual", perceptual_table), ("folding", folding_table)
    ]
    for name, fn in parts:
        data = _load(name)
        if data is not None:
            out += [f"## {name}", ""]
            out += [*fn(data), ""]
            meta = data.get("meta", {})
            if meta:
                out += [f"_{name}: args {meta.get('args')}, wall {meta.get('wall_seconds', 0):.0f} s;"
                        f" {meta.get('note', '')}_", ""]
    text = "\n".join(out)
    (RESULTS / "report.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
