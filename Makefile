# followmoney: `make demo` and `make test` work on a fresh machine with Python >= 3.11.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_OUT ?= out/demo

.PHONY: venv demo test lint typecheck unit fuzz bench sample clean

$(BIN)/followmoney: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(BIN)/followmoney

venv: $(BIN)/followmoney

demo: venv
	$(BIN)/followmoney scan sample_data/transactions.arrow \
		--officials sample_data/officials.csv --networks sample_data/networks.csv --out $(DEMO_OUT)

lint: venv
	$(BIN)/ruff check followmoney tests benchmarks
	$(BIN)/ruff format --check followmoney tests benchmarks

typecheck: venv
	$(BIN)/mypy

unit: venv
	$(BIN)/pytest

test: lint typecheck unit

# The property and fuzz tests on new random examples (make test repeats a fixed set).
fuzz: venv
	HYPOTHESIS_PROFILE=explore $(BIN)/pytest tests/test_hostile_input.py tests/test_kernels.py tests/test_score.py tests/test_sorting.py tests/test_partition.py

bench: venv
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	$(BIN)/python benchmarks/run.py --rows 1M,10M --repeat 3

# Regenerate the committed sample world (deterministic).
sample: venv
	$(BIN)/followmoney synth --rows 50000 --seed 7 --out sample_data --quiet

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache
