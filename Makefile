# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test lint cfn-lint typecheck layers unit demo bench schema image clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH" >&2; exit 2; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: $(STAMP) cfn-lint
	$(BIN)/ruff check controller tests bench scripts
	$(BIN)/ruff format --check controller tests bench scripts

# The CloudFormation stack, against CloudFormation's resource schemas.
cfn-lint: $(STAMP)
	$(BIN)/cfn-lint deploy/cloudformation.yaml

typecheck: $(STAMP)
	$(BIN)/mypy

layers: $(STAMP)
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/pytest -q

test: lint typecheck layers unit

demo: $(STAMP)
	$(BIN)/controller demo

# Every benchmark, its output kept in bench/results/, then the README's tables rewritten from it.
bench: $(STAMP)
	$(BIN)/python scripts/bench_table.py run
	$(BIN)/python scripts/bench_table.py readme

# The container image (needs a container runtime; the tests do not).
IMAGE ?= ecs-job-controller:latest
DOCKER ?= docker
image:
	$(DOCKER) build --tag $(IMAGE) .

schema: $(STAMP)
	$(BIN)/python scripts/generate_schema.py

clean:
	rm -rf $(VENV) .controller .pytest_cache .mypy_cache .ruff_cache
