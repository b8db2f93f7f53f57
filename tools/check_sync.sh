#!/usr/bin/env bash
# Fails with a clear message when `nbdev-clean` or `nbdev-export` (or the README build) would change anything.
# Works on a scratch copy, so the working tree is never modified.
set -euo pipefail
root=$(pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r pyproject.toml README.md nbs drmm_nb tools "$tmp"/
cd "$tmp"
git init -q .  # nbdev-clean looks for the repository root
nbdev-clean >/dev/null
nbdev-export >/dev/null
python tools/readme.py >/dev/null
find . -name __pycache__ -prune -exec rm -rf {} +
status=0
for p in nbs drmm_nb README.md; do
  if ! diff -r -q -x __pycache__ -x .ipynb_checkpoints "$root/$p" "$tmp/$p" >"$tmp/diff.txt" 2>&1; then
    echo "OUT OF SYNC: '$p' differs from what nbdev-clean + nbdev-export + tools/readme.py produce:" >&2
    sed 's/^/    /' "$tmp/diff.txt" >&2
    status=1
  fi
done
if [ $status -ne 0 ]; then
  echo "Fix: run 'make export' (nbdev-clean, nbdev-export, tools/readme.py), review the diff, and commit." >&2
  exit 1
fi
echo "sync-check: notebooks, package and README agree."
