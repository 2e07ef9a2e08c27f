# Every command the README names. Each target sets up what it needs, idempotently.
PYTHON ?= python3
VENV ?= .venv
ifeq ($(OS),Windows_NT)
BIN := $(VENV)/Scripts
else
BIN := $(VENV)/bin
endif
PY := $(BIN)/python
STAMP := $(VENV)/.installed

.PHONY: setup weights demo test lint benchmark notebooks lab clean

## setup: create .venv and install the package with its dev and notebook extras
setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -e ".[dev]"
	touch $(STAMP)

## weights: fetch and convert the ImageNet ResNet50 weights once (cached per user)
weights: setup
	$(PY) -m emotion_tl.weights

## demo: the main job, both approaches on the bundled Images/ (confused vs neutral)
demo: weights
	$(PY) -m emotion_tl --approach both

## test: the whole test suite (offline, CPU)
test: setup
	$(PY) -m pytest

## lint: ruff over the package and tests
lint: setup
	$(BIN)/ruff check emotion_tl tests
	$(BIN)/ruff format --check emotion_tl tests

## benchmark: roof, project and naive reference on Images/ (about 30 min on 2 CPU cores)
benchmark: weights
	$(PY) benchmarks/benchmark.py --data_dir Images --output benchmarks/results.json

clean:
	rm -rf checkpoints/*.pt checkpoints/*.png checkpoints/*.csv .pytest_cache
