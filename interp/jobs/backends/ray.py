"""The Ray backend of the neuron map: one Ray task per (model, layer).

Workers load the model by name (once per worker process) and write their layer straight
into the store, which must be on a filesystem every worker sees; the driver only waits and
counts. ``ray.init()`` starts a local instance unless an address is given.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

from tqdm.auto import tqdm

from interp.jobs.neuron_map_unit import Units, load, map_group, vocab_strings
from interp.methods.neurons.decoding import DecodeConfig


@lru_cache(maxsize=2)
def _worker_model(name: str):
    adapter = load(name)
    return adapter, vocab_strings(adapter)


def _layer_task(root: str, name: str, layer: int, units: Units, decode: DecodeConfig, run_id: str) -> dict:
    from interp.store import Store

    adapter, vocab = _worker_model(name)
    return map_group(Store(root), adapter, {layer: units}, decode, run_id, vocab)[0]


def run_ray(store, work: Sequence[tuple[str, dict[int, Units]]], decode: DecodeConfig, run_id: str,
            progress: bool = True, address: str | None = None) -> dict[str, list[int]]:
    """Map `work` ((model name, layer -> units) pairs) with one task per layer; store name -> layers written."""
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    try:
        task = ray.remote(num_cpus=1)(_layer_task)
        pending = [task.remote(str(store.root), name, layer, units, decode, run_id)
                   for name, todo in work for layer, units in sorted(todo.items())]
        written: dict[str, list[int]] = {}
        with tqdm(total=len(pending), desc="map-neurons (ray)", unit="layer", disable=not progress) as bar:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for result in ray.get(done):
                    written.setdefault(result["model"], []).append(result["layer"])
                    bar.update(1)
        return {model: sorted(layers) for model, layers in written.items()}
    finally:
        if started:
            ray.shutdown()
