#!/usr/bin/env bash
# The `fashion_sweep` grid (experiments/fashion_sweep.py) on the GPU machine of the `device` tool, 8 runs side by side,
# plus the `#| gpu` notebook cells, all within GPU_SWEEP_SECONDS (default 540). What it measures lands in $OUT:
#   env.txt, gpu_tests.log, sweep.log, and sweep_results.tgz: results/fashion_sweep/<run>/metrics.json + table.md,
#   partial/ (worker logs, runs cut off). Unpack with `tar xzf sweep_results.tgz` and copy results/fashion_sweep/ here.
# Needs (git-ignored, sent with `carry`): .whl/ (fastai, nbdev and their pure-Python needs) and .devdata/fashion-mnist/.
# Dry run on the CPU: GPU_SWEEP_DRY=1 bash experiments/gpu_sweep.sh  (tiny data, 1 epoch, 2 jobs)
set -uo pipefail
source "$(dirname "$0")/../bench/gpu_env.sh"
OUT=${OUT:-/tmp/gpu_sweep_out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
TOTAL=${GPU_SWEEP_SECONDS:-540}; T0=$(date +%s)
RUNS=$(mktemp -d)
if [ "${GPU_SWEEP_DRY:-0}" = 1 ]; then
    PY=${PY:-.venv/bin/python}; DEV=cpu; JOBS=2; THREADS=1; TESTS=()
    TINY=$(mktemp -d); $PY -c "from drmm_nb.testing import write_tiny_datasets as w; w('$TINY', n_train=40, n_test=20)"
    DATA=$TINY/mnist; SET=(--set epochs=1 --set n_labeled=20 --set bs=20); BUDGET=20; HARD=120
else
    gpu_install || exit 1
    PY=python3; DEV=cuda; JOBS=8; THREADS=2; DATA=.devdata/fashion-mnist; SET=()
    HARD=$(( TOTAL - 25 )); BUDGET=$(( HARD - 100 )); TESTS=(nbs/05_learner.ipynb nbs/04_data.ipynb)
fi
gpu_env_report "$PY"
for nb in "${TESTS[@]}"; do  # the `#| gpu` cells (and the rest of their notebooks), beside the sweep
    ( timeout 200 /tmp/site/bin/nbdev-test --flags gpu --do-print "$nb" >> "$OUT/gpu_tests.log" 2>&1; echo "$nb rc=$?" >> "$OUT/gpu_tests.log" ) &
done
$PY experiments/fashion_sweep.py --run --device $DEV --jobs $JOBS --threads $THREADS --budget $BUDGET --hard $HARD \
    --data-dir "$DATA" --results "$OUT/results" --runs "$RUNS" "${SET[@]}" > "$OUT/sweep.log" 2>&1
echo "sweep rc=$? after $(( $(date +%s) - T0 )) s" >> "$OUT/sweep.log"
wait
mkdir -p "$OUT/partial"; cp "$RUNS"/worker*.log "$OUT/partial/" 2>/dev/null
for m in "$RUNS"/fashion_sweep/*/metrics.json; do  # runs cut off: their epochs so far
    [ -f "$m" ] && ! grep -q '"status": "finished"' "$m" && cp "$m" "$OUT/partial/$(basename "$(dirname "$m")").json"
done
# the device tool returns few files and no deep folders: one archive of the results and the cut-off runs
tar czf "$OUT/sweep_results.tgz" -C "$OUT" results partial && rm -rf "$OUT/results" "$OUT/partial"
echo "done after $(( $(date +%s) - T0 )) s" >> "$OUT/sweep.log"
