"""What the rendering diagnostics (`RenderDiagnostics`) cost: fastai epochs with them off, every 10th batch, every batch.

    python bench/diagnostics.py            # ConvSmall on 4,000 Fashion-MNIST images (80 steps of 50+50), 1 thread
                                           # (MNIST from ../shared/data/mnist where Fashion-MNIST is not installed)
    python bench/diagnostics.py --quick    # a smoke test

Each setting trains one epoch of the same learner configuration (the authors' preset, full objective) from the same
seed; the settings are run interleaved, `--reps` times, and the median epoch time of each is compared with the
diagnostics-off time of the same run. Read the ratios, not the times: the machine may be busy.
"""
from __future__ import annotations
import argparse, json, statistics, sys, time, warnings
from pathlib import Path
import numpy as np
import torch
warnings.filterwarnings('ignore')
from fastai.basics import Adam
from drmm_nb.data import load_dataset, from_arrays, drmm_dataloaders
from drmm_nb.learner import drmm_learner


def epoch_time(arrays, every:int, preset:str)->float:
    torch.manual_seed(0)
    dls = drmm_dataloaders(arrays, n_labeled=100, bs=100, seed=0, device='cpu')
    learn = drmm_learner(dls, preset=preset, diagnostics=every, opt_func=Adam)
    with learn.no_bar(), learn.no_logging():
        t = time.perf_counter(); learn.fit(1, 1e-3); return time.perf_counter() - t


def images():
    "Fashion-MNIST where it is installed, else the MNIST files every checkout has beside it; and the data set's name."
    try: return load_dataset('fashion_mnist'), 'Fashion-MNIST'
    except FileNotFoundError: pass
    mnist = Path(__file__).resolve().parents[1].parent/'shared'/'data'/'mnist'
    return load_dataset('mnist', mnist), f'MNIST ({mnist}; Fashion-MNIST is not installed)'


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--n', type=int, default=4000, help='training images (one epoch: n/50 steps)')
    p.add_argument('--reps', type=int, default=3)
    p.add_argument('--preset', default='authors', choices=('paper', 'authors'))
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--quick', action='store_true')
    p.add_argument('--json', default=None, help='also write the numbers to this file')
    a = p.parse_args(argv)
    if a.quick: a.n, a.reps = 400, 1
    torch.set_num_threads(a.threads)
    f, what = images()
    arrays = from_arrays(f.x_train[:a.n], f.y_train[:a.n], f.x_test[:1000], f.y_test[:1000], f.classes)
    settings = (0, 10, 1)
    times = {k: [] for k in settings}
    for _ in range(a.reps):
        for k in settings: times[k].append(epoch_time(arrays, k, a.preset))
    med = {k: statistics.median(v) for k, v in times.items()}
    steps = a.n // 50
    res = dict(data=what, preset=a.preset, n_images=a.n, steps=steps, threads=a.threads, reps=a.reps, torch=torch.__version__,
               seconds={str(k): med[k] for k in settings}, ratio_vs_off={str(k): med[k] / med[0] for k in settings})
    print(f"ConvSmall, {a.preset} preset, one epoch of {steps} steps of {what}, {a.threads} thread(s), median of {a.reps}:")
    for k in settings:
        label = 'off' if k == 0 else f'every {k}'
        print(f"  diagnostics {label:>9}: {med[k]:7.2f} s   ratio to off {med[k] / med[0]:.3f}")
    if a.json: Path(a.json).write_text(json.dumps(res, indent=1))
    return res


if __name__ == '__main__': main()
