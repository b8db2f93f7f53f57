"""Cost of one DRMM training step against the plain network's, batch assembly, and peak memory of a Fashion-MNIST run.

    python bench/step.py                      # CPU, 1 thread, ConvSmall 28x28 and ConvLarge 32x32, batch 100, in
                                              # fp32, bf16, channels-last and both: the fastest plain step, the DRMM step
                                              # in each, and the fastest DRMM step's ratio to the fastest plain step
    python bench/step.py --quick              # a few steps (a smoke test)
    python bench/step.py --profile            # also torch.profiler's table of one DRMM step per architecture
    python bench/step.py --device cuda --bf16 --channels-last --compile
    python bench/step.py --fast               # only the configuration drmm-train picks by default on this CPU
    python bench/step.py --configs fp32,channels_last   # some of the four (bf16 is ~10x slower without bf16 instructions)

Each step's FLOPs are counted by torch's FlopCounterMode; its GFLOP/s are printed beside the peak of this core for the
data type, measured in the same run as a large matrix product (fp32 or bf16).

The first line names the CPU (model, family/model number, bf16 instructions) and the kernel sets in use (ATen, oneDNN,
MKL): the times, and which configuration is fastest, depend on it. With all four configurations it also says whether the
rule of `drmm_nb.machine.fast_options` picked the one measured fastest.

DRMM step: bottom-up, top-down from the hard classes, the four losses with Table 6's weights, backward, optimizer step.
Plain step: the same model, bottom-up, cross-entropy on the labeled half, backward, optimizer step.
"""
from __future__ import annotations
import argparse, contextlib, json, os, resource, statistics, subprocess, sys, time
import numpy as np
import torch
import torch.nn.functional as F

from drmm_nb.layers import ARCHS
from drmm_nb.losses import drmm_objective
from drmm_nb.machine import machine_facts, fast_options

CASES = (('conv_small', (1, 28, 28)), ('conv_large', (3, 32, 32)))
CONFIGS = {'fp32': (False, False), 'bf16': (True, False), 'channels_last': (False, True), 'bf16+channels_last': (True, True)}


def name(bf, cl):
    "A configuration's name in the output: fp32, bf16, channels_last, bf16 + channels_last."
    return ' + '.join(k for k, on in (('bf16', bf), ('channels_last', cl)) if on) or 'fp32'


def sync(device):
    if device.type == 'cuda': torch.cuda.synchronize(device)


