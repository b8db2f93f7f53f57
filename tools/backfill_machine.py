"""Add a `machine` field to committed records made before drmm-train recorded one: what is known of their machine, no more.

    python tools/backfill_machine.py            # every results/*/*/metrics.json without `machine`
    python tools/backfill_machine.py --check    # exit 1 if any record lacks it

Known of the CPU runs committed before then (issue 19, and the notebooks' reference values): they were all made on one
AMD EPYC machine type with AVX-512 and bf16 instructions, where ATen dispatches to its AVX512 kernels, with no variable
pinning a kernel set (so MKL's CNR off), oneDNN and NNPACK on (nothing in the package turned them off), and the thread
count the grid runner recorded. Not known: the exact family and model, the full flag list, oneDNN's ISA. GPU runs get
no CPU facts. `drmm_nb.machine.same_numbers` compares only the facts a record has, and says which it could not.
"""
import argparse, json, sys
from pathlib import Path

from drmm_nb.machine import backfilled_facts


def backfill(rec: dict) -> dict:
    "The `machine` facts that are known of a record made before they were recorded."
    return backfilled_facts(rec.get('device', 'cpu'), (rec.get('runner') or {}).get('threads'),
                            (rec.get('versions') or {}).get('torch'))


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--results', default='results')
    p.add_argument('--check', action='store_true', help='only check that every record has `machine`')
    a = p.parse_args()
    paths = sorted(Path(a.results).glob('*/*/metrics.json'))
    missing = [q for q in paths if 'machine' not in json.loads(q.read_text())]
    if a.check:
        print(f"{len(paths) - len(missing)} of {len(paths)} records have `machine`")
        sys.exit(1 if missing else 0)
    for q in missing:
        rec = json.loads(q.read_text())
        rec['machine'] = backfill(rec)
        q.write_text(json.dumps(rec, indent=1))
    print(f"backfilled {len(missing)} of {len(paths)} records")


if __name__ == '__main__':
    main()
