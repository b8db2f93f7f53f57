"""Why does the DRMM not beat the supervised baseline on Fashion-MNIST at N_L=100? A sweep for the GPU machine.

Writes the grid `experiments/fashion_sweep.json` (`drmm-experiments run fashion_sweep` reads it), then, with `--run`,
runs it with `--jobs` `drmm-experiments` processes side by side (one run each, taken from a shared queue in the
order below), each starting no new run after `--budget` seconds and killed at `--hard` seconds; the results land in
`--results/fashion_sweep/<run>/metrics.json` and the table in `--results/fashion_sweep/table.md`.

Every run is ConvSmall, fastai one-cycle with Adam (lr 3e-3), batch 100, `SWEEP_EPOCHS` = 4 epochs unless named
`...-e16-...`. The questions, in priority order:
  * more epochs: do entropy minimisation and the DRMM catch up with the supervised network (16 epochs, seed 0)?
  * a ramp-up of the unsupervised weights (`--ramp 0.5`), a smaller entropy weight (alpha_KL = 0.1);
  * the rendering terms without entropy minimisation (`rc`: alpha_KL = alpha_NN = 0), with and without top-down BatchNorm.

    python experiments/fashion_sweep.py                        # (re)write the grid only
    python experiments/fashion_sweep.py --run --device cuda --jobs 8 --budget 420 --hard 520 --data-dir DIR --results R
"""
from __future__ import annotations
import argparse, json, os, subprocess, sys, time, threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from drmm_nb.grids import VARIANTS

SWEEP_EPOCHS = 4  # epochs of every run not named ...-e16-...

EXTRA = {  # variant name: options on top of `VARIANTS`' base variant
    'entropy_ramp': ('entropy', dict(ramp=0.5)),
    'rc_kl_nn_ramp': ('rc_kl_nn', dict(ramp=0.5)),
    'entropy_akl0.1': ('entropy', dict(alpha_kl=0.1)),
    'rc_kl_nn_akl0.1': ('rc_kl_nn', dict(alpha_kl=0.1)),
    'rc_tdbn': ('rc', dict(td_bn=True)),
    'rc_kl_nn_tdbn': ('rc_kl_nn', dict(td_bn=True)),
}

def run(variant:str, nl:int, seed:int, epochs:int=SWEEP_EPOCHS)->dict:
    base, extra = EXTRA.get(variant, (variant, {}))
    opts = dict(dataset='fashion_mnist', n_labeled=nl, seed=seed, epochs=epochs, **VARIANTS[base][0], **extra,
                halves='together', fast=False)  # run before the halves were normalised apart (issue 20), in fp32
    tag = '' if epochs == SWEEP_EPOCHS else f'-e{epochs}'
    return dict(name=f'fashion_mnist-nl{nl}{tag}-{variant}-s{seed}', variant=variant + tag.replace('-', '_'), opts=opts)

def grid()->list:
    long = [run(v, 100, 0, 16) for v in ('supervised', 'entropy', 'rc_kl_nn')]
    short = [run(v, 100, s) for s in (0, 1) for v in ('supervised', 'entropy', 'rc_kl_nn', 'entropy_ramp', 'rc_kl_nn_ramp',
             'rc', 'entropy_akl0.1', 'rc_kl_nn_akl0.1', 'rc_tdbn', 'rc_kl_nn_tdbn')]
    return long + short + [run(v, 1000, 0) for v in ('entropy_ramp', 'rc_kl_nn_ramp')]

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--run', action='store_true'); p.add_argument('--jobs', type=int, default=2)
    p.add_argument('--device', default='cpu'); p.add_argument('--data-dir', default=None)
    p.add_argument('--results', default='results'); p.add_argument('--runs', default='runs')
    p.add_argument('--threads', type=int, default=1); p.add_argument('--budget', type=float, default=None)
    p.add_argument('--hard', type=float, default=None, help='kill runs still going after this many seconds')
    p.add_argument('--set', action='append', default=[], help='KEY=VALUE passed to drmm-experiments run (dry runs)')
    a = p.parse_args(argv)
    g = grid()
    path = ROOT/'experiments'/'fashion_sweep.json'
    text = json.dumps(g, indent=1) + '\n'
    if not path.exists() or path.read_text() != text: path.write_text(text)
    print(f'{len(g)} runs in {path}')
    if not a.run: return
    t0, queue, lock, procs = time.time(), list(g), threading.Lock(), []
    cmd = [sys.executable, '-c', 'from drmm_nb.experiments import main; main()', 'run', 'fashion_sweep', '--quiet',
           '--device', a.device, '--threads', str(a.threads), '--results', a.results, '--runs', a.runs]
    cmd += (['--data-dir', a.data_dir] if a.data_dir else []) + [x for s in a.set for x in ('--set', s)]
    def worker(i):
        while True:
            with lock:
                if not queue or (a.budget and time.time() - t0 > a.budget): return
                r = queue.pop(0)
            left = None if a.hard is None else max(a.hard - (time.time() - t0), 1)
            with open(Path(a.runs)/f'worker{i}.log', 'a') as log:
                pr = subprocess.Popen(cmd + ['--only', r['name']], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
                try: pr.wait(timeout=left)
                except subprocess.TimeoutExpired: pr.kill(); pr.wait(); print(f"{r['name']}: cut off at {a.hard} s", flush=True); return
            print(f"{time.time() - t0:6.0f} s  {r['name']}: rc={pr.returncode}", flush=True)
    Path(a.runs).mkdir(parents=True, exist_ok=True)
    ts = [threading.Thread(target=worker, args=(i,)) for i in range(a.jobs)]
    for t in ts: t.start()
    for t in ts: t.join()
    print(f'not started: {[r["name"] for r in queue]}')
    subprocess.run([sys.executable, '-c', 'from drmm_nb.experiments import main; main()', 'table', 'fashion_sweep',
                    '--results', a.results], cwd=ROOT)

if __name__ == '__main__': main()
