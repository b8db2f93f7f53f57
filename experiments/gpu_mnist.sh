#!/usr/bin/env bash
# Table 1 on MNIST (N_L = 100) on the GPU machine of the `device` tool: the grid `mnist_gpu` (Table 1's variants plus the
# supervised and entropy-only baselines, GPU_MNIST_EPOCHS one-cycle epochs each), GPU_MNIST_JOBS runs side by side, every
# run started only while time is left and cut off at the end (GPU_MNIST_SECONDS in all, default 540). Lands in $OUT:
#   env.txt, mnist.log (one line per run), mnist_results.tgz: mnist_gpu/<run>/metrics.json + table.md, and
#   partial/ (each run's log; metrics.json of runs cut off). Unpack with `tar xzf mnist_results.tgz`: mnist_gpu/ goes to results/.
# Needs (git-ignored, sent with `carry`): .whl/ (fastai, nbdev and their pure-Python needs) and .devdata/mnist/ (a copy of
# ../shared/data/mnist). Dry run on the CPU: GPU_MNIST_DRY=1 bash experiments/gpu_mnist.sh  (tiny data, 1 epoch, 2 jobs)
set -uo pipefail
source "$(dirname "$0")/../bench/gpu_env.sh"
OUT=${OUT:-/tmp/gpu_mnist_out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
TOTAL=${GPU_MNIST_SECONDS:-540}; T0=$(date +%s)
RUNS=$(mktemp -d); RES=$(mktemp -d)
if [ "${GPU_MNIST_DRY:-0}" = 1 ]; then
    PY=${PY:-.venv/bin/python}; DEV=cpu; JOBS=2; THREADS=1; HARD=200; ONLY='-s0$'
    TINY=$(mktemp -d); $PY -c "from drmm_nb.testing import write_tiny_datasets as w; w('$TINY', n_train=40, n_test=20)"
    DATA=$TINY/mnist; SETS="--set epochs=1 --set n_labeled=20 --set bs=20"
else
    gpu_install || exit 1
    PY=python3; DEV=cuda; JOBS=${GPU_MNIST_JOBS:-12}; THREADS=1; HARD=$(( TOTAL - 30 )); ONLY='.'
    DATA=.devdata/mnist; SETS=""
    [ -f "$DATA/train-images-idx3-ubyte.gz" ] || { echo "no MNIST in $DATA: cp ../shared/data/mnist/*.gz $DATA/ and carry it" | tee -a "$OUT/env.txt"; exit 1; }
fi
gpu_env_report "$PY"
export T0 HARD PY DEV THREADS DATA RES RUNS SETS
run_one() {  # one run of the grid, if at least a minute is left; killed when the time is up
    local left=$(( HARD - ($(date +%s) - T0) ))
    [ $left -lt 60 ] && { echo "$1: not started (time is up)"; return; }
    timeout $left $PY -c "from drmm_nb.experiments import main; main()" run mnist_gpu --only "$1" --device $DEV \
        --threads $THREADS --data-dir "$DATA" --results "$RES" --runs "$RUNS" $SETS --quiet > "$RUNS/$1.log" 2>&1
    echo "$(( $(date +%s) - T0 )) s  $1: rc=$?"
}
export -f run_one
$PY -c "from drmm_nb.experiments import grid_runs; print('\n'.join(r['name'] for r in grid_runs('mnist_gpu')))" \
    | grep -E -- "$ONLY" | xargs -P $JOBS -I{} bash -c 'run_one "$1"' _ {} >> "$OUT/mnist.log" 2>&1
[ -d "$RES/mnist_gpu" ] && $PY -c "from drmm_nb.experiments import main; main()" table mnist_gpu --results "$RES" >> "$OUT/mnist.log" 2>&1
mkdir -p "$OUT/partial"; cp "$RUNS"/*.log "$OUT/partial/" 2>/dev/null
for m in "$RUNS"/mnist_gpu/*/metrics.json; do  # runs cut off: their epochs so far
    [ -f "$m" ] && ! grep -q '"status": "finished"' "$m" && cp "$m" "$OUT/partial/$(basename "$(dirname "$m")").json"
done
mkdir -p "$RES/partial"; cp -r "$OUT/partial/." "$RES/partial/"; rm -rf "$OUT/partial"
tar czf "$OUT/mnist_results.tgz" -C "$RES" . && echo "done after $(( $(date +%s) - T0 )) s" >> "$OUT/mnist.log"
