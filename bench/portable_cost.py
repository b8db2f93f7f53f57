"""What the portable mode costs: the fp32 training step natively and in the portable mode, on this CPU, in one run.

    python bench/portable_cost.py --json results/bench/portable_cost.json
    python bench/portable_cost.py --quick

The portable mode is process-wide (`drmm_nb.machine.portable_mode`), so each configuration is timed by `bench/step.py`
in a process of its own; the rounds alternate between the two so that load on the machine hits both alike, and the
ratio is of the medians over rounds.
"""
from __future__ import annotations
import argparse, json, statistics, subprocess, sys, tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHILD = """
import sys, json
sys.path.insert(0, {here!r})
portable = sys.argv[1] == 'portable'
if portable:
    from drmm_nb.machine import portable_mode; portable_mode()
import step
out = step.main(['--fp32', '--no-memory', '--steps', sys.argv[2], '--warmup', sys.argv[3], '--arch', sys.argv[4]])
from drmm_nb.machine import is_portable
assert is_portable() == portable
print('@@' + json.dumps({{a: c['configs']['fp32']['drmm_ms'] for a, c in out['cases'].items()}}))
"""


def time_once(mode, steps, warmup, arch):
    p = subprocess.run([sys.executable, '-c', CHILD.format(here=str(HERE)), mode, str(steps), str(warmup), arch],
                       capture_output=True, text=True, cwd=HERE.parent)
    if p.returncode: raise SystemExit(f"{mode}: failed\n{p.stderr[-3000:]}")
    return json.loads(next(l for l in p.stdout.splitlines() if l.startswith('@@'))[2:])[arch]


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--arch', default='conv_small', choices=('conv_small', 'conv_large'))
    p.add_argument('--rounds', type=int, default=3)
    p.add_argument('--steps', type=int, default=8)
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--quick', action='store_true', help='one round of two steps')
    p.add_argument('--json', default=None)
    a = p.parse_args()
    if a.quick: a.rounds, a.steps, a.warmup = 1, 2, 1
    from drmm_nb.machine import machine_facts
    m = machine_facts()
    print(f"CPU {m['cpu']['model']} (family {m['cpu']['family']}, model {m['cpu']['model_id']}), ATen {m['aten_capability']}, "
          f"oneDNN {m['onednn_isa']}; {a.arch}, fp32, 1 thread, {a.rounds} rounds of {a.steps} steps", flush=True)
    t = {'native': [], 'portable': []}
    for i in range(a.rounds):
        for mode in t:
            t[mode].append(time_once(mode, a.steps, a.warmup, a.arch))
            print(f"round {i + 1}: {mode:8s} DRMM step {t[mode][-1]:8.2f} ms", flush=True)
    med = {k: statistics.median(v) for k, v in t.items()}
    ratio = med['portable'] / med['native']
    print(f"portable mode costs {ratio:.2f}x the native fp32 DRMM step ({med['portable']:.1f} vs {med['native']:.1f} ms)")
    if a.json:
        Path(a.json).write_text(json.dumps(dict(arch=a.arch, machine=m, rounds=t, median_ms=med, ratio=ratio), indent=1))


if __name__ == '__main__':
    main()
