"""What a DRMM training step costs at the image sizes of photos: the guide of 04b_folders (issue 35).

    python bench/sizes.py --json results/bench/sizes_<cpu>.json     # CPU, 1 thread, the fast configuration, batch 100

For each row (image side, channels 3, architecture) one child process builds the model and a batch of 50 labeled and 50
unlabeled random images, and times DRMM training steps (bottom-up, top-down, the four losses with Table 6's weights,
backward, Adam) in the configuration drmm-train picks by default on this machine (`fast_options`). It prints the median
step, the seconds of an epoch over 1,000 training images (20 paired batches), the child's peak memory (max RSS), the
step's GFLOP (torch's FlopCounterMode), and an estimate for one H100: the measured H100 step of ConvSmall (5 layers)
at 28 px (`results/bench/h100.json`: launch-bound, 6.2 ms) scaled by the number of layers, or the FLOPs at 30% of the
H100's dense bf16 peak, whichever is larger: a lower bound (memory traffic is not counted; no GPU was measured at these
sizes).
"""
from __future__ import annotations
import argparse, json, os, resource, statistics, subprocess, sys, time

ROWS = [(32, 'conv_large'), (32, 'conv_small'), (64, 'conv_small'), (96, 'conv_small'), (128, 'conv_small'), (224, 'conv_small')]
H100_STEP_MS, H100_BF16_TFLOPS, H100_USE = 6.2, 989., 0.30

def child(side:int, arch:str, steps:int, warmup:int)->dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    from drmm_nb.layers import ARCHS
    from drmm_nb.losses import drmm_objective
    from drmm_nb.machine import fast_options
    torch.set_num_threads(1); torch.manual_seed(0)
    f = fast_options('cpu')
    model = ARCHS[arch](n_in=3)
    x = torch.randn(100, 3, side, side)
    y = torch.cat([torch.randint(0, 10, (50,)), torch.full((50,), -1)])
    if f['channels_last']: model = model.to(memory_format=torch.channels_last); x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast('cpu', torch.bfloat16, enabled=bool(f['mixed_precision'])):
            logits, lat = model.bottom_up(x)
            loss = drmm_objective(model, logits.float(), lat, y, **ARCHS[arch].alphas).total
        loss.backward(); opt.step()
    with FlopCounterMode(display=False) as fc: step()
    times = []
    for i in range(warmup + steps):
        t = time.perf_counter(); step(); times.append(time.perf_counter() - t)
    ms = 1000 * statistics.median(times[warmup:])
    return dict(side=side, arch=arch, layers=model.n_layers, ms=ms, epoch_s_per_1000=20 * ms / 1000, gflop=fc.get_total_flops() / 1e9,
                peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, config=f)

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--steps', type=int, default=5); p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--json', default=None); p.add_argument('--child', nargs=2, default=None, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child: print(json.dumps(child(int(a.child[0]), a.child[1], a.steps, a.warmup))); return
    from drmm_nb.machine import machine_facts
    m = machine_facts()
    c = m['cpu']
    print(f"CPU: {c['model']} (family {c['family']}, model {c['model_id']}, bf16 instructions: {c['bf16']}), 1 thread, "
          f"batch 50 + 50", flush=True)
    print('| image | architecture | ms / step | s / epoch of 1,000 images | peak memory MB | GFLOP / step | H100 ms / step (estimate) |')
    print('|---|---|---|---|---|---|---|')
    rows = []
    for side, arch in ROWS:
        out = subprocess.run([sys.executable, __file__, '--child', str(side), arch, '--steps', str(a.steps), '--warmup', str(a.warmup)],
                             capture_output=True, text=True, env={**os.environ, 'OMP_NUM_THREADS': '1'})
        if out.returncode: print(out.stderr[-2000:], file=sys.stderr); sys.exit(out.returncode)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        r['h100_ms_estimate'] = max(H100_STEP_MS * r['layers'] / 5, r['gflop'] / (H100_BF16_TFLOPS * H100_USE))
        rows.append(r)
        print(f"| {side}x{side} colour | {arch} | {r['ms']:.0f} | {r['epoch_s_per_1000']:.1f} | {r['peak_mb']:.0f} | "
              f"{r['gflop']:.0f} | {r['h100_ms_estimate']:.1f} |", flush=True)
    if a.json:
        with open(a.json, 'w') as fh: json.dump(dict(machine=m, rows=rows), fh, indent=1)

if __name__ == '__main__': main()
