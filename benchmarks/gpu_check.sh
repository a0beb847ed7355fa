#!/usr/bin/env bash
# The GPU path, in a few minutes on a GPU machine: the device-path tests, then the neuron map,
# dictionary training throughput, the circuit graph and the faithfulness benchmark at GPU-sized
# settings, each figure next to the CPU figure of the same run (benchmarks/gpu_check.py).
#
#     benchmarks/gpu_check.sh [gpu_check.py options, e.g. --prompts 32]
#
# Needs the converted SmolLM2 (`make model` or any earlier run) and a CUDA build of torch.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false

if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo "gpu_check: torch sees no CUDA device here; run this on a GPU machine" >&2
    exit 2
fi

echo "== device-path tests (tests/device)"
"$PY" -m pytest tests/device -q -p no:cacheprovider

echo "== figures (GPU vs CPU, same run)"
"$PY" benchmarks/gpu_check.py "$@"
