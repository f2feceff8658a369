# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test lint typecheck layers unit demo bench schema clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH" >&2; exit 2; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check controller tests bench scripts
	$(BIN)/ruff format --check controller tests bench scripts

typecheck: $(STAMP)
	$(BIN)/mypy

layers: $(STAMP)
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/pytest -q

test: lint typecheck layers unit

demo: $(STAMP)
	$(BIN)/controller demo

bench: $(STAMP)
	$(BIN)/python -m bench.load_manifests
	$(BIN)/python -m bench.taskdef_reuse
	$(BIN)/python -m bench.concurrent_runs
	$(BIN)/python -m bench.prune
	$(BIN)/python -m bench.capacity
	$(BIN)/python -m bench.capacity_e2e
	$(BIN)/python -m bench.capacity_e2e --scale-in
	$(BIN)/python -m bench.sync_loop
	$(BIN)/python -m bench.reaction
	$(BIN)/python -m bench.latency

schema: $(STAMP)
	$(BIN)/python scripts/generate_schema.py

clean:
	rm -rf $(VENV) .controller .pytest_cache .mypy_cache .ruff_cache
