#!/usr/bin/env bash
# Create benchmarks/.venv-pygranso: PyGRANSO 1.2.0 (PyPI) as a benchmark *peer* for ncvx.
#
# PyGRANSO is AGPL-3.0 and is never a dependency of ncvx; it lives only in this separate,
# git-ignored virtual environment, and benchmarks/run.py talks to it through a subprocess.
#
#   bash benchmarks/setup_pygranso_env.sh            # create (or refresh) the environment
#   PYTHON=python3.11 bash benchmarks/setup_pygranso_env.sh
#
# Pins and why:
#   torch==<the version of the main environment>  same kernels on both sides (a local wheel here)
#   numpy<2        PyGRANSO 1.2.0 imports Inf from numpy.core.numeric (removed in NumPy 2)
#   osqp<0.7       the OSQP series PyGRANSO 1.2.0 was written against (0.6 API)
#   gurobipy       imported unconditionally by pygranso/private/solveQP.py (OSQP is still the
#                  QP solver used; the pip-bundled size-limited licence is enough to import)
#   scipy          imported by PyGRANSO (sparse matrices for OSQP)
#   scikit-learn   only for the benchmark problems (iris for C3)
#   pygranso==1.2.0 installed with --no-deps (its wheel declares no dependencies anyway)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
VENV="$HERE/.venv-pygranso"
PYTHON="${PYTHON:-python}"
TORCH_VERSION="${TORCH_VERSION:-$("$PYTHON" -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null || echo 2.13.0)}"

echo "== creating $VENV with $("$PYTHON" --version) (torch==$TORCH_VERSION)"
"$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

# CPU torch first, pinned, so nothing later can pull a different (CUDA) build.
"${PIP[@]}" install "torch==$TORCH_VERSION"
"${PIP[@]}" install "numpy<2" "osqp<0.7" scipy gurobipy scikit-learn "torch==$TORCH_VERSION"
"${PIP[@]}" install --no-deps "pygranso==1.2.0"

echo "== installed:"
"$VENV/bin/python" - <<'PY'
from importlib import metadata
for name in ("pygranso", "torch", "numpy", "scipy", "osqp", "gurobipy", "scikit-learn"):
    try:
        print(f"  {name:13s} {metadata.version(name)}")
    except metadata.PackageNotFoundError:
        print(f"  {name:13s} MISSING")
PY

echo "== smoke test: example A1 through the benchmark harness's peer runner"
cd "$ROOT"
"$VENV/bin/python" -m benchmarks._worker --solver pygranso --problem A1 --smoke
