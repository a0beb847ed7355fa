"""The local backend of the neuron map: one model's layers one group after another, in this process.

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

from interp.jobs.neuron_map_unit import Units, decode_group, vocab_strings, write_decoded
from interp.methods.neurons.decoding import DecodeConfig
from interp.methods.neurons.store import existing_features

GROUP = 3
"""Layers decoded in one go (their tiles flow without a barrier at each layer's end)."""


def _background_priority() -> None:
    # The writer yields the cores to decoding and runs in its gaps (Linux threads take their
    # own nice value; elsewhere this is a no-op).
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


def run_local(store, adapter, todo: dict[int, Units], decode: DecodeConfig, run_id: str,
              progress: bool = True) -> list[int]:
    """Decode and write the layers of `todo` (layer -> units) of `adapter`; returns the layers written."""
    model = adapter.store_name
    vocab = vocab_strings(adapter)
    sites = {layer: adapter.sites(layer).mlp_hidden for layer in todo}
    existing = existing_features(store, model, list(sites.values()))  # one read for the whole model
    written: list[int] = []
    order = sorted(todo)
    with ThreadPoolExecutor(1, thread_name_prefix="map-neurons-writer", initializer=_background_priority) as writer, \
            tqdm(total=len(order), desc=f"map-neurons {model}", unit="layer", disable=not progress) as bar:
        pending: list[Future] = []
        for g in range(0, len(order), GROUP):
            group = {layer: todo[layer] for layer in order[g:g + GROUP]}
            decoded = decode_group(adapter, group, decode)
            for done in pending:  # the previous group's writes; re-raises a failed one
                written.append(done.result()["layer"])
                bar.update(1)
            pending = [writer.submit(write_decoded, store, adapter, layer, decoded[layer], decode.top_k, run_id,
                                     vocab, existing.get(sites[layer])) for layer in group]
        for done in pending:
            written.append(done.result()["layer"])
            bar.update(1)
    return written
