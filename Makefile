# Two commands set everything up on a fresh machine: `make reproduce` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: reproduce test lint format bench clean gpu-check

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# the CPU build of torch first, pinned: pip then leaves it alone when installing the project
	$(BIN)/python -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

# PROFILE=standard adds the 2-hour scale beside quick (its estimate is over the 1-hour prompt, hence
# --yes); PROFILE=paper still asks for --yes by hand (a GPU job).
PROFILE ?= quick
reproduce: $(STAMP)
	$(BIN)/specbias reproduce --out results --profile $(PROFILE) $(if $(filter paper,$(PROFILE)),,--yes)

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples

format: $(STAMP)
	$(BIN)/ruff check --fix src tests benchmarks examples
	$(BIN)/ruff format src tests benchmarks examples

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) results .pytest_cache .ruff_cache

gpu-check:  # on a machine with a GPU and a CUDA build of torch (see the script's header)
	bash benchmarks/gpu_check.sh
