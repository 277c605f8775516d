# Two commands that work on a fresh clone: `make demo` and `make test`.
# Each creates .venv (uv when present, else pip) and installs what it needs.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# uv when present, else pip (`make test UV=` forces pip).
UV ?= $(shell command -v uv 2>/dev/null)

.PHONY: demo test lint bench notebooks clean setup

$(STAMP): pyproject.toml
	@# Debian's system python needs python3-venv for pip's path; install it when missing.
	@if [ -z "$(UV)" ] && ! python3 -c "import ensurepip, venv" >/dev/null 2>&1 \
		&& command -v apt-get >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv; \
	fi
	@if [ -n "$(UV)" ]; then \
		$(UV) venv --quiet --allow-existing --python python3 $(VENV) && \
		$(UV) pip install --quiet --python $(PY) -e '.[dev]'; \
	else \
		python3 -m venv $(VENV) && \
		$(PY) -m pip install --quiet --upgrade pip && \
		$(PY) -m pip install --quiet -e '.[dev]'; \
	fi
	@touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(PY) -m alpaca_nb.cli demo

test: $(STAMP) lint
	$(PY) -m pytest -q

lint: $(STAMP)  # ruff (lint and format); run by make test and CI
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

bench: $(STAMP)
	$(PY) -m bench

notebooks: $(STAMP)  # re-execute the example notebooks and store the outputs nbval checks
	$(PY) notebooks/execute.py

.PHONY: reliability
reliability: $(STAMP)  # run tests/reliability with its figures on; render them into RELIABILITY.md
	@mkdir -p build
	@RELIABILITY_REPORT=$(CURDIR)/build/reliability.json $(PY) -m pytest -q -p no:cacheprovider tests/reliability; \
		status=$$?; \
		$(PY) tests/reliability/render_figures.py build/reliability.json RELIABILITY.md && exit $$status

clean:
	rm -rf $(VENV) .pytest_cache build dist *.egg-info
