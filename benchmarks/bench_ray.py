"""The job interface's backends side by side: local vs Ray with 1 and 2 workers, one run.

For each job, the same units run three times into fresh stores: the local backend (this
process, torch on every core), then a Ray instance with 1 CPU (one worker, one unit at a time)
and with 2 CPUs (two workers). Printed per job: wall time of each, and Ray's overhead per unit:

- ``noop``: units that write one row each - the pure cost of a Ray task (scheduling, pickling
  the job, a `Store` per unit, the write) over the same write done locally;
- ``map``: the neuron map of SmolLM2-135M (`--map-layers` layers, one unit per layer);
- ``complexity``: complexity of `--complexity-layers` layers' neurons in shards of `--shard`;
- ``sweep``: a transcoder/SAE sweep at one layer (one unit per dictionary);
- ``train``: ``interp train`` at `--train-layers` layers (one unit per layer, a k-16 transcoder each);
- ``faith``: the faithfulness benchmark over `--faith-prompts` prompts (units of `--faith-shard`).

Ray's start (``ray.init``) is timed apart, and the on-disk caches every backend shares (token
windows, the sweep's activations) are filled before any timing; a worker's first unit also
loads the model (once per worker), which is inside the job's wall time. Ray workers run torch with one thread each (Ray
sets OMP_NUM_THREADS to a task's CPUs), so on a 2-core machine Ray with 2 workers at best
matches the local backend, which already uses both cores: the point is resumability and the
same command on a cluster, where units spread over nodes and wall time falls with the number
of workers until model loading (per worker) and the driver's plan/finish dominate.

    .venv/bin/python benchmarks/bench_ray.py [--jobs noop,map,complexity,sweep,train,faith] [--map-layers 4]
    # the unit counts of a full run: 30 layers of dictionaries, 46,080 neurons, 110 prompts
    .venv/bin/python benchmarks/bench_ray.py --jobs noop,train,complexity,faith --train-layers 30 \
        --complexity-layers 30 --faith-prompts 110
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Ray starts its workers at niceness 15 (its `worker_niceness`), the local backend runs at the
# driver's: on a machine with any other load the comparison would time the scheduler, not Ray.
os.environ.setdefault("RAY_worker_niceness", "0")

from interp.jobs.units import Job, Unit, run_job  # noqa: E402
from interp.store import Store  # noqa: E402


class NoopJob(Job):
    """`n` units, each writing one results row."""

    command = "bench_ray noop"

    def __init__(self, n: int) -> None:
        self.n = n

    def plan(self, store, run_id, force):
        return [Unit(f"{i:04d}", i) for i in range(self.n)], []

    def run(self, store, unit, run_id):
        store.write("results", [{"name": "noop", "key": unit.key, "payload": {"i": unit.spec}}], run_id=run_id)
        return unit.spec


def _noop(args, store, backend):
    return run_job(store, NoopJob(args.noop_units), backend=backend, progress=False), args.noop_units


def _map(args, store, backend):
    from interp.jobs.neuron_map import MapConfig, map_models

    summary = map_models(store, [args.model], MapConfig(layers=tuple(range(args.map_layers))), backend=backend,
                         progress=False, device="cpu")
    return summary, args.map_layers


def _complexity(args, store, backend):
    from interp.jobs.complexity import RunConfig, run_complexity

    layers = ",".join(str(layer) for layer in range(args.complexity_layers))
    config = RunConfig(n_tokens=args.complexity_tokens, importance_windows=0, flow=False)
    run_complexity(args.model, f"neurons:layers={layers}", config, store=store, shard_size=args.shard,
                   backend=backend, device="cpu")
    return None, args.complexity_layers * -(-1536 // args.shard)


def _sweep_config(args):
    from interp.dictionaries.train_config import TrainConfig
    from interp.jobs.dictionaries import DataConfig, SweepConfig

    return SweepConfig(layer=args.sweep_layer, ks=(8, 16), kinds=("transcoder", "sae"),
                       train=TrainConfig(train_tokens=args.sweep_tokens, batch_size=256, expansion=4,
                                         warmup_steps=5, dead_after_tokens=2048, aux_k=64),
                       data=DataConfig(eval_tokens=args.sweep_eval_tokens, dashboard_tokens=0))


def _sweep(args, store, backend):
    from interp.jobs.dictionaries import run_sweep

    run_sweep(args.model, store, _sweep_config(args), progress=False, backend=backend, device="cpu")
    return None, 4


def _train_configs(args):
    from interp.dictionaries.train_config import TrainConfig
    from interp.jobs.dictionaries import DataConfig

    train = TrainConfig(kind="transcoder", k=16, expansion=4, train_tokens=args.train_tokens, batch_size=256,
                        warmup_steps=5, dead_after_tokens=2048, aux_k=64)
    return [train], DataConfig(eval_tokens=args.train_eval_tokens, dashboard_tokens=0)


def _train(args, store, backend):
    from interp.jobs.training import train_layers

    trains, data = _train_configs(args)
    train_layers(args.model, store, trains, range(args.train_layers), data=data, progress=False, backend=backend,
                 device="cpu")
    return None, args.train_layers


def _faith_config(args):
    from interp.jobs.faithfulness_benchmark import BenchmarkConfig

    return BenchmarkConfig(tag="bench-ray", n=args.faith_prompts, probes=args.faith_probes, steps=args.faith_steps,
                           ig_steps=args.faith_ig_steps, masks=args.faith_masks, shard_size=args.faith_shard)


def _faith(args, store, backend):
    from interp.jobs.faithfulness_benchmark import run_benchmark

    run_benchmark(store, args.model, _faith_config(args), backend=backend, progress=False, device="cpu")
    return None, -(-args.faith_prompts // args.faith_shard)


JOBS = {"noop": _noop, "map": _map, "complexity": _complexity, "sweep": _sweep, "train": _train, "faith": _faith}


def _warm(args, jobs) -> None:
    """Fill the on-disk caches every backend then shares (converted model, token windows, the
    sweep's activations), untimed, so that no backend pays for them alone."""
    from interp.corpus import token_windows
    from interp.jobs.complexity import RunConfig
    from interp.jobs.units import worker_model

    adapter = worker_model(args.model, "cpu")
    if "complexity" in jobs:
        c = RunConfig(n_tokens=args.complexity_tokens)
        token_windows(c.corpus, adapter.tokenizer, split="heldout", ctx_len=c.ctx_len, max_tokens=c.n_tokens,
                      seed=c.seed)
    if "train" in jobs:
        from interp.jobs.dictionaries import _windows

        trains, data = _train_configs(args)
        _windows(adapter, data, "train", trains[0].train_tokens)
        _windows(adapter, data, "heldout", data.eval_tokens)
    if "faith" in jobs:  # the prompt choice reads the corpus once
        from interp.jobs.faithfulness_benchmark import confident_prefixes

        confident_prefixes(adapter, args.faith_prompts, seed=0)
    if "sweep" in jobs:
        from interp.jobs.dictionaries import _sweep_activations, _windows

        config = _sweep_config(args)
        _sweep_activations(adapter, config, progress=False)
        _windows(adapter, config.data, "heldout", config.data.eval_tokens)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--jobs", default="noop,map,complexity,sweep,train,faith")
    ap.add_argument("--backends", default="local,ray1,ray2",
                    help="which of local, ray1 (Ray with 1 CPU), ray2 (2 CPUs) to time (default: all three)")
    ap.add_argument("--noop-units", type=int, default=40)
    ap.add_argument("--map-layers", type=int, default=4)
    ap.add_argument("--complexity-layers", type=int, default=2)
    ap.add_argument("--complexity-tokens", type=int, default=4096)
    ap.add_argument("--shard", type=int, default=768)
    ap.add_argument("--sweep-layer", type=int, default=3)
    ap.add_argument("--sweep-tokens", type=int, default=8192)
    ap.add_argument("--sweep-eval-tokens", type=int, default=1024)
    ap.add_argument("--train-layers", type=int, default=4, help="train: layers 0..N-1, one transcoder each")
    ap.add_argument("--train-tokens", type=int, default=4096)
    ap.add_argument("--train-eval-tokens", type=int, default=1024)
    ap.add_argument("--faith-prompts", type=int, default=8)
    ap.add_argument("--faith-shard", type=int, default=4, help="prompts per unit")
    ap.add_argument("--faith-probes", type=int, default=2)
    ap.add_argument("--faith-steps", type=int, default=100)
    ap.add_argument("--faith-ig-steps", type=int, default=20)
    ap.add_argument("--faith-masks", type=int, default=8, help="Bernoulli masks per soft metric")
    args = ap.parse_args()
    import ray
    import torch

    jobs, backends = args.jobs.split(","), args.backends.split(",")
    bad = sorted(set(backends) - {"local", "ray1", "ray2"})
    if bad:
        ap.error(f"--backends {args.backends}: unknown {bad}; valid: local, ray1, ray2")
    walls: dict[str, dict[str, float]] = {job: {} for job in jobs}
    units: dict[str, int] = {}
    print(f"{os.cpu_count()} CPUs, torch {torch.get_num_threads()} threads in this process", flush=True)
    _warm(args, jobs)
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as scratch:
        for job in jobs if "local" in backends else ():
            t0 = time.perf_counter()
            _, units[job] = JOBS[job](args, Store(Path(scratch) / f"{job}-local"), "local")
            walls[job]["local"] = time.perf_counter() - t0
            print(f"{job}: local {walls[job]['local']:.1f} s ({units[job]} units)", flush=True)
        for cpus in [c for c in (1, 2) if f"ray{c}" in backends]:
            t0 = time.perf_counter()
            ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": {"PYTHONPATH": str(Path(__file__).resolve().parent.parent)}})
            print(f"ray.init with {cpus} CPU(s): {time.perf_counter() - t0:.1f} s", flush=True)
            try:
                for job in jobs:
                    t0 = time.perf_counter()
                    _, units[job] = JOBS[job](args, Store(Path(scratch) / f"{job}-ray{cpus}"), "ray")
                    walls[job][f"ray{cpus}"] = time.perf_counter() - t0
                    print(f"{job}: ray {cpus} worker(s) {walls[job][f'ray{cpus}']:.1f} s", flush=True)
            finally:
                ray.shutdown()
    nan = float("nan")
    print(f"\n{'job':<12} {'units':>5} {'local s':>9} {'ray 1 s':>9} {'ray 2 s':>9} {'ray2/local':>10} "
          f"{'overhead/unit (ray 1 - local)':>30}")
    for job in jobs:
        w = {b: walls[job].get(b, nan) for b in ("local", "ray1", "ray2")}
        print(f"{job:<12} {units[job]:>5} {w['local']:9.2f} {w['ray1']:9.2f} {w['ray2']:9.2f} "
              f"{w['ray2'] / w['local']:10.2f} {(w['ray1'] - w['local']) / units[job]:27.3f} s")


if __name__ == "__main__":
    main()
