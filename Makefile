# drmm_nb: `make test` (CI), `make demo`, `make docs`. Every target sets up .venv itself.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
PYTHON ?= python3

.PHONY: install test sync-check export demo docs

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "== installing into $(VENV) (torch/torchvision from this machine's disk, the rest from PyPI)"
	$(PY) -m pip install -q --disable-pip-version-check torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $@

install: $(VENV)/.installed

## Fail if nbdev-clean or nbdev-export would change anything (checked on a scratch copy).
sync-check: install
	@PATH="$(abspath $(BIN)):$$PATH" bash tools/check_sync.sh

## Regenerate the package and README from the notebooks (what a developer runs before committing).
export: install
	$(BIN)/nbdev-clean
	$(BIN)/nbdev-export
	$(PY) tools/readme.py

## The first command of the README: the DRMM and the supervised-only baseline on the 8x8 digits with 50 labels.
DEMO_EPOCHS ?= 30
DEMO_ARGS = --dataset digits --n-labeled 50 --epochs $(DEMO_EPOCHS) --seed 0 --device cpu --resume --overwrite
demo: install
	$(BIN)/drmm-train $(DEMO_ARGS) --out runs/demo/drmm
	$(BIN)/drmm-train $(DEMO_ARGS) --supervised-only --out runs/demo/supervised
	@$(PY) -c "from drmm_nb.cli import compare_runs; compare_runs(['runs/demo/drmm', 'runs/demo/supervised'])"

## verify: re-trains committed runs; exact where the machine facts are proven to compute alike (the portable records: on
## the CPU types of machine.PORTABLE_GROUPS), else within the cross-CPU tolerance; each line says which.
test: sync-check
	$(BIN)/nbdev-test --n-workers 2 --timing
	$(BIN)/pytest -q tests
	$(BIN)/drmm-experiments verify digits_portable --sample 2
	$(BIN)/drmm-experiments verify digits_portable_apart --sample 2
	$(BIN)/drmm-experiments verify digits_render --sample 2

## Documentation site in _docs/: nbdev-docs where Quarto is installed, else a static site from nbdev's
## processed notebooks rendered by nbconvert, with MathJax shipped inside _docs/ (tools/build_docs.py).
docs: install
	$(PY) tools/build_docs.py

## A named grid of drmm-train runs (digits, fashion_mnist, paper): results/NAME/*/metrics.json, table.md, curves.
## Finished runs are skipped; `make experiments NAME=digits` after an interruption continues where it stopped.
.PHONY: experiments bench
NAME ?= digits
EXPERIMENT_ARGS ?=
experiments: install
	nice -n 10 $(BIN)/drmm-experiments run $(NAME) --quiet $(EXPERIMENT_ARGS)
	$(BIN)/drmm-experiments curves $(NAME)

## Cost of a DRMM training step against the plain network's (CPU, 1 thread), batch assembly, peak memory.
BENCH_ARGS ?=
bench: install
	$(PY) bench/step.py $(BENCH_ARGS)
