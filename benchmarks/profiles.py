"""Dolan–Moré performance profiles (Dolan & Moré, Math. Program. 91, 2002).

For problems ``p`` and solvers ``s`` with costs ``t[p][s]`` (``inf`` = not solved), the
performance ratio is ``r[p][s] = t[p][s] / min_s t[p][s]`` and the profile of ``s`` is
``ρ_s(τ) = |{p : r[p][s] ≤ τ}| / |P|``: ``ρ_s(1)`` is the share of problems on which ``s`` was
fastest (ties count for both), ``ρ_s(∞)`` the share it solved at all.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence


def ratios(costs: Mapping[str, Mapping[str, float]], solvers: Sequence[str]) -> dict[str, dict]:
    """``{problem: {solver: ratio}}``; ``inf`` where the solver failed or nobody solved it."""
    out: dict[str, dict[str, float]] = {}
    for p, row in costs.items():
        finite = [row.get(s, math.inf) for s in solvers if math.isfinite(row.get(s, math.inf))]
        best = min(finite) if finite else math.inf
        out[p] = {}
        for s in solvers:
            t = row.get(s, math.inf)
            if not math.isfinite(t) or not math.isfinite(best):
                out[p][s] = math.inf
            else:
                out[p][s] = t / best if best > 0 else (1.0 if t == best else math.inf)
    return out


def profile(
    costs: Mapping[str, Mapping[str, float]], solvers: Sequence[str]
) -> dict[str, list[tuple[float, float]]]:
    """Step points ``(τ, ρ_s(τ))`` per solver, τ at every distinct finite ratio."""
    r = ratios(costs, solvers)
    n = len(r)
    out: dict[str, list[tuple[float, float]]] = {}
    for s in solvers:
        vals = sorted(v[s] for v in r.values() if math.isfinite(v[s]))
        pts = [(1.0, sum(1 for v in vals if v <= 1.0) / n if n else 0.0)]
        for k, tau in enumerate(vals, start=1):
            if tau > 1.0:
                pts.append((tau, k / n))
        out[s] = pts
    return out


def plot(
    panels: Sequence[tuple[str, Mapping[str, Mapping[str, float]], Sequence[str]]],
    path: str,
) -> None:
    """Write a PNG with one profile panel per ``(title, costs, solvers)`` (log2 τ axis)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 4.4), squeeze=False)
    styles = {"ncvx": "C0", "pygranso": "C3", "slsqp": "C2", "ipopt": "C4"}
    for ax, (title, costs, solvers) in zip(axes[0], panels):
        prof = profile(costs, solvers)
        r = ratios(costs, solvers)
        finite = [v for row in r.values() for v in row.values() if math.isfinite(v)]
        tau_max = max([2.0, *finite]) * 1.5
        for s in solvers:
            pts = prof[s]
            xs = [p[0] for p in pts] + [tau_max]
            ys = [p[1] for p in pts] + [pts[-1][1]]
            ax.step(xs, ys, where="post", label=s, color=styles.get(s), linewidth=2)
        ax.set_xscale("log", base=2)
        ax.set_xlim(1.0, tau_max)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("τ (wall time within a factor τ of the fastest)")
        ax.set_ylabel("share of problems")
        ax.set_title(f"{title} ({len(costs)} problems)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
