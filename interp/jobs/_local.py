"""The local backend of `interp.jobs.neuron_map`: layers one after another in this process.

Layers are decoded in groups of `GROUP` (the GEMMs and reductions on every core, with no
barrier between the group's layers), and writing a group (building rows, Parquet encoding,
fsync) overlaps decoding the next: one writer thread takes each decoded layer, and at most
one group waits for it, so memory holds two groups' results at most. A write error stops
the job at the next group; layers whose markers were written are complete either way.
"""

from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor

from tqdm.auto import tqdm

from interp.jobs.neuron_map import decode_layers, existing_features, plan, vocab_strings, write_layer
from interp.models.registry import store_model_name


GROUP = 3
"""Layers decoded in one go (their tiles flow without a barrier at each layer's end)."""


def load(model):
    """A `ModelAdapter` for a name, or `model` itself if it is one already."""
    if isinstance(model, str):
        from interp.models import load_model

        return load_model(model)
    return model


def register_model(store, adapter, model: str, run_id: str) -> None:
    info = adapter.info
    store.write("models", [{
        "model": model, "architecture": info.to_dict(), "n_layers": info.n_layers, "d_model": info.d_model,
        "d_mlp": info.d_mlp, "d_vocab": info.d_vocab, "n_heads": info.n_heads, "n_ctx": info.n_ctx,
        "info": {"prepend_bos": adapter.prepend_bos, "norms_folded": False},
    }], run_id=run_id)


def _background_priority() -> None:
    # The writer yields the cores to decoding and runs in its gaps (Linux threads take their
    # own nice value; elsewhere this is a no-op).
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


def run_local(store, models, config, run_id, summary, progress: bool, force: bool) -> None:
    with ThreadPoolExecutor(1, thread_name_prefix="map-neurons-writer", initializer=_background_priority) as writer:
        for spec in models:
            adapter = load(spec)
            model = store_model_name(spec if isinstance(spec, str) else adapter.name)
            todo = plan(store, adapter.info, model, config, force)
            layers = config.layers if config.layers is not None else range(adapter.info.n_layers)
            summary.skipped[model] = [layer for layer in layers if layer not in todo]
            summary.mapped[model] = []
            if not todo:
                continue
            register_model(store, adapter, model, run_id)
            vocab = vocab_strings(adapter)
            sites = {layer: adapter.sites(layer).mlp_hidden for layer in todo}
            existing = existing_features(store, model, list(sites.values()))  # one read for the whole job
            pending: list[Future] = []
            order = sorted(todo)
            with tqdm(total=len(order), desc=f"map-neurons {model}", unit="layer", disable=not progress) as bar:
                for g in range(0, len(order), GROUP):
                    group = {layer: todo[layer] for layer in order[g:g + GROUP]}
                    decoded = decode_layers(adapter, group, config)
                    for done in pending:  # the previous group's writes; re-raises a failed one
                        summary.mapped[model].append(done.result()["layer"])
                        bar.update(1)
                    pending = [writer.submit(write_layer, store, model, sites[layer], layer, adapter.info.d_mlp,
                                             decoded[layer], config, run_id, vocab, existing.get(sites[layer]))
                               for layer in group]
                for done in pending:
                    summary.mapped[model].append(done.result()["layer"])
                    bar.update(1)
