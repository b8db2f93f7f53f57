"""What a whole training epoch costs beyond its training steps: one epoch as `drmm-train` runs it, split into its parts.

    python bench/run.py                        # MNIST-100, the full objective (authors preset, paper's class layer, halves
                                               # apart), the configuration drmm-train picks by default (fast), 1 thread,
                                               # with the grids' own settings: diagnostics every 10th batch, evaluation
                                               # every epoch, checkpoints every 10 minutes, progress lines every 60 s
    python bench/run.py --no-fast              # the same in plain fp32
    python bench/run.py --dataset digits       # a quick run on the 8x8 digits (a smoke test)
    python bench/run.py --device cuda          # on a GPU

The epoch's wall time is split into: training steps (forward, objective, backward, optimizer), the rendering diagnostics,
checkpoints and metrics.json, progress lines, data (waiting for the next batch), evaluation on the test set, and the
rest (fastai's own events). The same process then times the DRMM step alone, as `bench/step.py` does, in the same
configuration, and prints the ratio of the epoch's wall time to steps x that step: 1.00 would be an epoch that costs
only its steps. `--json` writes everything (results/bench/run_<cpu>.json keeps the committed runs).
"""
from __future__ import annotations
import argparse, functools, json, os, sys, tempfile, time
from pathlib import Path
import torch

sys.path.insert(0, str(Path(__file__).parent))
from step import make_steps, median_times, name  # noqa: E402 (bench/step.py: the DRMM step alone)
from fastai.callback.core import Callback  # noqa: E402
import drmm_nb.run as run_module  # noqa: E402
from drmm_nb.options import RunConfig  # noqa: E402
from drmm_nb.machine import machine_facts  # noqa: E402
from drmm_nb.grids import MNIST_OPTS  # noqa: E402

PHASES = ('steps', 'diagnostics', 'checkpoints', 'progress', 'data', 'evaluation', 'other')


class Clock:
    "Seconds per phase; a wrapped method inside another wrapped method counts once, in the outer one's phase."
    def __init__(self):
        self.s, self.depth, self.in_batch_s, self.in_fit, self.epoch_depth = dict.fromkeys(PHASES, 0.), 0, 0., False, 0
        self.validating = False
    def wrap(self, obj, meth:str, phase:str):
        f = getattr(obj, meth)
        @functools.wraps(f)
        def timed(*a, **k):
            if self.depth or self.validating: return f(*a, **k)  # (inside evaluation: counted there)
            self.depth += 1; t0 = time.perf_counter()
            try: return f(*a, **k)
            finally:
                dt = time.perf_counter() - t0; self.depth -= 1; self.s[phase] += dt
                if getattr(self, 'batch_open', False): self.in_batch_s += dt
        object.__setattr__(obj, meth, timed)  # this instance only, in this process (fastai's Callback.__setattr__ would warn)


class ClockOpen(Callback):
    "Opens the clock's intervals (runs before every other callback)."
    order = -1000
    def __init__(self, clock): self.clock = clock
    def before_fit(self):
        c = self.clock
        c.in_fit = True  # fastai's validate() after the fit fires epoch events too: not counted
        for cb in self.learn.cbs:  # the callbacks `drmm-train` adds, each timed as its phase
            kind = type(cb).__name__
            if kind == 'RenderDiagnostics':
                for m in ('before_train', 'after_loss', 'before_backward', 'after_backward', 'after_batch', 'after_train'):
                    if hasattr(cb, m): c.wrap(cb, m, 'diagnostics')
            elif kind == 'RunLogger': c.wrap(cb, 'after_epoch', 'checkpoints'); c.wrap(cb, 'save', 'checkpoints')
            elif kind == 'MidEpochCheckpoint': c.wrap(cb, 'after_batch', 'checkpoints')
            elif kind == 'ProgressLines': c.wrap(cb, 'after_batch', 'progress')
        if callable(getattr(self.learn, 'logger', None)): c.wrap(self.learn, 'logger', 'progress')
    def before_epoch(self):  # (a validate() in or after the fit fires epoch events too: the epoch that trained counts)
        c = self.clock
        if c.in_fit and not c.epoch_depth: c.t_epoch, c.trained = time.perf_counter(), False
        c.epoch_depth += 1
    def before_train(self): self.clock.t_gap = time.perf_counter()
    def before_batch(self):
        c, now = self.clock, time.perf_counter()
        if self.training and c.in_fit:
            c.s['data'] += now - c.t_gap
            c.t_batch, c.batch_open, c.in_batch_s = now, True, 0.
    def before_validate(self):
        if self.clock.in_fit: self.clock.t_valid, self.clock.validating = time.perf_counter(), True


