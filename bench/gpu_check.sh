#!/usr/bin/env bash
# One script for the GPU machine of the `device` tool (at most GPU_CHECK_SECONDS, default 540 s); everything it measures lands in $OUT:
#   env.txt         nvidia-smi, python and library versions
#   gpu_tests.log   the `#| gpu` cells of every notebook that has some (nbdev-test --flags gpu)
#   bench.log/json  bench/step.py on CUDA: fp32, bf16 autocast, + channels_last, + torch.compile
#   fashion.log     as much of the Fashion-MNIST N_L=100 grid as fits in ~4 minutes (finished runs skipped)
#   fashion_results.tgz   its results/fashion_mnist/<run>/metrics.json files and table
# Needs (git-ignored, sent with `carry`): .whl/ (fastai, nbdev and their pure-Python needs for Python 3.12) and
# .devdata/fashion-mnist/ (the 4 IDX files). GPU_BENCH_CONFIGS picks benchmark configurations (comma-separated option sets;
# an empty one is fp32). Dry run on the CPU with tiny settings: GPU_CHECK_DRY=1 bash bench/gpu_check.sh
set -uo pipefail
source "$(dirname "$0")/gpu_env.sh"
OUT=${OUT:-/tmp/gpu_check_out}; mkdir -p "$OUT"
DRY=${GPU_CHECK_DRY:-0}
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
T0=$(date +%s)
TOTAL=${GPU_CHECK_SECONDS:-540}  # the whole script ends within this many seconds (run's timeout_s must be larger)
stamp() { echo "== $(( $(date +%s) - T0 )) s: $*" | tee -a "$OUT/env.txt"; }
left() { echo $(( TOTAL - ($(date +%s) - T0) )); }   # seconds left
cap() { local l=$(( $(left) - $2 )); [ $l -lt $1 ] && echo $(( l > 5 ? l : 5 )) || echo $1; }  # min(cap, left - reserve)

if [ "$DRY" = 1 ]; then
    PY=${PY:-.venv/bin/python}; NBDEV_TEST=.venv/bin/nbdev-test; DEV=cpu; FLAGS=()  # no CUDA here: default cells
    BENCH=(--quick --bs 10 --no-memory); GRID_BUDGET=20; GRID_TIMEOUT=240
    TINY=$(mktemp -d)
    $PY -c "from drmm_nb.testing import write_tiny_datasets as w; w('$TINY', n_train=40, n_test=20)"
    GRID=(--data-dir "$TINY/mnist" --set n_labeled=20 --set bs=20 --set epochs=1 --only 'fashion_mnist-nl100-*-s0')
else
    gpu_install || exit 1
    PY=python3; NBDEV_TEST=/tmp/site/bin/nbdev-test; DEV=cuda; FLAGS=(--flags gpu)
    BENCH=(--steps 30 --warmup 5)
    GRID=(--data-dir .devdata/fashion-mnist --only 'fashion_mnist-nl100-*')
fi

gpu_env_report "$PY"
stamp "environment read"

# 1. the GPU-flagged notebook cells
NBS=$(grep -l '#| gpu' nbs/*.ipynb)
for nb in $NBS; do
    echo "== nbdev-test ${FLAGS[*]} $nb" >> "$OUT/gpu_tests.log"
    timeout $(cap 120 330) $NBDEV_TEST "${FLAGS[@]}" --do-print "$nb" >> "$OUT/gpu_tests.log" 2>&1; echo "rc=$?" >> "$OUT/gpu_tests.log"
done
stamp "gpu tests done ($NBS)"

# 2. the benchmark: fp32, bf16, bf16 + channels_last, bf16 + channels_last + torch.compile (compile: not in the dry run)
i=0
IFS=',' read -r -a CONFIGS <<< "${GPU_BENCH_CONFIGS:-,--bf16,--bf16 --channels-last,--bf16 --channels-last --compile}"  # comma-separated
for opts in "${CONFIGS[@]}"; do
    [ "$DRY" = 1 ] && [[ "$opts" == *compile* ]] && continue
    i=$((i + 1)); mem=(); [ $i -gt 1 ] && mem=(--no-memory)
    t=90; [[ "$opts" == *compile* ]] && t=150
    timeout $(cap $t 150) $PY bench/step.py --device $DEV "${BENCH[@]}" "${mem[@]}" $opts --json "$OUT/bench$i.json" >> "$OUT/bench.log" 2>&1 \
        || echo "bench $opts: rc=$?" >> "$OUT/bench.log"
done
$PY -c "import json, glob; print(json.dumps([json.load(open(f)) for f in sorted(glob.glob('$OUT/bench[0-9].json'))], indent=1))" \
    > "$OUT/bench.json" && rm -f "$OUT"/bench[0-9].json
stamp "benchmark done"

# 3. the Fashion-MNIST N_L=100 grid, as far as ~4 minutes go (a run still going at the end is cut off, not recorded)
RES=$(mktemp -d)
[ "$DRY" = 1 ] || { GRID_TIMEOUT=$(( $(left) - 15 )); GRID_BUDGET=$(( GRID_TIMEOUT - 60 )); }
timeout $GRID_TIMEOUT $PY -c "from drmm_nb.experiments import main; main()" run fashion_mnist "${GRID[@]}" --device $DEV \
    --threads 0 --results "$RES" --runs /tmp/gpu_runs --time-budget $GRID_BUDGET --quiet >> "$OUT/fashion.log" 2>&1
echo "rc=$?" >> "$OUT/fashion.log"
[ -d "$RES/fashion_mnist" ] && $PY -c "from drmm_nb.experiments import main; main()" table fashion_mnist --results "$RES" >> "$OUT/fashion.log" 2>&1
tar czf "$OUT/fashion_results.tgz" -C "$RES" . 2>> "$OUT/fashion.log"
stamp "fashion grid done"
