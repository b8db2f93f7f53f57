# drmm_nb: `make test` (CI), `make demo`, `make docs`. Every target sets up .venv itself.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
PYTHON ?= python3

.PHONY: install test sync-check export clean-nbs readme demo docs experiments bench

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

test: sync-check
	$(BIN)/nbdev-test --n_workers 2 --timing
	$(BIN)/pytest -q tests