class ClockClose(Callback):
    "Closes them (runs after every other callback)."
    order = 1000
    def __init__(self, clock): self.clock = clock
    def after_batch(self):
        c = self.clock
        if not (self.training and c.in_fit): return
        now = time.perf_counter()
        c.s['steps'] += now - c.t_batch - c.in_batch_s
        c.batch_open, c.t_gap, c.trained = False, now, True
        c.n_steps = getattr(c, 'n_steps', 0) + 1
    def after_validate(self):
        if self.clock.in_fit and self.clock.validating: self.clock.s['evaluation'] += time.perf_counter() - self.clock.t_valid
        self.clock.validating = False
    def after_epoch(self):
        c = self.clock; c.epoch_depth -= 1
        if c.in_fit and not c.epoch_depth and c.trained: c.epoch_s = time.perf_counter() - c.t_epoch  # (an epoch that trained)
    def after_fit(self): self.clock.in_fit = False


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], epilog=__doc__.split('\n\n', 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--dataset', default='mnist', choices=('mnist', 'digits', 'fashion_mnist'))
    p.add_argument('--data-dir', default=None, help='MNIST: default ../shared/data/mnist from the repository root')
    p.add_argument('--device', default='cpu')
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--fast', action=argparse.BooleanOptionalAction, default=True, help="drmm-train's default; --no-fast: fp32")
    p.add_argument('--steps', type=int, default=30, help='timed DRMM steps alone (median)')
    p.add_argument('--json', default=None)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    if a.dataset == 'mnist' and a.data_dir is None:
        from drmm_nb.testing import shared_mnist_dir
        a.data_dir = str(shared_mnist_dir(Path(__file__).parent))
    clock = Clock()
    made = run_module.drmm_learner
    def drmm_learner(*args, **kw):  # drmm-train's learner, with the clock's two callbacks
        learn = made(*args, **kw); learn.add_cbs([ClockOpen(clock), ClockClose(clock)]); return learn
    run_module.drmm_learner = drmm_learner  # in this process only
    with tempfile.TemporaryDirectory() as out:
        opts = dict(dataset=a.dataset, n_labeled=100 if a.dataset != 'digits' else 50, epochs=1, seed=0, halves='apart',
                    fast=a.fast, out=out, device=a.device, data_dir=a.data_dir, **(MNIST_OPTS if a.dataset != 'digits' else {}))
        t0 = time.perf_counter()
        rec = run_module.train_config(RunConfig.from_flat(opts))
        whole = time.perf_counter() - t0
    fit, arch = rec['config']['fit'], rec['config']['model']['arch']
    s = clock.s
    s['other'] = clock.epoch_s - sum(v for k, v in s.items() if k != 'other')
    shape = {'conv_small': (1, 28, 28), 'conv_tiny': (1, 8, 8), 'conv_large': (3, 32, 32)}[arch]
    ns = argparse.Namespace(bs=fit['bs'], bf16=fit['bf16'], channels_last=fit['channels_last'], compile=False)
    device = torch.device(a.device)
    drmm, _ = make_steps(arch, shape, ns, device)
    step = median_times([drmm], a.steps, 5, device)[0]
    ideal = clock.n_steps * step
    m = machine_facts(); cpu = m['cpu']
    cfg = name(fit['bf16'], fit['channels_last'])
    print(f"CPU {cpu['model']} (vendor {cpu['vendor']}, family {cpu['family']}, model {cpu['model_id']}), {a.threads} thread(s), "
          f"device {a.device}, torch {torch.__version__}; {a.dataset}, {arch}, [{cfg}], one epoch of {clock.n_steps} steps")
    print(f"epoch wall time {clock.epoch_s:.1f} s (the whole run, data loading and final test included: {whole:.1f} s)")
    for k in PHASES:
        print(f"  {k:12s} {s[k]:8.1f} s  {100 * s[k] / clock.epoch_s:5.1f}%")
    print(f"DRMM step alone [{cfg}]: {1e3 * step:.1f} ms (median of {a.steps}); steps x step = {ideal:.1f} s; "
          f"in the epoch a step took {1e3 * s['steps'] / clock.n_steps:.1f} ms")
    print(f"epoch / (steps x step) = {clock.epoch_s / ideal:.3f}")
    res = dict(machine=m, dataset=a.dataset, arch=arch, config=cfg, threads=a.threads, device=a.device, n_steps=clock.n_steps,
               epoch_s=clock.epoch_s, whole_run_s=whole, phases_s=s, step_ms=1e3 * step, ratio=clock.epoch_s / ideal,
               settings=dict(diag_every=rec['config']['run']['diag_every'], checkpoint_every=rec['config']['run']['checkpoint_every'],
                             progress_every=rec['config']['run']['progress_every']),
               test_error=rec['final']['test_error'], loadavg_at_end=os.getloadavg()[0])
    if a.json: Path(a.json).write_text(json.dumps(res, indent=1))
    return res


if __name__ == '__main__':
    main()
