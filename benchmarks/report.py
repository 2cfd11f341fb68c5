"""Turn benchmark records into markdown tables and a Dolan–Moré performance profile.

    python -m benchmarks.report benchmarks/results/*.json \\
        --md docs/performance-table.md --profile docs/img/profile.png

Per (problem, solver): the median over repeats of the wall time and of its split, and the
median iterations / evaluations / objective / violation. Then the ratios ncvx / PyGRANSO of
wall time, iterations and evaluations, and the profile over wall time.

A run counts as *solved* for the profile when it finished (no timeout or error), its l∞
violation is at most ``--viol-tol`` and its objective is within ``--f-tol`` (relative, at
least absolute 1 × f-tol) of the lowest objective any solver reached feasibly on that problem.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from . import profiles

ORDER = ("ncvx", "pygranso", "slsqp", "ipopt")
NAMES = {"ncvx": "ncvx", "pygranso": "PyGRANSO", "slsqp": "SLSQP", "ipopt": "IPOPT"}


def load(paths: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    records, machines = [], []
    for p in paths:
        data = json.loads(Path(p).read_text())
        runs = data.get("history") or [{**data.get("machine", {}), "command": data.get("command")}]
        machines.extend({"file": p, **m} for m in runs)
        for r in data.get("records", []):
            records.append({**r, "_file": p, "_suite": data.get("suite", Path(p).stem)})
    return records, machines


def _med(xs: list[float]) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def summarize(records: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        groups[(r["problem"], r["solver"])].append(r)
    out = {}
    for key, rs in groups.items():
        ok = [r for r in rs if r.get("status") == "ok"]
        s: dict[str, Any] = {
            "runs": len(rs),
            "ok": len(ok),
            "statuses": sorted({r.get("status", "?") for r in rs}),
            "suite": rs[0]["_suite"],
        }
        if ok:
            first = ok[0]
            for k in ("n", "m_i", "m_e", "subproblems", "solver_version"):
                s[k] = first.get(k)
            codes = [json.dumps(r.get("termination_code")) for r in ok]
            s["code"] = max(set(codes), key=codes.count)
            s["codes_vary"] = len(set(codes)) > 1
            for k in (
                "wall_s",
                "fn_ad_s",
                "user_fn_s",
                "autodiff_s",
                "qp_s",
                "linalg_s",
                "other_s",
                "iters",
                "fn_evals",
                "f",
                "tv",
                "peak_rss_mb",
                "rss_before_solve_mb",
                "warmup_s",
            ):
                s[k] = _med([r.get(k) for r in ok])
            walls = [r["wall_s"] for r in ok]
            s["wall_min"], s["wall_max"] = min(walls), max(walls)
            s["f_all"] = [r.get("f") for r in ok]
            s["iters_all"] = [r.get("iters") for r in ok]
        out[key] = s
    return out


def _fmt(x: Any, spec: str = ".3g") -> str:
    if x is None:
        return "–"
    if isinstance(x, float) and not math.isfinite(x):
        return "∞"
    return format(x, spec)


def _solvers(summary: dict[tuple[str, str], dict[str, Any]]) -> list[str]:
    present = {s for _, s in summary}
    return [s for s in ORDER if s in present] + sorted(present - set(ORDER))


def _problems(summary: dict[tuple[str, str], dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for p, _ in summary:
        seen.setdefault(p, None)
    return list(seen)


def solved_costs(
    summary: dict[tuple[str, str], dict[str, Any]],
    solvers: list[str],
    problems: list[str],
    f_tol: float,
    viol_tol: float,
) -> dict[str, dict[str, float]]:
    """``{problem: {solver: median wall}}`` with ``inf`` for runs that do not count as solved."""
    costs: dict[str, dict[str, float]] = {}
    for p in problems:
        feas = [  # reference f over every solver that ran p, not only those plotted
            summary[(p, s)]["f"]
            for s in _solvers(summary)
            if (p, s) in summary
            and summary[(p, s)].get("f") is not None
            and summary[(p, s)]["tv"] <= viol_tol
        ]
        f_best = min(feas) if feas else None
        row = {}
        for s in solvers:
            sm = summary.get((p, s))
            ok = (
                sm is not None
                and sm.get("ok", 0) > 0
                and sm.get("f") is not None
                and f_best is not None
                and sm["tv"] <= viol_tol
                and sm["f"] <= f_best + f_tol * max(1.0, abs(f_best))
            )
            row[s] = sm["wall_s"] if ok else math.inf
        costs[p] = row
    return costs


def markdown(
    summary: dict[tuple[str, str], dict[str, Any]],
    machines: list[dict[str, Any]],
    f_tol: float,
    viol_tol: float,
) -> str:
    solvers = _solvers(summary)
    problems = _problems(summary)
    costs = solved_costs(summary, solvers, problems, f_tol, viol_tol)
    lines: list[str] = []
    add = lines.append

    if "ncvx" in solvers and "pygranso" in solvers:
        add("### ncvx / PyGRANSO (medians; < 1 means ncvx is faster or needs fewer)\n")
        add(
            "| problem | n | m | runs ok (ncvx · PyG) | ncvx wall s | PyGRANSO wall s | **time ratio** "
            "| iters ncvx / PyG | evals ncvx / PyG | f ncvx | f PyGRANSO |"
        )
        add("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        ratios = []
        for p in problems:
            a, b = summary.get((p, "ncvx")), summary.get((p, "pygranso"))
            if not a or not b:
                continue
            sized = a if a.get("ok") else b
            m = (sized.get("m_i") or 0) + (sized.get("m_e") or 0) if sized.get("ok") else "–"
            runs = f"{a['ok']}/{a['runs']} · {b['ok']}/{b['runs']}"
            if a.get("ok") and b.get("ok"):
                r = a["wall_s"] / b["wall_s"] if b["wall_s"] > 0 else math.inf
                ratios.append(r)
                ri = f"{a['iters']:.0f} / {b['iters']:.0f}"
                re_ = f"{a['fn_evals']:.0f} / {b['fn_evals']:.0f}"
                add(
                    f"| {p} | {a.get('n')} | {m} | {runs} | {a['wall_s']:.3g} | {b['wall_s']:.3g} "
                    f"| **{r:.2f}** | {ri} | {re_} | {a['f']:.10g} | {b['f']:.10g} |"
                )
            else:
                wa = _fmt(a.get("wall_s")) if a.get("ok") else "/".join(a["statuses"])
                wb = _fmt(b.get("wall_s")) if b.get("ok") else "/".join(b["statuses"])
                add(
                    f"| {p} | {sized.get('n', '–')} | {m} | {runs} | {wa} | {wb} | – | – | – | – | – |"
                )
        if ratios:
            gm = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
            add(f"\nGeometric mean of the time ratios over {len(ratios)} problems: **{gm:.2f}**.\n")

    add("### All runs: medians per problem and solver, with the time split\n")
    add(
        "fn+AD = the solver's evaluation routine (user function + autodiff); "
        "QP = QP solver calls; H = applying/updating the (L-)BFGS inverse Hessian; "
        "other = the rest of the solve. Peak RSS includes the imports "
        "(≈ 260–300 MB for torch alone).\n"
    )
    add(
        "| problem | solver | runs | code | f | l∞ viol | iters | evals | wall s (min–max) "
        "| fn+AD (user) | QP | H | other | peak RSS MB | solved |"
    )
    add("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for p in problems:
        for s in solvers:
            sm = summary.get((p, s))
            if sm is None:
                continue
            if not sm.get("ok"):
                add(
                    f"| {p} | {NAMES.get(s, s)} | 0/{sm['runs']} | {'/'.join(sm['statuses'])} |"
                    + " – |" * 11
                )
                continue
            code = sm["code"] + ("*" if sm.get("codes_vary") else "")
            if len(code) > 24:
                code = code[:21] + "…"
            solved = "yes" if math.isfinite(costs[p][s]) else "no"
            add(
                f"| {p} | {NAMES.get(s, s)} | {sm['ok']}/{sm['runs']} | {code} | {sm['f']:.10g} "
                f"| {sm['tv']:.1e} | {sm['iters']:.0f} | {sm['fn_evals']:.0f} "
                f"| {sm['wall_s']:.3g} ({sm['wall_min']:.3g}–{sm['wall_max']:.3g}) "
                f"| {sm['fn_ad_s']:.3g} ({sm['user_fn_s']:.3g}) | {sm['qp_s']:.3g} "
                f"| {sm['linalg_s']:.3g} | {sm['other_s']:.3g} | {sm['peak_rss_mb']:.0f} | {solved} |"
            )
    add(
        "\n`*` = the termination code differed between repeats (the most common is shown). "
        f"Solved = finished, l∞ violation ≤ {viol_tol:g} and f within {f_tol:g}·max(1, |f*|) "
        "of the lowest feasible f of any solver on that problem.\n"
    )

    add("### Machines\n")
    for m in machines:
        keys = ("date", "cpu", "cpus", "mem_total_gb", "torch", "loadavg_at_start", "ncvx_commit")
        desc = ", ".join(f"{k} {m.get(k)}" for k in keys if m.get(k) is not None)
        add(f"- `{m['file']}`: {desc}; command `{m.get('command')}`")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.report", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("files", nargs="+", help="JSON files written by benchmarks.run")
    parser.add_argument("--md", help="write the markdown tables here (default: stdout)")
    parser.add_argument("--profile", help="write the Dolan–Moré profile PNG here")
    parser.add_argument("--f-tol", type=float, default=1e-3)
    parser.add_argument("--viol-tol", type=float, default=1e-5)
    args = parser.parse_args(argv)

    records, machines = load(args.files)
    if not records:
        print("no records", file=sys.stderr)
        return 1
    summary = summarize(records)
    text = markdown(summary, machines, args.f_tol, args.viol_tol)
    if args.md:
        Path(args.md).parent.mkdir(parents=True, exist_ok=True)
        Path(args.md).write_text(text)
    else:
        print(text)

    if args.profile:
        solvers = _solvers(summary)
        # a problem only one solver ran (an ncvx-only case) compares nothing
        problems = [
            p for p in _problems(summary) if sum((p, s) in summary for s in solvers) >= 2
        ]
        # panel 1: the solvers that ran every problem; panel 2 (if any): the problems on which
        # the smooth-only peers ran, with every solver that ran all of those
        full = [s for s in solvers if all((p, s) in summary for p in problems)]
        panels = [
            (
                "all problems",
                solved_costs(summary, full, problems, args.f_tol, args.viol_tol),
                full,
            )
        ]
        peers = [s for s in solvers if s not in full]
        if peers:
            sub = [p for p in problems if any((p, s) in summary for s in peers)]
            subs = [s for s in solvers if all((p, s) in summary for p in sub)]
            panels.append(
                (
                    "smooth problems",
                    solved_costs(summary, subs, sub, args.f_tol, args.viol_tol),
                    subs,
                )
            )
        Path(args.profile).parent.mkdir(parents=True, exist_ok=True)
        profiles.plot(panels, args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
