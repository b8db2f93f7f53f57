# Shared by bench/gpu_check.sh and experiments/gpu_sweep.sh (source it): the device machine's Python setup and its report.
# gpu_install: fastai, nbdev and their pure-Python needs from the carried .whl/ into /tmp/site (the machine has torch).
gpu_install() {
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || { echo "wheel install failed" | tee -a "$OUT/env.txt"; return 1; }
    export PYTHONPATH=/tmp/site:$PWD PATH=/tmp/site/bin:$PATH
}
# gpu_env_report PY: nvidia-smi, Python, torch (and the GPU's name) and fastai versions, appended to $OUT/env.txt.
gpu_env_report() {
    { nvidia-smi 2>&1 | head -15; "$1" -c "import sys, torch, fastai; print(sys.version); print('torch', torch.__version__,
  'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else ''); print('fastai', fastai.__version__)"
    } >> "$OUT/env.txt" 2>&1
}
