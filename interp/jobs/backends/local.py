"""The local backend: a job's units in this process (`interp.jobs.units.Job.run_local`).

Most jobs run their units one after another. The neuron map overlaps them: `run_local` does
one model's layers one group after another.

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

from typing import Callable

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
              on_layer: Callable[[dict], None] | None = None) -> list[int]:
    """Decode and write the layers of `todo` (layer -> units) of `adapter`; returns the layers written.

    `on_layer`: called with what each layer's write returned, as it lands."""
    vocab = vocab_strings(adapter)
    sites = {layer: adapter.sites(layer).mlp_hidden for layer in todo}
    existing = existing_features(store, adapter.store_name, list(sites.values()))  # one read for the whole model
    written: list[int] = []
    order = sorted(todo)

    def landed(done: Future) -> None:  # re-raises a failed write
        result = done.result()
        written.append(result["layer"])
        if on_layer is not None:
            on_layer(result)

    with ThreadPoolExecutor(1, thread_name_prefix="map-neurons-writer", initializer=_background_priority) as writer:
        pending: list[Future] = []
        for g in range(0, len(order), GROUP):
            group = {layer: todo[layer] for layer in order[g:g + GROUP]}
            decoded = decode_group(adapter, group, decode)
            for done in pending:  # the previous group's writes
                landed(done)
            pending = [writer.submit(write_decoded, store, adapter, layer, decoded[layer], decode.top_k, run_id,
                                     vocab, existing.get(sites[layer])) for layer in group]
        for done in pending:
            landed(done)
    return written
