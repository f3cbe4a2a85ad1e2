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

test: setup  ## unit tests and notebooks (notebooks in fast mode unless MMSR_FAST=0), offline: a stray hub call fails fast
	HF_HUB_OFFLINE=$${HF_HUB_OFFLINE:-1} HF_DATASETS_OFFLINE=$${HF_DATASETS_OFFLINE:-1} MMSR_FAST=$${MMSR_FAST:-1} \
		$(BIN)/python -m pytest

lab: setup  ## JupyterLab on the notebooks (hub ids load where the hub is reachable; MMSR_FAST=1: every notebook in seconds)
	$(BIN)/jupyter lab notebooks/

clean:
	rm -rf data/cache results runs
