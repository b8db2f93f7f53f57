#!/usr/bin/env bash
# Distributed drmm-train on the device tool's GPU machine: one process per GPU (torchrun --nproc_per_node = number of
# GPUs), NCCL, and the same run as one plain process for comparison. Everything lands in $OUT:
#   env.txt                      nvidia-smi, python and library versions, the GPU count
#   dist.log / dist.json         torchrun drmm-train on the digits, N processes (metrics.json: world size, global batch,
#                                replicas_identical); with N >= 2 also syncbn.log / syncbn.json (--sync-bn)
#   single.log / single.json     the same configuration in one process
# UNTESTED ON A GPU: written and dry-run on a CPU-only machine (issue 12). With one GPU, N = 1 and torchrun runs one plain
# process (WORLD_SIZE=1): NCCL and --sync-bn need a machine with 2 or more GPUs.
# Needs (git-ignored, sent with `carry`): .whl/ with fastai, nbdev and their pure-Python needs for the machine's Python,
# plus accelerate and its needs (huggingface_hub, safetensors, psutil) since drmm_nb.distributed imports fastai.distributed.
# Dry run on the CPU (2 gloo processes): GPU_DIST_DRY=1 bash bench/gpu_distributed.sh
set -uo pipefail
source "$(dirname "$0")/gpu_env.sh"
OUT=${OUT:-/tmp/gpu_dist_out}; mkdir -p "$OUT"
DRY=${GPU_DIST_DRY:-0}
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
T0=$(date +%s)
stamp() { echo "== $(( $(date +%s) - T0 )) s: $*" | tee -a "$OUT/env.txt"; }

if [ "$DRY" = 1 ]; then
    PY=${PY:-.venv/bin/python}; N=2; DEV=cpu; EPOCHS=1
else
    gpu_install || exit 1
    PY=python3; DEV=cuda; EPOCHS=${GPU_DIST_EPOCHS:-5}
    N=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU') ; [ "$N" -ge 1 ] || N=1
fi
gpu_env_report "$PY"
echo "processes (GPUs): $N, device: $DEV" >> "$OUT/env.txt"
stamp "environment read"

ENTRY=$(mktemp --suffix=.py); echo 'from drmm_nb.cli import main; main()' > "$ENTRY"  # drmm-train without an installed script
WORK=$(mktemp -d)
ARGS=(--dataset digits --n-labeled 50 --epochs "$EPOCHS" --seed 0 --device "$DEV")
run_dist() {  # NAME NPROC [extra drmm-train args]
    local name=$1 n=$2; shift 2
    timeout 240 "$PY" -m torch.distributed.run --standalone --nproc_per_node "$n" "$ENTRY" "${ARGS[@]}" "$@" \
        --out "$WORK/$name" > "$OUT/$name.log" 2>&1
    echo "rc=$?" >> "$OUT/$name.log"
    cp "$WORK/$name/metrics.json" "$OUT/$name.json" 2>/dev/null
    stamp "$name done ($n processes)"
}
run_dist dist "$N"
[ "$N" -ge 2 ] && [ "$DEV" = cuda ] && run_dist syncbn "$N" --sync-bn
timeout 240 "$PY" "$ENTRY" "${ARGS[@]}" --out "$WORK/single" > "$OUT/single.log" 2>&1; echo "rc=$?" >> "$OUT/single.log"
cp "$WORK/single/metrics.json" "$OUT/single.json" 2>/dev/null
stamp "single done"

# one line per run: processes, global and per-process batch, identical replicas, test error, seconds
"$PY" - "$OUT" <<'EOF' | tee -a "$OUT/env.txt"
import json, sys
from pathlib import Path
for name in ('single', 'dist', 'syncbn'):
    p = Path(sys.argv[1])/f'{name}.json'
    if not p.exists(): print(f'{name}: no metrics.json'); continue
    m = json.loads(p.read_text()); d = m.get('distributed', {})
    print(f"{name}: status {m['status']}, world {d.get('world_size')}, bs {d.get('global_bs')}/{d.get('per_rank_bs')} per process, "
          f"replicas identical {d.get('replicas_identical')}, test error {m.get('final', {}).get('test_error')}, "
          f"{m.get('wall_time_s', 0):.1f} s")
EOF
rm -rf "$WORK" "$ENTRY"
