# Two commands on a fresh machine:  `make run` (set up + train the default job)  and  `make test`.
# `make lab` opens the notebooks. VENV picks where the virtual environment lives.
VENV ?= .venv
PYTHON ?= python3
# EXTRAS: pip extras of the kit (dev: pytest, nbval, Playwright; empty for a participant's install).
# TORCH_INDEX: where torch comes from first, e.g. https://download.pytorch.org/whl/cpu (CPU-only wheels).
EXTRAS ?= dev
TORCH_INDEX ?=
BIN := $(VENV)/bin

.PHONY: setup run test lab clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(if $(TORCH_INDEX),$(BIN)/python -m pip install torch==2.14.1 torchvision==0.29.1 --index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install -e ".$(if $(EXTRAS),[$(EXTRAS)])"
	# MovieLens-100k ships inside the recbole wheel; only its data files are read, so no dependencies.
	$(BIN)/python -m pip install --no-deps recbole==1.2.1
	touch $@

run: setup  ## train and evaluate SASRec on the synthetic world (workshop preset); metrics JSON on the last line
	$(BIN)/mmsr train --preset workshop --out runs/quickstart

# TEACH: notebooks `make test` runs at the teaching default (MMSR_FAST=0), so their finding asserts run on every
# submission; the others run in fast mode (plumbing only) unless MMSR_FAST=0. TEACH= runs none of them at the default.
TEACH ?= notebooks/00_quickstart.ipynb notebooks/01_item_encoders.ipynb notebooks/02_fusion.ipynb \
	notebooks/03_architectures.ipynb notebooks/05_cold_start.ipynb notebooks/06_transfer.ipynb \
	notebooks/08_visualisation.ipynb
OFFLINE := HF_HUB_OFFLINE=$${HF_HUB_OFFLINE:-1} HF_DATASETS_OFFLINE=$${HF_DATASETS_OFFLINE:-1}

test: setup  ## unit tests and notebooks (fast mode but TEACH, unless MMSR_FAST=0), offline: a stray hub call fails fast
	$(OFFLINE) MMSR_FAST=$${MMSR_FAST:-1} $(BIN)/python -m pytest $(addprefix --ignore=,$(TEACH))
	$(if $(TEACH),$(OFFLINE) MMSR_FAST=0 $(BIN)/python -m pytest $(TEACH))

lab: setup  ## JupyterLab on the notebooks (hub ids load where the hub is reachable; MMSR_FAST=1: every notebook in seconds)
	$(BIN)/jupyter lab notebooks/

clean:
	rm -rf data/cache results runs
