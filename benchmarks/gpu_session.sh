#!/usr/bin/env bash
# One prepared script for a lent GPU machine (the `device` tool): every GPU check of the project in
# one call, each step under its own time limit, results written to $OUT as they come.
#
#   run(command="bash benchmarks/gpu_session.sh", carry=[".whl", "benchmarks/.cache/digits_cnn.pt"],
#       timeout_s=600)
#
# The machine has torch but not the QP backends: `.whl` holds wheels for its Python (3.12) made with
# `pip download --no-deps --only-binary=:all: --python-version 3.12 ... piqp daqp quadprog osqp
# qpsolvers` (see /work/.library/device/README.md). Steps, in order of priority:
#   1. the `cuda` tests (tests/integration/test_cuda.py and the other `cuda`-marked tests);
#   2. the `scale` suite on cuda and on the machine's CPU (all cores) — issue #3, item 5;
#   3. the symmetry-breaking experiment at 1e6 samples — issue #5, item 5;
#   4. the deblurring GPU tier (256², 127x127 kernel) — issue #6, item 5;
#   5. the `constraints` suite on cuda (one run each, short per-run limit) — issue #3, item 5;
#   6. a profile of one constraint-heavy case on cuda and on the host CPU (PROF_CASE, default
#      cnn-unfolded: 14 s on the H200 in session 3, > 50 s on the H100 in session 7).
# A step whose limit is 0 (T_SYM=0, ...) is skipped. CONS_P and CONS_TIMEOUT choose the constraint
# cases and their per-run limit.
# DRY=1 runs the same plumbing on the CPU at toy sizes (to check the script before a lease).
# At most 8 files come back from $OUT: one log plus the JSON records and the deblurring arrays.
set -u
export OUT=${OUT:-/tmp/gpu_out}
mkdir -p "$OUT"
LOG="$OUT/log.txt"
if [ "${DRY:-0}" = 1 ]; then
  DEV=cpu SCALE_P=tv-1e4 SYM_ARGS="--sizes 2e4 --steps 200" DEBLUR_ARGS="--n 32 --spec 15"
  CONS_P=svm-200 PROF_CASE=${PROF_CASE:-svm-200}
else
  DEV=cuda SCALE_P=tv-1e4,tv-1e5,tv-1e6 SYM_ARGS="--sizes 1e6" DEBLUR_ARGS=""
  CONS_P=${CONS_P:-svm-200,cnn-unfolded,cnn-folded,A3-n100,svm-1000}
fi
export DEV SCALE_P PROF_CASE
export PYTHONUNBUFFERED=1
if [ -d .whl ] && [ "${DRY:-0}" != 1 ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
T_TESTS=${T_TESTS:-70} T_SCALE=${T_SCALE:-130} T_SYM=${T_SYM:-80} T_DEBLUR=${T_DEBLUR:-150}
T_CONS=${T_CONS:-150} CONS_TIMEOUT=${CONS_TIMEOUT:-50} T_PROF=${T_PROF:-120} PROF_CASE=${PROF_CASE:-cnn-unfolded}
PROF_MAXIT=${PROF_MAXIT:-10}
export PROF_MAXIT
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  nproc
  python3 -c "import torch, ncvx, piqp; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else '-')"
} 2>&1 | tee "$LOG"

echo "== 1 cuda tests" | tee -a "$LOG"
[ "$T_TESTS" -gt 0 ] && timeout "$T_TESTS" python3 -m pytest -q -p no:cacheprovider -m cuda tests 2>&1 \
  | tail -25 | tee -a "$LOG"

echo "== 2 scale suite ($DEV, then cpu with all cores)" | tee -a "$LOG"
[ "$T_SCALE" -gt 0 ] && timeout "$T_SCALE" bash -c '
python3 -m benchmarks.run --suite scale --device "$DEV" --repeats 1 --threads 0 --timeout 60 \
  --problems "$SCALE_P" --out "$OUT/scale_gpu.json" 2>&1 | tail -8
python3 -m benchmarks.run --suite scale --device cpu --repeats 1 --threads 0 --timeout 60 \
  --problems "${SCALE_P#tv-1e4,}" --out "$OUT/scale_cpu.json" 2>&1 | tail -8
' 2>&1 | tee -a "$LOG"

echo "== 3 symmetry breaking at 1e6 samples" | tee -a "$LOG"
# shellcheck disable=SC2086
[ "$T_SYM" -gt 0 ] && timeout "$T_SYM" python3 -m benchmarks.phase_retrieval.symmetry_breaking $SYM_ARGS \
  --device "$DEV" --name symmetry_breaking_gpu 2>&1 | tail -12 | tee -a "$LOG"
cp benchmarks/phase_retrieval/results/symmetry_breaking_gpu.json "$OUT/" 2>/dev/null

echo "== 4 deblurring GPU tier" | tee -a "$LOG"
# shellcheck disable=SC2086
[ "$T_DEBLUR" -gt 0 ] && timeout "$T_DEBLUR" python3 -m benchmarks.deblurring.gpu --out "$OUT/deblur" $DEBLUR_ARGS \
  --budget-s $((T_DEBLUR - 50)) 2>&1 | tail -12 | tee -a "$LOG"

echo "== 5 constraints suite on $DEV" | tee -a "$LOG"
[ "$T_CONS" -gt 0 ] && timeout "$T_CONS" python3 -m benchmarks.run --suite constraints --device "$DEV" --repeats 1 \
  --threads 0 --timeout "$CONS_TIMEOUT" --problems "$CONS_P" \
  --out "$OUT/constraints_gpu.json" 2>&1 | tail -12 | tee -a "$LOG"
echo "== 6 profile of $PROF_CASE ($DEV, then cpu)" | tee -a "$LOG"
[ "$T_PROF" -gt 0 ] && timeout "$T_PROF" bash -c '
python3 -m benchmarks.profile_case --case "$PROF_CASE" --device "$DEV" --maxit "$PROF_MAXIT" --top 30 --qp-log
python3 -m benchmarks.profile_case --case "$PROF_CASE" --device cpu --maxit "$PROF_MAXIT" --top 15 --qp-log
' > "$OUT/profile.txt" 2>&1
grep -E "iterations in|^QPs:|^iteration seconds" "$OUT/profile.txt" | tee -a "$LOG"
echo "== done" | tee -a "$LOG"
