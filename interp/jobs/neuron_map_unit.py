"""The neuron map's unit of work: decode a group of layers of one model and write them.

The job (`interp.jobs.neuron_map.NeuronMapJob`) plans which layers to do; a Ray task runs
`map_group` for one layer, the local backend (`interp.jobs.backends.local`) decodes and
writes groups of layers with the functions below.

1. `decode_group`: for each (direction, variant) requested in the group, the group's neuron
   directions go through one `decode_directions` call (chunked GEMM and reductions), so the
   worker threads run from the first layer's tiles to the last without a barrier at each
   layer's end.
2. `write_decoded`: one decoded layer's rows (tokens, features, markers) go to the store
   through `interp.methods.neurons.store.write_layer`.
`map_group` does both for a group; the local backend interleaves them (decodes the next
group while a writer thread writes this one).
"""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Sequence

import pandas as pd
import pyarrow as pa
import torch

from interp.methods.neurons.decoding import DecodeConfig, decode_directions, neuron_directions
from interp.methods.neurons.store import existing_features, write_layer

Units = Sequence[tuple[str, str]]
"""(direction, variant) pairs of one layer."""


def load(model):
    """A `ModelAdapter` for a name, or `model` itself if it is one already."""
    if isinstance(model, str):
        from interp.models import load_model

        return load_model(model)
    return model


def vocab_strings(adapter) -> pa.Array:
    """(d_vocab,) string array: the decoded string of every token id."""
    return pa.array(adapter.vocab_strings(), pa.string())


def decode_group(adapter, todo: dict[int, Units], decode: DecodeConfig) -> dict[int, dict]:
    """Layer -> ``"direction/variant"`` -> `DecodedDirections` of every neuron of the layers in `todo`.

    `decode`: top_k, chunk_size and reduction backend (its variant is set per unit).
    """
    decoded: dict[int, dict] = {layer: {} for layer in todo}
    for direction, variant in dict.fromkeys(u for units in todo.values() for u in units):
        layers = [layer for layer, units in todo.items() if (direction, variant) in units]
        w = torch.cat([neuron_directions(adapter.weights, layer, direction) for layer in layers])  # (layers d_mlp, d)
        result = decode_directions(w, adapter.weights.W_U, adapter.weights.final_norm, replace(decode, variant=variant))
        result = _on_cpu(result)  # rows are built from host memory
        n = len(w) // len(layers)
        for i, layer in enumerate(layers):
            decoded[layer][f"{direction}/{variant}"] = result.rows(i * n, (i + 1) * n)
    return decoded


def _on_cpu(result):
    """A `DecodedDirections` with every tensor on the CPU (itself when it is there already)."""
    tensors = {f.name: getattr(result, f.name) for f in fields(result)
               if isinstance(getattr(result, f.name), torch.Tensor)}
    if all(t.device.type == "cpu" for t in tensors.values()):
        return result
    return replace(result, **{name: t.cpu() for name, t in tensors.items()})


def write_decoded(store, adapter, layer: int, decoded: dict, top_k: int, run_id: str, vocab: pa.Array,
                  existing: pd.DataFrame | None) -> dict:
    """Write one decoded layer of `adapter` (under its `store_name`); returns what was written."""
    return write_layer(store, adapter.store_name, adapter.sites(layer).mlp_hidden, layer, adapter.info.d_mlp,
                       decoded, top_k, run_id, vocab, existing)


def map_group(store, adapter, todo: dict[int, Units], decode: DecodeConfig, run_id: str,
              vocab: pa.Array | None = None) -> list[dict]:
    """Decode and write the layers of `todo` (layer -> units), merging into the stored feature rows."""
    vocab = vocab_strings(adapter) if vocab is None else vocab
    sites = {layer: adapter.sites(layer).mlp_hidden for layer in todo}
    existing = existing_features(store, adapter.store_name, list(sites.values()))
    decoded = decode_group(adapter, todo, decode)
    return [write_decoded(store, adapter, layer, decoded[layer], decode.top_k, run_id, vocab,
                          existing.get(sites[layer])) for layer in sorted(todo)]
