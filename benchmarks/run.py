"""Run a benchmark suite: every (repeat, problem, solver) in its own process with a time limit.

    python -m benchmarks.run --suite examples --solver ncvx --solver pygranso \\
        --repeats 3 --timeout 600 --out benchmarks/results/examples.json

Solvers: ``ncvx`` (this interpreter), ``pygranso`` (``benchmarks/.venv-pygranso/bin/python``,
made by ``benchmarks/setup_pygranso_env.sh``), and for smooth problems only ``slsqp`` (scipy)
and ``ipopt`` (CasADi's IPOPT, ``pip install casadi``). Repeats are interleaved (all problems
and solvers once, then again), so machine noise hits every solver alike.

The output file is ``{"machine": {...}, "records": [...]}``; each record has the solver,
problem, size (``n``, ``m_i``, ``m_e``), device, dtype, ``status`` (ok / timeout / error),
``termination_code``, ``f`` and ``tv`` (objective and l∞ violation, re-measured at the final
point by the same code for every solver), ``iters``, ``fn_evals``, ``wall_s`` (the solve only,
no imports), ``peak_rss_mb`` (max RSS of the process, imports included; ``rss_before_solve_mb``
is the baseline), ``peak_gpu_mb`` on CUDA, and the time split ``fn_ad_s`` (``user_fn_s`` +
``autodiff_s``), ``qp_s``, ``linalg_s``, ``other_s`` (see ``benchmarks/_worker.py``).
Records are written after every run, so an interrupted suite keeps what it measured.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import problems
from .suites import Case, get_suite

ROOT = Path(__file__).resolve().parent.parent
PYGRANSO_PYTHON = ROOT / "benchmarks" / ".venv-pygranso" / "bin" / "python"
SOLVERS = ("ncvx", "pygranso", "slsqp", "ipopt")
SMOOTH_ONLY = ("slsqp", "ipopt")


def machine_info() -> dict[str, Any]:
    """Where and when the records were measured."""
    info: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg_at_start": list(os.getloadavg()),
    }
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as fh:
            info["mem_total_gb"] = round(int(fh.readline().split()[1]) / 2**20, 1)
    except OSError:
        pass
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        pass
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "ncvx"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        info["ncvx_commit"] = head + ("+dirty" if dirty else "")
    except OSError:
        pass
    return info


def _git(*argv: str) -> str:
    return subprocess.run(
        ["git", *argv], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def export_commit(rev: str) -> Path:
    """``git archive`` the ncvx package of ``rev`` into ``benchmarks/.cache/ncvx-<hash>``."""
    full = _git("rev-parse", "--short", rev)
    dest = ROOT / "benchmarks" / ".cache" / f"ncvx-{full}"
    if not (dest / "ncvx" / "__init__.py").exists():
        dest.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "archive", full, "ncvx"], cwd=ROOT, capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def python_for(solver: str, pygranso_python: Path) -> str:
    if solver == "pygranso":
        if not pygranso_python.exists():
            raise SystemExit(
                f"{pygranso_python} not found: run `bash benchmarks/setup_pygranso_env.sh` first"
            )
        return str(pygranso_python)
    return sys.executable


def run_one(
    case: Case,
    solver: str,
    repeat: int,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Run one (case, solver, repeat) in a subprocess; always returns a record."""
    spec = {
        "solver": solver,
        "case": case.name,
        "builder": case.builder,
        "params": case.params,
        "repeat": repeat,
        "device": args.device,
        "threads": args.threads,
        "maxit": args.maxit,
        # an exported tree (e.g. `git archive <commit> ncvx | tar -x -C DIR`) shadows the
        # working tree's ncvx, so a suite can measure a fixed commit while others edit
        "ncvx_src": str(Path(args.ncvx_src).resolve()) if args.ncvx_src else None,
    }
    base = {"solver": solver, "problem": case.name, "repeat": repeat, "device": args.device}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "record.json"
        cmd = [
            python_for(solver, Path(args.pygranso_python)),
            "-m",
            "benchmarks._worker",
            "--spec",
            json.dumps(spec),
            "--out",
            str(out),
        ]
        env = dict(os.environ)
        if args.threads:
            for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
                env[var] = str(args.threads)
        start = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            stdout, stderr = proc.communicate(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            cpu_s = _cpu_seconds(proc.pid)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return {
                **base,
                "status": "timeout",
                "wall_s": float(args.timeout),
                "process_s": time.perf_counter() - start,
                # CPU the run got before the limit (imports, build and warm-up included): on a
                # loaded machine, how much work a "timeout" stands for
                "cpu_s_at_timeout": cpu_s,
            }
        process_s = time.perf_counter() - start
        if out.exists():
            record = json.loads(out.read_text())
        else:
            record = {**base, "status": "error", "error": f"worker exited {proc.returncode}"}
        if record.get("status") != "ok":
            record["stderr_tail"] = (stderr or "")[-2000:]
            record["stdout_tail"] = (stdout or "")[-1000:]
        record["process_s"] = process_s
        return record


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a running process (Linux ``/proc``; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _load(path: Path) -> dict[str, Any]:
    if path.exists():
        return json.loads(path.read_text())
    return {"machine": {}, "records": []}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--suite", required=True, help="examples, constraints or scale")
    parser.add_argument(
        "--solver",
        action="append",
        choices=SOLVERS,
        help="repeat to compare several (default: ncvx)",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--force-repeats", action="store_true", help="ignore the per-case repeat caps"
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per run")
    parser.add_argument("--problems", help="comma-separated subset of the suite's case names")
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument(
        "--append",
        action="store_true",
        help="keep the file's other records (those of the same solver and problem are replaced)",
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch.set_num_threads in every run (default 1: on a loaded 2-core machine, "
        "parallel kernels wait for descheduled threads; 0 keeps torch's default)",
    )
    parser.add_argument("--maxit", type=int, default=None, help="override every case's maxit")
    parser.add_argument("--pygranso-python", default=str(PYGRANSO_PYTHON))
    parser.add_argument(
        "--ncvx-src",
        help="directory holding the ncvx package to measure (default: this repository)",
    )
    parser.add_argument(
        "--ncvx-commit",
        help="measure ncvx as of this git commit (exported to benchmarks/.cache/ncvx-<hash>), "
        "so a suite is reproducible while the working tree changes",
    )
    args = parser.parse_args(argv)

    solvers = args.solver or ["ncvx"]
    if args.ncvx_commit:
        args.ncvx_src = str(export_commit(args.ncvx_commit))
    cases = get_suite(args.suite)
    if args.problems:
        wanted = [p.strip() for p in args.problems.split(",") if p.strip()]
        unknown = sorted(set(wanted) - {c.name for c in cases})
        if unknown:
            parser.error(f"unknown problem(s) {unknown} in suite {args.suite}")
        cases = [c for c in cases if c.name in wanted]

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    data = _load(out) if args.append else {"machine": {}, "records": []}
    pairs = {(s, c.name) for s in solvers for c in cases}
    data["records"] = [
        r for r in data["records"] if (r.get("solver"), r.get("problem")) not in pairs
    ]
    if "history" not in data and data.get("command"):
        data["history"] = [{"command": data["command"], **data.get("machine", {})}]
    data["machine"] = machine_info()
    data["machine"]["ncvx_src"] = args.ncvx_src or str(ROOT)
    if args.ncvx_commit:
        data["machine"]["ncvx_commit"] = _git("rev-parse", "--short", args.ncvx_commit)
    data["suite"] = args.suite
    data["command"] = " ".join(["python -m benchmarks.run", *(argv or sys.argv[1:])])
    data.setdefault("history", []).append({"command": data["command"], **data["machine"]})
    data["notes"] = {**data.get("notes", {}), **{c.name: c.note for c in cases}}

    for case in cases:
        problems.prepare(case.builder, **case.params)

    for repeat in range(args.repeats):
        for case in cases:
            cap = case.max_repeats if not args.force_repeats else None
            if cap is not None and repeat >= cap:
                continue
            for solver in solvers:
                if solver in SMOOTH_ONLY and not case.smooth:
                    continue
                if case.ncvx_only and solver != "ncvx":
                    continue
                record = run_one(case, solver, repeat, args)
                data["records"].append(record)
                out.write_text(json.dumps(data, indent=1, default=str))
                _print_line(record)
    return 0


def _print_line(r: dict[str, Any]) -> None:
    if r.get("status") == "ok":
        print(
            f"{r['problem']:>13s} {r['solver']:>9s} #{r['repeat']}  code {r['termination_code']!s:>4}"
            f"  f {r['f']:.10g}  tv {r['tv']:.1e}  it {r['iters']:>5}  ev {r['fn_evals']:>6}"
            f"  {r['wall_s']:8.3f} s  (fn+AD {r['fn_ad_s']:.2f}, qp {r['qp_s']:.2f},"
            f" H {r['linalg_s']:.2f}, other {r['other_s']:.2f})  {r['peak_rss_mb']:.0f} MB",
            flush=True,
        )
    else:
        msg = r.get("error", "")
        print(
            f"{r['problem']:>13s} {r['solver']:>9s} #{r['repeat']}  {r['status'].upper()} {msg}",
            flush=True,
        )


if __name__ == "__main__":
    sys.exit(main())
