"""The training step of this checkout against the same step at another git revision, measured in the same run.

    python bench/compare_rev.py c5957ae                     # default configuration (fp32), ConvSmall, 3 rounds
    python bench/compare_rev.py c5957ae --arch conv_large --steps 5 --rounds 2
    python bench/compare_rev.py c5957ae --bf16 --channels-last

The revision is checked out into a temporary git worktree; each round runs `bench/step.py` of *this* checkout once
with the revision's package and once with this checkout's, one after the other (one thread each), so that load on the
machine hits both alike. Printed: the median over rounds of each one's DRMM and plain step, and the speed-up of this
checkout's DRMM step over the revision's. Read the ratios, not the times.
"""
from __future__ import annotations
import argparse, json, statistics, subprocess, sys, tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Runs a script with `drmm_nb` imported from the folder given first: an editable install's import hook (which would
# find this checkout's package whatever the path says) is taken off first.
BOOT = ("import runpy, sys; root, script = sys.argv[1], sys.argv[2]; "
        "sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, '__module__', '').startswith('__editable__')]; "
        "sys.path.insert(0, root); sys.argv = sys.argv[2:]; runpy.run_path(script, run_name='__main__')")
PROBE = "import drmm_nb, pathlib; print(pathlib.Path(drmm_nb.__file__).resolve())"


def step_times(package_root:Path, a, out:Path)->dict:
    "One `bench/step.py` run (this checkout's script) importing `drmm_nb` from `package_root`; its case for `a.arch`."
    cmd = [sys.executable, '-c', BOOT, str(package_root), str(ROOT/'bench'/'step.py'), '--arch', a.arch, '--steps', str(a.steps), '--warmup', str(a.warmup),
           '--no-memory', '--json', str(out)]
    cmd += ['--bf16'] * a.bf16 + ['--channels-last'] * a.channels_last + ['--fp32'] * (not (a.bf16 or a.channels_last))
    probe_py = out.parent/'probe.py'; probe_py.write_text(PROBE)
    probe = subprocess.run([sys.executable, '-c', BOOT, str(package_root), str(probe_py)], capture_output=True, text=True,
                           check=True).stdout.strip()
    if not probe.startswith(str(package_root.resolve())):
        raise RuntimeError(f"drmm_nb was imported from {probe}, not from {package_root}")
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode: raise RuntimeError(f"bench/step.py failed with {package_root}'s package:\n{r.stderr[-3000:]}")
    conf = json.loads(out.read_text())['cases'][a.arch]['configs']
    return next(iter(conf.values()))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('rev', help='git revision to compare with (e.g. the commit before a change)')
    p.add_argument('--arch', default='conv_small', choices=('conv_small', 'conv_large'))
    p.add_argument('--steps', type=int, default=10)
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--rounds', type=int, default=3)
    p.add_argument('--bf16', action='store_true')
    p.add_argument('--channels-last', action='store_true')
    p.add_argument('--json', default=None, help='also write the numbers to this file')
    a = p.parse_args(argv)
    sha = subprocess.run(['git', 'rev-parse', '--short', a.rev], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp)/'old'
        subprocess.run(['git', 'worktree', 'add', '--detach', '-q', str(old), sha], cwd=ROOT, check=True)
        try:
            runs = {'rev': [], 'this': []}
            for r in range(a.rounds):
                runs['rev'].append(step_times(old, a, Path(tmp)/f'rev{r}.json'))
                runs['this'].append(step_times(ROOT, a, Path(tmp)/f'this{r}.json'))
                print(f"round {r + 1}/{a.rounds}: DRMM step {runs['rev'][-1]['drmm_ms']:.1f} ms at {sha}, "
                      f"{runs['this'][-1]['drmm_ms']:.1f} ms here", flush=True)
        finally:
            subprocess.run(['git', 'worktree', 'remove', '--force', str(old)], cwd=ROOT, check=True)
    med = {k: {m: statistics.median(x[m] for x in v) for m in ('drmm_ms', 'plain_ms')} for k, v in runs.items()}
    cfg = ' + '.join(k for k, on in (('bf16', a.bf16), ('channels_last', a.channels_last)) if on) or 'fp32'
    speedup = med['rev']['drmm_ms'] / med['this']['drmm_ms']
    print(f"{a.arch} [{cfg}], median of {a.rounds} rounds of {a.steps} steps, 1 thread:")
    for k, name in (('rev', sha), ('this', 'this checkout')):
        print(f"  {name:14s} DRMM step {med[k]['drmm_ms']:8.1f} ms   plain step {med[k]['plain_ms']:8.1f} ms")
    print(f"  DRMM step speed-up of this checkout over {sha}: {speedup:.2f}x")
    res = dict(rev=sha, arch=a.arch, config=cfg, steps=a.steps, rounds=a.rounds, median=med, runs=runs, drmm_speedup=speedup)
    if a.json: Path(a.json).write_text(json.dumps(res, indent=1))
    return res


if __name__ == '__main__':
    main()
