"""Table 5 and Figure 4 (Sec. 5.4): DRMM vs. the plain network on the rendered set, and the linear decoding of nuisance variables.

Trains four runs with `drmm_nb.cli.train` (the `drmm-train` command line), one at a time:
DRMM semi-supervised and the same architecture supervised-only (`--supervised-only`), each at two N_L,
into `runs/synthetic/<run>/` (git-ignored), copies each `metrics.json` to `results/synthetic/<run>/metrics.json`,
then decodes slant, tilt, x, y and depth from every layer of every run (10 principal components, 10 equal-frequency
bins, logistic regression) and writes `results/synthetic/decoding.json`.

The decoder is fitted on the first half of the rendered test images and scored on the second half: no image the
networks were trained on is used, and fitted and scored images are disjoint.

    python experiments/synthetic_decoding.py --device cpu  # the CPU scale (committed results): 27 min wall, ~22 CPU-min, 1 thread
    python experiments/synthetic_decoding.py --paper    # the paper's scale, for a GPU machine (not run here)
    python experiments/synthetic_decoding.py --grid synthetic_apart --data-dir DIR  # every run of a grid (its seeds) after
        # `drmm-experiments run synthetic_apart --data-dir DIR`: results/synthetic_apart/decoding.json

Finished runs are skipped, unfinished ones resumed (`--resume`), so the script can be stopped and restarted.
"""
from __future__ import annotations
import argparse, json, shutil, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The CPU scale: 10K train / 2K test rendered images (a fifth of the paper's), ConvSmall (its global mean-pool takes 32x32),
# N_L in {1K, 10K} as the analogues of the paper's {4K, 50K} (a fifth of the training set, and all of it), a few epochs.
CPU = dict(dataset='synthetic_small', arch='conv_small', n_labeled=(1000, 10000), epochs=5, schedule='one_cycle',
           extra=[], max_dim=16384)
# The paper's scale (Sec. 5.4, Table 5): 50K + 10K images, the 9-layer ConvLarge of the CIFAR-10 experiments,
# N_L in {4K, 50K}, 500 epochs with the paper's schedule (SGD, lr 0.2 decaying exponentially to 1e-4).
PAPER = dict(dataset='synthetic', arch='conv_large', n_labeled=(4000, 50000), epochs=500, schedule='paper',
             extra=[], max_dim=16384)

def run_name(kind:str, n_labeled:int)->str: return f"{kind}_nl{n_labeled}"

def train_argv(cfg:dict, kind:str, n_labeled:int, out:Path, device:str)->list:
    "The `drmm-train` arguments of one run."
    argv = ['--dataset', cfg['dataset'], '--arch', cfg['arch'], '--n-labeled', str(n_labeled), '--epochs', str(cfg['epochs']),
            '--schedule', cfg['schedule'], '--seed', '0', '--device', device, '--out', str(out), *cfg['extra']]
    return argv + (['--supervised-only'] if kind == 'plain' else [])

def finished(path:Path)->bool:
    return path.exists() and json.loads(path.read_text()).get('status') == 'finished'

def train_all(cfg:dict, runs_dir:Path, results_dir:Path, device:str):
    "Train the four runs one after the other (skip finished ones, resume unfinished ones); copy their metrics."
    from drmm_nb.cli import train
    for n_l in cfg['n_labeled']:
        for kind in ('drmm', 'plain'):
            name = run_name(kind, n_l); out = runs_dir/name
            if not (finished(out/'metrics.json') and (out/'model.pkl').exists()):
                argv = train_argv(cfg, kind, n_l, out, device)
                if (out/'checkpoint.pt').exists(): argv.append('--resume')
                print(f"== drmm-train {' '.join(argv)}", flush=True)
                train(argv)
            (results_dir/name).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(out/'metrics.json', results_dir/name/'metrics.json')

def decode_runs(runs:dict, dataset:str, cache_dir:Path, out_path:Path, max_dim:int, config:dict, n_components:int=10, n_bins:int=10):
    "Decode every nuisance variable from every layer of each finished run {name: (run folder, kind, N_L, seed)}; write `out_path`."
    import numpy as np
    from fastai.learner import load_learner
    from drmm_nb.synthetic import SYNTHETIC_SIZES, make_synthetic, NUISANCE_NAMES
    from drmm_nb.decoding import decoding_table
    from drmm_nb.nuisance import drmm_layer_outputs
    syn = make_synthetic(*SYNTHETIC_SIZES[dataset], cache_dir=cache_dir)  # what training read
    n = len(syn.x_test); fit, score = slice(0, n//2), slice(n//2, n)
    nu = {k: np.asarray(syn.nuisance_test[k]) for k in NUISANCE_NAMES}
    out = dict(config=config, n_components=n_components, n_bins=n_bins, split=dict(fit=[0, n//2], score=[n//2, n], of='test images'), runs={})
    for name, (run_dir, kind, n_l, seed) in runs.items():
        t0 = time.time()
        if not (finished(run_dir/'metrics.json') and (run_dir/'model.pkl').exists()):
            print(f"== {name} has not finished (or has no model.pkl): not decoded", flush=True); continue
        learn = load_learner(run_dir/'model.pkl', cpu=True)
        acts = drmm_layer_outputs(learn.model, syn.x_test, tfm=learn.dls.valid.normalise, max_dim=max_dim)
        tab = decoding_table({l: (a[fit], a[score]) for l, a in acts.items()},
                             {k: v[fit] for k, v in nu.items()}, {k: v[score] for k, v in nu.items()}, n_components, n_bins)
        m = json.loads((run_dir/'metrics.json').read_text())
        out['runs'][name] = dict(kind=kind, n_labeled=n_l, seed=seed, test_error=m['final']['test_error'],
                                 layers=tab.layers, dims={l: int(a.shape[1]) for l, a in acts.items()},
                                 nuisances=tab.nuisances, error=tab.error.round(4).tolist(), chance=tab.chance.round(4).tolist())
        print(f"== decoded {name} in {time.time() - t0:.0f} s\n{tab}", flush=True)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(out, indent=1))

def decode_all(cfg:dict, runs_dir:Path, results_dir:Path, n_components:int=10, n_bins:int=10):
    "Decode the four runs of `train_all`; write `results_dir/decoding.json`."
    from drmm_nb.datasets import default_data_dir
    runs = {run_name(kind, n_l): (runs_dir/run_name(kind, n_l), kind, n_l, 0) for n_l in cfg['n_labeled'] for kind in ('drmm', 'plain')}
    decode_runs(runs, cfg['dataset'], default_data_dir()/'synthetic', results_dir/'decoding.json', cfg['max_dim'],
                {k: v for k, v in cfg.items() if k != 'extra'}, n_components, n_bins)

def decode_grid(grid:str, runs_dir:Path, results_dir:Path, data_dir:Path|None, max_dim:int=16384):
    "Decode every finished run of a `drmm-experiments` grid (e.g. synthetic_apart) from runs_dir/GRID/<run>/model.pkl."
    from drmm_nb.grids import grid_runs
    from drmm_nb.datasets import default_data_dir
    rs = grid_runs(grid)
    datasets = {r['opts']['dataset'] for r in rs}
    if len(datasets) != 1 or not datasets <= {'synthetic', 'synthetic_small'}:
        raise SystemExit(f"--grid {grid}: its runs must all train on one rendered set (synthetic or synthetic_small), not {sorted(datasets)}.")
    kind = lambda r: 'plain' if r['variant'] == 'supervised' else 'drmm'
    runs = {r['name']: (runs_dir/grid/r['name'], kind(r), r['opts']['n_labeled'], r['opts'].get('seed', 0)) for r in rs}
    decode_runs(runs, datasets.pop(), Path(data_dir or default_data_dir())/'synthetic', results_dir/grid/'decoding.json', max_dim,
                dict(grid=grid))

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--paper', action='store_true', help="the paper's scale (ConvLarge, 50K + 10K, 500 epochs): for a GPU machine")
    p.add_argument('--epochs', type=int, default=None, help='override the number of epochs')
    p.add_argument('--device', default='auto', help="'auto', 'cpu', 'cuda', ...")
    p.add_argument('--threads', type=int, default=1, help='torch CPU threads')
    p.add_argument('--runs', default=None, help='run directory (default runs/synthetic, or runs/synthetic_paper with --paper)')
    p.add_argument('--results', default=None, help='results directory (default results/synthetic, or results/synthetic_paper)')
    p.add_argument('--skip-train', action='store_true', help='only decode finished runs')
    p.add_argument('--grid', default=None, help="decode the finished runs of this drmm-experiments grid (e.g. synthetic_apart) from "
                   "RUNS/GRID/<run>/model.pkl (RUNS: --runs, default runs) into RESULTS/GRID/decoding.json (RESULTS: --results, default results)")
    p.add_argument('--data-dir', default=None, help="with --grid: the grid's --data-dir (the rendered set's cache is DATA_DIR/synthetic)")
    a = p.parse_args(argv)
    import torch; torch.set_num_threads(a.threads)
    if a.grid:
        t0 = time.time()
        decode_grid(a.grid, Path(a.runs or ROOT/'runs'), Path(a.results or ROOT/'results'), a.data_dir and Path(a.data_dir))
        print(f"== done in {time.time() - t0:.0f} s", flush=True); return
    cfg = dict(PAPER if a.paper else CPU)
    if a.epochs: cfg['epochs'] = a.epochs
    sub = 'synthetic_paper' if a.paper else 'synthetic'
    runs_dir, results_dir = Path(a.runs or ROOT/'runs'/sub), Path(a.results or ROOT/'results'/sub)
    results_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if not a.skip_train: train_all(cfg, runs_dir, results_dir, a.device)
    decode_all(cfg, runs_dir, results_dir)
    print(f"== done in {time.time() - t0:.0f} s", flush=True)

if __name__ == '__main__': main(sys.argv[1:])
