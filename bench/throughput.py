"""Which finishes more runs per hour on this machine: two one-thread runs side by side, or one run with two threads?

    python bench/throughput.py                 # conv_small DRMM steps in the configuration drmm-train picks (fast)
    python bench/throughput.py --no-fast       # in plain fp32 (the configuration of the committed MNIST grids)

Each layout runs `bench/step.py` processes at once (the same work as a grid's runs: one DRMM step after another) and
adds up their steps per second. The ratio says how many more steps, and so runs, one layout finishes per hour than the
other. Run it on a quiet machine: anything else running moves the ratio.
"""
import argparse, json, os, subprocess, sys, tempfile
from pathlib import Path

HERE = Path(__file__).parent


def layout(procs:int, threads:int, args)->float:
    "Steps per second of `procs` processes of `threads` threads each, run at the same time."
    with tempfile.TemporaryDirectory() as d:
        cmd = lambda i: [sys.executable, str(HERE/'step.py'), '--arch', 'conv_small', '--no-memory', '--threads', str(threads),
                         '--steps', str(args.steps), '--json', f'{d}/{i}.json'] + (['--fast'] if args.fast else ['--fp32'])
        ps = [subprocess.Popen(cmd(i), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, 'OMP_NUM_THREADS': str(threads)}) for i in range(procs)]
        for p in ps:
            if p.wait(): raise RuntimeError(f"bench/step.py failed: {' '.join(cmd(0))}")
        res = [json.loads(Path(f'{d}/{i}.json').read_text()) for i in range(procs)]
    ms = [next(iter(r['cases']['conv_small']['configs'].values()))['drmm_ms'] for r in res]
    return sum(1e3 / m for m in ms), ms, res[0]['options']


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], epilog=__doc__.split('\n\n', 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--fast', action=argparse.BooleanOptionalAction, default=True)
    p.add_argument('--steps', type=int, default=30)
    p.add_argument('--json', default=None)
    a = p.parse_args(argv)
    cores = os.cpu_count()
    two, ms2, opts = layout(cores, 1, a)
    one, ms1, _ = layout(1, cores, a)
    print(f"{cores} cores, conv_small DRMM steps [{opts}], load average at the end {os.getloadavg()[0]:.2f}")
    print(f"{cores} processes x 1 thread: {two:.2f} steps/s (each {', '.join(f'{m:.0f}' for m in ms2)} ms per step)")
    print(f"1 process x {cores} threads: {one:.2f} steps/s ({ms1[0]:.0f} ms per step)")
    better = 'processes' if two > one else 'threads'
    print(f"runs per hour, {cores} one-thread processes / one {cores}-thread process: {two / one:.2f} -> use {better}")
    out = dict(cores=cores, options=opts, procs_steps_per_s=two, procs_ms=ms2, threads_steps_per_s=one, threads_ms=ms1,
               ratio=two / one, better=better)
    if a.json: Path(a.json).write_text(json.dumps(out, indent=1))
    return out


if __name__ == '__main__':
    main()
