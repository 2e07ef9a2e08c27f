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

.PHONY: setup weights demo test lint benchmark notebooks sweep notebooks-clean lab clean

## setup: create .venv and install the package with its dev and notebook extras
setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -e ".[dev]"
	touch $(STAMP)

## weights: fetch and convert the ImageNet ResNet50 weights once (cached per user)
weights: setup
	$(PY) -m emotion_tl weights

## demo: the main job, both approaches on the bundled Images/ (confused vs neutral)
demo: weights
	$(PY) -m emotion_tl --approach both

## test: the whole test suite (CPU; the registries only for model files on first use)
test: setup
	$(PY) -m pytest

## lint: ruff over the package, tests, benchmarks and tools
lint: setup
	$(BIN)/ruff check emotion_tl tests benchmarks tools
	$(BIN)/ruff format --check emotion_tl tests benchmarks tools

## benchmark: roof, project and naive reference on Images/ (about 30 min on 2 CPU cores)
benchmark: weights
	$(PY) benchmarks/benchmark.py --data_dir Images --output benchmarks/results.json

## notebooks: run the five notebooks in order with papermill into notebooks/output/
##            (PARAMS=file.yaml overrides parameters; paths in it are relative to notebooks/)
NOTEBOOKS := 01_explore_data 02_frozen_weights 03_finetuning 04_compare 05_which_source
notebooks: weights
	mkdir -p notebooks/output
	for nb in $(NOTEBOOKS); do \
		$(PY) -m papermill notebooks/$$nb.ipynb notebooks/output/$$nb.ipynb \
			--cwd notebooks -k python3 $(if $(PARAMS),-f $(PARAMS)) || exit 1; \
	done

## sweep: run a notebook over a parameter grid with papermill (SWEEP=file.yaml; default the
##        example notebooks/sweep.yaml); finished runs are skipped; sweep.csv and sweep.png
SWEEP ?= notebooks/sweep.yaml
sweep: weights
	$(PY) -m emotion_tl sweep $(SWEEP)

## notebooks-clean: normalise the committed notebooks; 01 keeps the outputs of the last
##                  `make notebooks` (run it first, with the default parameters)
notebooks-clean: setup
	$(PY) tools/clean_notebooks.py notebooks/02_frozen_weights.ipynb notebooks/05_which_source.ipynb \
		notebooks/03_finetuning.ipynb notebooks/04_compare.ipynb
	$(PY) tools/clean_notebooks.py --keep-outputs notebooks/output/01_explore_data.ipynb \
		--out notebooks/01_explore_data.ipynb

## lab: open JupyterLab on the notebooks
lab: setup
	$(BIN)/jupyter lab notebooks/

clean:
	rm -rf checkpoints/*.pt checkpoints/*.png checkpoints/*.csv .pytest_cache