def make_steps(arch, shape, args, device):
    "A DRMM training step and a plain training step on the same model, optimizer and batch."
    torch.manual_seed(0)
    model = ARCHS[arch](n_in=shape[0]).to(device)
    x = torch.randn(args.bs, *shape, device=device)
    y = torch.cat([torch.randint(0, 10, (args.bs // 2,)), torch.full((args.bs // 2,), -1)]).to(device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last); x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    amp = (lambda: torch.autocast(device.type, torch.bfloat16)) if args.bf16 else contextlib.nullcontext
    alphas = ARCHS[arch].alphas

    def drmm_loss(x, y):
        logits, latents = model.bottom_up(x)
        return drmm_objective(model, logits.float(), latents, y, **alphas).total

    def plain_loss(x, y):
        return F.cross_entropy(model.bottom_up(x)[0].float(), y, ignore_index=-1)

    args.compiled = False
    if args.compile:  # compile now (forward and backward), so that a failure falls back to eager with the reason
        cd, cp = torch.compile(drmm_loss), torch.compile(plain_loss)
        try:
            for f in (cd, cp):
                with amp(): loss = f(x, y)
                loss.backward()
            opt.zero_grad(set_to_none=True)
            drmm_loss, plain_loss, args.compiled = cd, cp, True
        except Exception as e:
            why = (str(e).strip().splitlines() or [''])[0][:300]
            print(f"torch.compile failed for {arch} ({type(e).__name__}: {why}): timing the eager steps instead", flush=True)

    def step(loss_fn):
        def f():
            opt.zero_grad(set_to_none=True)
            with amp(): loss = loss_fn(x, y)
            loss.backward(); opt.step()
        return f
    model.train()
    return step(drmm_loss), step(plain_loss)


def step_flops(fn)->int:
    "Floating-point operations of one call of `fn` (a training step), as torch's FlopCounterMode counts them."
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as fc: fn()
    return fc.get_total_flops()


def peak_gflops(device, bf16:bool, n:int=2048, reps:int=5)->float:
    "What this core does on a large matrix product in the data type (median of `reps`): the reference for GFLOP/s."
    dt = torch.bfloat16 if bf16 else torch.float32
    a, b = torch.randn(n, n, device=device, dtype=dt), torch.randn(n, n, device=device, dtype=dt)
    t = median_times([lambda: a @ b], reps, 2, device)[0]
    return 2 * n ** 3 / t / 1e9


def median_times(fns, n, warmup, device):
    "Median seconds of each function in `fns`, timed interleaved (so that load on the machine hits both alike)."
    for f in fns:
        for _ in range(warmup): f()
    ts = [[] for _ in fns]
    for _ in range(n):
        for f, t in zip(fns, ts):
            sync(device); t0 = time.perf_counter(); f(); sync(device); t.append(time.perf_counter() - t0)
    return [statistics.median(t) for t in ts]


def fashion_arrays(quick):
    "Fashion-MNIST from disk if it is there (else random images of its shape)."
    from drmm_nb.data import load_dataset, from_arrays  # (names every revision compare_rev.py times has)
    for d in (os.environ.get('FASHION_MNIST_DIR'), '.devdata/fashion-mnist', None):
        try: return load_dataset('fashion_mnist', d), 'Fashion-MNIST'
        except FileNotFoundError: pass
    r = np.random.default_rng(0)
    n = 6000 if quick else 60000
    return from_arrays(r.integers(0, 256, (n, 28, 28), dtype=np.uint8), r.integers(0, 10, n),
                       r.integers(0, 256, (1000, 28, 28), dtype=np.uint8), r.integers(0, 10, 1000),
                       classes=[f'class{i}' for i in range(10)]), 'random images of Fashion-MNIST\'s shape'


def batch_time(device, n_batches):
    "Seconds to assemble one paired batch (100 images: 50 labeled + 50 unlabeled) of Fashion-MNIST, and the data's name."
    from drmm_nb.data import drmm_dataloaders
    arrays, what = fashion_arrays(n_batches < 100)
    dls = drmm_dataloaders(arrays, n_labeled=100, bs=100, seed=0, device=device)
    it = iter(dls.train); next(it)  # the epoch's index permutation is drawn here, once per epoch
    ts = []
    for _ in range(n_batches):
        sync(device); t0 = time.perf_counter(); next(it); sync(device); ts.append(time.perf_counter() - t0)
    per_epoch = time.perf_counter()
    next(iter(dls.train)); per_epoch = time.perf_counter() - per_epoch  # a new epoch: permutation + first batch
    return statistics.median(ts), per_epoch / len(dls.train), what


PEAK_SCRIPT = r'''
import json, sys
def rss(k='VmRSS'): return int([l for l in open('/proc/self/status') if l.startswith(k + ':')][0].split()[1]) / 1024
stages = dict(python=rss())
import torch
torch.set_num_threads(int(sys.argv[2])); stages['import torch'] = rss()
from fastai.callback.training import ShortEpochCallback
from drmm_nb.data import drmm_dataloaders
sys.path.insert(0, 'bench'); from step import fashion_arrays
from drmm_nb.learner import drmm_learner
stages['import fastai, drmm_nb'] = rss()
arrays, what = fashion_arrays(False)
dls = drmm_dataloaders(arrays, n_labeled=100, bs=100, seed=0, device=sys.argv[3]); stages['data loaded'] = rss()
learn = drmm_learner(dls)
learn.fit(1, 1e-3, cbs=ShortEpochCallback(float(sys.argv[1]))); stages['after training + test pass'] = rss()
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork + exec (the benchmark's own ~2 GiB)
print(json.dumps(dict(peak=rss('VmHWM'), n=len(arrays.x_train), what=what,
                      stages=stages)))
'''


def peak_rss(pct, threads, device):
    """Peak RSS (MiB) of a process that loads Fashion-MNIST and trains the DRMM for `pct` of an epoch, with its test pass;
    also the resident memory (MiB) after each stage."""
    here = os.path.dirname(os.path.abspath(__file__))
    r = subprocess.run([sys.executable, '-c', PEAK_SCRIPT, str(pct), str(threads), device], capture_output=True,
                       text=True, cwd=os.path.dirname(here), timeout=1800)
    if r.returncode: raise RuntimeError(r.stderr[-2000:])
    d = json.loads(r.stdout.strip().splitlines()[-1])
    return d['peak'], d['n'], d['what'], d['stages']


def profile(fn, label, device):
    from torch.profiler import profile as prof, ProfilerActivity
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == 'cuda' else [])
    with prof(activities=acts) as p:
        for _ in range(5): fn()
    key = 'self_cuda_time_total' if device.type == 'cuda' else 'self_cpu_time_total'
    print(f"\n== profile of 5 {label} steps, top ops by self time")
    print(p.key_averages().table(sort_by=key, row_limit=18))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--device', default='cpu')
    p.add_argument('--threads', type=int, default=1, help='torch CPU threads (recorded; 1 makes CPU timings stable)')
    p.add_argument('--bs', type=int, default=100)
    p.add_argument('--steps', type=int, default=30, help='timed steps of each kind (median reported)')
    p.add_argument('--warmup', type=int, default=5)
    p.add_argument('--bf16', action='store_true', help='bf16 autocast (only this configuration)')
    p.add_argument('--channels-last', action='store_true', help='channels-last memory format (only this configuration)')
    p.add_argument('--fp32', action='store_true', help='only the default configuration (fp32, contiguous)')
    p.add_argument('--fast', action='store_true', help='only the configuration drmm-train picks by default on this machine (fast)')
    p.add_argument('--configs', default=None, help=f"comma-separated, of {', '.join(CONFIGS)} (default: all four)")
    p.add_argument('--compile', action='store_true', help='torch.compile the two loss functions')
    p.add_argument('--profile', action='store_true', help="print torch.profiler's table of the DRMM step")
    p.add_argument('--quick', action='store_true', help='a few steps, a short memory run (smoke test)')
    p.add_argument('--no-memory', action='store_true', help='skip the peak-memory run')
    p.add_argument('--arch', action='append', choices=[a for a, _ in CASES], help='only these architectures')
    p.add_argument('--json', default=None, help='also write the numbers to this file')
    a = p.parse_args(argv)
    if a.quick: a.steps, a.warmup = 3, 1
    torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    fast = fast_options(device)
    if a.fast: a.bf16, a.channels_last = fast['mixed_precision'], fast['channels_last']
    single = a.bf16 or a.channels_last or a.fp32 or a.fast
    configs = [(a.bf16, a.channels_last)] if single else list(CONFIGS.values())
    if a.configs and not single:
        bad = [c for c in a.configs.split(',') if c not in CONFIGS]
        if bad: p.error(f"--configs: unknown {bad}; use some of {', '.join(CONFIGS)}")
        configs = [CONFIGS[c] for c in a.configs.split(',')]
    opts = ', '.join(name(*c) for c in configs)
    opts += ' (compiled)' if a.compile else ''
    m = machine_facts(); cpu = m['cpu']
    print(f"CPU {cpu['model']} (vendor {cpu['vendor']}, family {cpu['family']}, model {cpu['model_id']}; "
          f"{'with' if cpu['bf16'] else 'without'} bf16 instructions; flags {' '.join(cpu['flags'])}); kernels: ATen "
          f"{m['aten_capability']}, oneDNN {m['onednn_isa']}, MKL branch {m['mkl_branch']}; fast_options picks "
          f"[{name(fast['mixed_precision'], fast['channels_last'])}]", flush=True)
    print(f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}), "
          f"threads {torch.get_num_threads()}, batch {a.bs}, {opts}, torch {torch.__version__}, median of {a.steps} steps")
    out = dict(device=str(device), threads=torch.get_num_threads(), bs=a.bs, options=opts, steps=a.steps, cases={},
               loadavg_at_start=os.getloadavg()[0], cpus=os.cpu_count(), machine=m,
               fast_pick=name(fast['mixed_precision'], fast['channels_last']))
    step_s, peaks = None, {}
    for arch, shape in CASES:
        if a.arch and arch not in a.arch: continue
        res = {}
        for bf, cl in configs:
            c = argparse.Namespace(**{**vars(a), 'bf16': bf, 'channels_last': cl})
            drmm, plain = make_steps(arch, shape, c, device)
            td, tp = median_times([drmm, plain], a.steps, a.warmup, device)
            fd, fp = step_flops(drmm), step_flops(plain)
            if bf not in peaks: peaks[bf] = peak_gflops(device, bf, reps=2 if a.quick else 5)
            gd, gp = fd / td / 1e9, fp / tp / 1e9
            res[name(bf, cl)] = dict(drmm_ms=1e3 * td, plain_ms=1e3 * tp, ratio=td / tp, drmm_gflop=fd / 1e9, plain_gflop=fp / 1e9,
                                     drmm_gflops=gd, plain_gflops=gp, peak_gflops=peaks[bf], **({'compiled': c.compiled} if a.compile else {}))
            print(f"{arch:10s} {shape[1]}x{shape[2]} [{name(bf, cl)}{', compiled' if c.compiled else ''}]: DRMM step {1e3 * td:8.2f} ms   plain step {1e3 * tp:8.2f} ms   "
                  f"ratio {td / tp:.2f}", flush=True)
            print(f"{arch:10s} {shape[1]}x{shape[2]} [{name(bf, cl)}]: DRMM / plain step {fd / 1e9:.1f} / {fp / 1e9:.1f} GFLOP, "
                  f"{gd:.0f} / {gp:.0f} GFLOP/s = {100 * gd / peaks[bf]:.0f}% / {100 * gp / peaks[bf]:.0f}% of this core's "
                  f"{peaks[bf]:.0f} GFLOP/s on a {'bf16' if bf else 'fp32'} 2048x2048 matrix product", flush=True)
            if arch == 'conv_small' and (bf, cl) == configs[0]: step_s = td
            if a.profile: profile(drmm, f'{arch} DRMM [{name(bf, cl)}]', device); profile(plain, f'{arch} plain [{name(bf, cl)}]', device)
        bp = min(res, key=lambda k: res[k]['plain_ms']); bd = min(res, key=lambda k: res[k]['drmm_ms'])
        best = res[bd]['drmm_ms'] / res[bp]['plain_ms']
        if not single and 'fp32' in res:
            print(f"{arch:10s} fastest plain step {res[bp]['plain_ms']:.2f} ms [{bp}], fastest DRMM step {res[bd]['drmm_ms']:.2f} ms "
                  f"[{bd}]: best-plain ratio {best:.2f} (the default fp32 DRMM step: {res['fp32']['drmm_ms'] / res[bp]['plain_ms']:.2f})",
                  flush=True)
        out['cases'][arch] = dict(configs=res, fastest_plain=bp, fastest_drmm=bd, best_plain_ratio=best)
        if out['fast_pick'] in res and len(res) > 1:
            pick = res[out['fast_pick']]['drmm_ms']
            out['cases'][arch]['fast_pick_vs_fastest'] = pick / res[bd]['drmm_ms']
            verdict = 'the fastest measured' if out['fast_pick'] == bd else f"{pick / res[bd]['drmm_ms']:.2f}x the fastest [{bd}]"
            print(f"{arch:10s} fast_options' pick [{out['fast_pick']}]: DRMM step {pick:.2f} ms, {verdict}", flush=True)
    if step_s is not None:
        tb, te, what = batch_time(device, 20 if a.quick else 200)
        print(f"batch assembly (Fashion-MNIST, 50+50 images): {1e3 * tb:.3f} ms per batch = {100 * tb / step_s:.2f}% of "
              f"a conv_small DRMM step (with the per-epoch shuffle spread over the epoch: {100 * te / step_s:.2f}%); "
              f"data: {what}", flush=True)
        out['batch'] = dict(ms=1e3 * tb, pct_of_step=100 * tb / step_s, epoch_start_pct=100 * te / step_s, data=what)
    if not a.no_memory:
        pct = 0.01 if a.quick else 0.05
        mib, n, what, stages = peak_rss(pct, a.threads, a.device)
        print(f"peak RSS of a short Fashion-MNIST DRMM run ({what}, {n} training images, {pct:.0%} of an epoch + "
              f"the test pass, {a.device}): {mib:.0f} MiB; resident after " +
              ', '.join(f"{k}: {v:.0f}" for k, v in stages.items()) + " MiB", flush=True)
        out['peak_rss_mib'], out['rss_stages_mib'] = mib, stages
    if a.json:
        with open(a.json, 'w') as f: json.dump(out, f, indent=1)
    return out


if __name__ == '__main__':
    main()
