"""The GPU path on SmolLM2-135M: each workload on ``cuda`` next to the same workload on the CPU,
in one run (called by benchmarks/gpu_check.sh, after the device-path tests).

Figures are rates, so that the CPU can do less of the work and still be compared:

1. neuron map: seconds per layer (every direction-down neuron through the LM head;
   ``--map-layers`` layers on the GPU, ``--cpu-map-layers`` on the CPU);
2. dictionary training: training tokens per second of a TopK transcoder at a GPU-sized
   dictionary and batch (``--expansion``, ``--batch``), fed pre-computed activations;
3. circuit graph: seconds per trace + graph search with transcoders at every layer;
4. faithfulness benchmark: seconds per prompt (every method) on ``--prompts`` prompts (the
   CPU does ``--cpu-prompts``).

A workload that fails on one device prints its error in place of the figure and the check
goes on; the exit status is 1 if any did.

    .venv/bin/python benchmarks/gpu_check.py [--map-layers 30] [--batch 4096] [--expansion 32] [--prompts 16]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from interp.jobs.units import worker_model  # noqa: E402
from interp.store import Store  # noqa: E402

PROMPT = ("When Mary and John went to the store, John gave a drink to Mary. The war lasted from the year "
          "1732 to the year 17")


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def neuron_map(args, device: str, scratch: Path) -> tuple[float, str]:
    from interp.jobs.neuron_map import MapConfig, map_models

    layers = args.map_layers if device != "cpu" else args.cpu_map_layers
    summary = map_models(Store(scratch / f"map-{device}"), [args.model], MapConfig(layers=tuple(range(layers))),
                         progress=False, device=device)
    return summary.seconds / layers, "s/layer"


def training(args, device: str, scratch: Path) -> tuple[float, str]:
    from interp.dictionaries.activations import in_memory_batches, site_activations
    from interp.dictionaries.train_config import TrainConfig
    from interp.dictionaries.training import train_dictionaries

    adapter = worker_model(args.model, "cpu")
    sites = adapter.sites(args.layer)
    tokens = adapter.to_tokens(PROMPT * 8)[:, :128].repeat(max(1, args.batch // 64), 1)
    acts = site_activations(adapter, tokens, [sites.mlp_in, sites.mlp_out], skip=2)
    x, y = acts[sites.mlp_in], acts[sites.mlp_out]
    steps = args.steps if device != "cpu" else max(2, args.steps // 8)
    config = TrainConfig(kind="transcoder", arch="topk", k=32, expansion=args.expansion, batch_size=args.batch,
                         train_tokens=args.batch * steps, warmup_steps=1)
    batches = [in_memory_batches(x, y, args.batch, 0)]
    train_dictionaries(batches, [config], [(x.shape[1], y.shape[1])], progress=False,  # warm-up (kernels, allocator)
                       device=None if device == "cpu" else device)
    _sync(device)
    t0 = time.perf_counter()
    train_dictionaries(batches, [config], [(x.shape[1], y.shape[1])], progress=False,
                       device=None if device == "cpu" else device)
    _sync(device)
    return args.batch * steps / (time.perf_counter() - t0), "tokens/s"


def circuit(args, device: str, scratch: Path) -> tuple[float, str]:
    from interp.methods.circuits.attribution import LogitTarget, trace
    from interp.methods.circuits.graph import GraphConfig, build_graph
    from interp.methods.circuits.transcoders import random_transcoders

    adapter = worker_model(args.model, device)
    transcoders = {layer: tc.to(adapter.device) for layer, tc in
                   random_transcoders(adapter, range(adapter.info.n_layers), args.d_sae, 32).items()}
    tokens = adapter.to_tokens(PROMPT)[:, :32]
    target = LogitTarget(int(adapter.logits(tokens)[0, -1].argmax()))
    build_graph(adapter, trace(adapter, transcoders, tokens[0]), target, GraphConfig())  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(args.repeats):
        build_graph(adapter, trace(adapter, transcoders, tokens[0]), target, GraphConfig())
    _sync(device)
    return (time.perf_counter() - t0) / args.repeats, "s/graph"


def faithfulness(args, device: str, scratch: Path) -> tuple[float, str]:
    from interp.jobs.faithfulness_benchmark import BenchmarkConfig, run_benchmark

    n = args.prompts if device != "cpu" else args.cpu_prompts
    config = BenchmarkConfig(tag=f"gpu-check-{device}", n=n, probes=16, steps=300, ig_steps=50, shard_size=n)
    t0 = time.perf_counter()
    table, _ = run_benchmark(Store(scratch / f"faith-{device}"), args.model, config, progress=False, device=device)
    return (time.perf_counter() - t0) / int(table["n"].max()), "s/prompt"


WORKLOADS = {"neuron map": neuron_map, "dictionary training": training, "circuit graph": circuit,
             "faithfulness benchmark": faithfulness}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--map-layers", type=int, default=30)
    ap.add_argument("--cpu-map-layers", type=int, default=3)
    ap.add_argument("--layer", type=int, default=15, help="layer of the trained transcoder")
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--expansion", type=int, default=32)
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--d-sae", type=int, default=18432, help="latents of each random transcoder of the graph")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--cpu-prompts", type=int, default=2)
    ap.add_argument("--only", default=None, help="comma-separated workloads (default: all)")
    args = ap.parse_args()
    from interp.jobs.units import resolve_device

    device = resolve_device(args.device)
    if device == "cpu":
        print("gpu_check: no CUDA device is visible: nothing to compare", file=sys.stderr)
        return 2
    print(f"{args.model} on {torch.cuda.get_device_name(0)} vs CPU ({torch.get_num_threads()} threads)")
    print(f"{'workload':<24} {'GPU':>14} {'CPU':>14} {'GPU/CPU speed':>14}")
    failed = False
    names = args.only.split(",") if args.only else list(WORKLOADS)
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as scratch:
        for name in names:
            figures = {}
            for d in (device, "cpu"):
                try:
                    figures[d] = WORKLOADS[name](args, d, Path(scratch))
                except Exception as exc:  # noqa: BLE001 - reported in place of the figure
                    figures[d] = (None, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
                    failed = True
            (g, unit), (c, _) = figures[device], figures["cpu"]
            cells = [f"{v:10.3f} {unit}" if v is not None else "failed" for v, unit in (figures[device], figures["cpu"])]
            ratio = "" if g is None or c is None else f"{(g / c if unit.endswith('/s') else c / g):13.1f}x"
            print(f"{name:<24} {cells[0]:>14} {cells[1]:>14} {ratio:>14}", flush=True)
            for d in (device, "cpu"):
                if figures[d][0] is None:
                    print(f"  {d}: {figures[d][1]}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
