# cityops — two commands: `make run` (set up and serve on :8000) and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell bash ops/find-python.sh)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
HOST ?= 127.0.0.1
SIZE ?= full

.PHONY: run test deps venv db lint bench clean

run: venv
	$(BIN)/cityops db up
	$(BIN)/cityops redis up
	$(BIN)/cityops fleet broker up
	$(BIN)/cityops db migrate
	$(BIN)/cityops keys init
	$(BIN)/cityops samples load --size $(SIZE) --if-empty
	$(BIN)/cityops users demo --if-empty
	$(BIN)/cityops samples basemaps --if-missing
	$(BIN)/cityops serve --host $(HOST) --port $(PORT)

test: venv
	@bash ops/test-deps.sh
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

deps:
	@bash ops/system-deps.sh

venv: deps $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

lint: venv
	$(BIN)/ruff check .

bench: venv
	$(BIN)/python bench/load_samples.py

clean:
	-$(BIN)/cityops db down
	-$(BIN)/cityops redis down
	-$(BIN)/cityops fleet broker down
	rm -rf $(VENV) var
