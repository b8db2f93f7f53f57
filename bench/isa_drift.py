"""How far seeded CPU runs drift when the instruction set changes: committed runs re-run under emulated CPUs.

    python bench/isa_drift.py --grid digits_render --sample 6 --json results/isa_drift/digits_render.json
    python bench/isa_drift.py --quick          # one run, two emulations (a smoke test)

Each emulation is a set of environment variables that the libraries honour at run time: ATen's kernel set
(`ATEN_CPU_CAPABILITY`), oneDNN's highest instruction set (`ONEDNN_MAX_CPU_ISA`), MKL's code branch (`MKL_CBWR`).
'native' sets none. Every emulation re-runs the same committed runs (`drmm-experiments verify`'s fixed sample) in a
process of its own, two at a time; the JSON keeps every value (committed, and now under each emulation) so that the
tolerance of `verify`'s cross-machine mode can be checked against them (08c_results does).
"""
from __future__ import annotations
import argparse, json, os, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

EMULATIONS = {  # name: environment variables (on top of this process's environment)
    'native': {},
    'aten_default': {'ATEN_CPU_CAPABILITY': 'default'},
    'onednn_avx': {'ONEDNN_MAX_CPU_ISA': 'AVX'},
    'onednn_sse41': {'ONEDNN_MAX_CPU_ISA': 'SSE41'},
    'old_cpu': {'ATEN_CPU_CAPABILITY': 'default', 'ONEDNN_MAX_CPU_ISA': 'SSE41', 'MKL_CBWR': 'COMPATIBLE'},
}

CHILD = """
import json, sys
from drmm_nb.experiments import verify
from drmm_nb.machine import machine_facts
rows = verify(sys.argv[1], sample=int(sys.argv[2]), mode='tolerance', twice=False)
print('@@' + json.dumps(dict(facts=machine_facts(), rows=rows)))
"""


def run_one(name, env, grid, sample):
    t0 = time.time()
    p = subprocess.run([sys.executable, '-c', CHILD, grid, str(sample)], env={**os.environ, **env},
                       capture_output=True, text=True)
    if p.returncode: raise SystemExit(f"{name}: failed\n{p.stderr[-3000:]}")
    out = json.loads(next(l for l in p.stdout.splitlines() if l.startswith('@@'))[2:])
    print(f"{name}: {len(out['rows'])} values in {time.time() - t0:.0f} s "
          f"(ATen {out['facts']['aten_capability']}, oneDNN {out['facts']['onednn_isa']}, MKL {out['facts']['mkl_branch']})",
          flush=True)
    return dict(name=name, env=env, wall_s=time.time() - t0, **out)


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--grid', default='digits_render')
    p.add_argument('--sample', type=int, default=6, help="committed runs re-run (verify's fixed sample)")
    p.add_argument('--emulations', default=','.join(EMULATIONS), help=f"comma-separated, of {list(EMULATIONS)}")
    p.add_argument('--workers', type=int, default=2)
    p.add_argument('--quick', action='store_true', help='one run, native and aten_default')
    p.add_argument('--json', default=None, help='write the results here')
    a = p.parse_args()
    names = ['native', 'aten_default'] if a.quick else a.emulations.split(',')
    if a.quick: a.sample = 1
    bad = [n for n in names if n not in EMULATIONS]
    if bad: p.error(f"unknown emulation(s) {bad}: use {list(EMULATIONS)}")
    with ThreadPoolExecutor(a.workers) as ex:
        res = list(ex.map(lambda n: run_one(n, EMULATIONS[n], a.grid, a.sample), names))
    from drmm_nb.machine import drift_summary
    summary = drift_summary(res)
    for line in summary['lines']: print(line)
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(dict(grid=a.grid, sample=a.sample, emulations=res,
                                                summary={k: v for k, v in summary.items() if k != 'lines'}), indent=1))
        print(f"wrote {a.json}")


if __name__ == '__main__':
    main()
