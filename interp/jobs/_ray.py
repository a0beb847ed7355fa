"""The Ray backend of `interp.jobs.neuron_map`: one Ray task per (model, layer).

Workers load the model by name (once per worker process) and write their layer straight
into the store, which must be on a filesystem every worker sees; the driver only plans,
waits and counts. ``ray.init()`` starts a local instance unless an address is given.
"""

from __future__ import annotations

from functools import lru_cache

from tqdm.auto import tqdm

from interp.jobs.neuron_map import map_layer, plan, vocab_strings
from interp.models.registry import store_model_name


@lru_cache(maxsize=2)
def _worker_model(name: str):
    from interp.jobs._local import load

    adapter = load(name)
    return adapter, vocab_strings(adapter)


def _layer_task(root: str, name: str, layer: int, units, config, run_id: str) -> dict:
    from interp.store import Store

    adapter, vocab = _worker_model(name)
    return map_layer(Store(root), adapter, store_model_name(name), layer, units, config, run_id, vocab)


def run_ray(store, models, config, run_id, summary, progress: bool, force: bool, address: str | None) -> None:
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    try:
        task = ray.remote(num_cpus=1)(_layer_task)
        pending = []
        for name in models:
            from interp.jobs._local import load, register_model

            model = store_model_name(name)
            adapter = load(name)  # for the plan (layer count, gating) and the models row
            todo = plan(store, adapter.info, model, config, force)
            layers = config.layers if config.layers is not None else range(adapter.info.n_layers)
            summary.skipped[model] = [layer for layer in layers if layer not in todo]
            summary.mapped[model] = []
            if todo:
                register_model(store, adapter, model, run_id)
            del adapter
            pending += [task.remote(str(store.root), name, layer, units, config, run_id)
                        for layer, units in sorted(todo.items())]
        with tqdm(total=len(pending), desc="map-neurons (ray)", unit="layer", disable=not progress) as bar:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for result in ray.get(done):
                    summary.mapped[result["model"]].append(result["layer"])
                    bar.update(1)
        for layers in summary.mapped.values():
            layers.sort()
    finally:
        if started:
            ray.shutdown()
