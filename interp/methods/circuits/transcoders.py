"""Transcoders for circuits: the stored ones of a model, and random ones for bookkeeping checks.

1. `load_transcoders` - named store dictionaries, checked to be MLP transcoders (reading a
   layer's ``ln2`` output, one per layer), loaded through `interp.dictionaries.io`.
2. `transcoders_of` - the stored transcoders of a model, the latest name per layer.
3. `random_transcoders` - random weights with the same interface, where none are trained.

The dictionaries-table reads are in `interp.methods.circuits.store`.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch

from interp.methods.circuits import store as circuit_store
from interp.methods.circuits.trace import Transcoder
from interp.sites import layer_of


def load_transcoders(store, names: Sequence[str], adapter) -> tuple[dict[int, Transcoder], dict[int, str]]:
    """({layer: transcoder}, {layer: name}) for store dictionaries `names` of `adapter`'s model.

    Each must be a transcoder from a layer's ``mlp_in`` to its ``mlp_out``; one per layer.
    """
    from interp.dictionaries.io import load_dictionary

    rows = circuit_store.dictionary_rows(store, names)
    out, labels = {}, {}
    for row in rows.itertuples():
        layer = layer_of(row.site)
        if row.kind != "transcoder" or layer is None or row.site != adapter.sites(layer).mlp_in:
            raise ValueError(f"dictionary {row.name!r} ({row.kind} on {row.site}) is not an MLP transcoder; "
                             f"circuits need transcoders reading blocks.L.ln2.hook_normalized")
        if layer in out:
            raise ValueError(f"two transcoders at layer {layer}: {labels[layer]!r} and {row.name!r}; pass one per layer")
        out[layer], labels[layer] = load_dictionary(store, row.name)[0], row.name
    return out, labels


def transcoders_of(store, model: str) -> list[str]:
    """Names of the stored transcoders of `model` (latest per layer, by name order)."""
    rows = circuit_store.transcoder_rows(store, model)
    if rows.empty:
        return []
    rows = rows.assign(layer=[layer_of(s) for s in rows["site"]]).sort_values(["layer", "name"])
    return rows.groupby("layer")["name"].last().tolist()


def random_transcoders(adapter, layers: Sequence[int], d_sae: int, k: int | None = None,
                       seed: int = 0) -> Mapping[int, Transcoder]:
    """Transcoders with random weights (unit decoder rows, W_enc = W_dec^T, TopK if `k`).

    Their latents mean nothing: they exercise the exact bookkeeping (attribution sums, error
    terms, ablations) where no trained transcoders exist.
    """
    from interp.dictionaries import Dictionary

    g = torch.Generator().manual_seed(seed)
    d = adapter.info.d_model
    out = {}
    for layer in layers:
        tc = Dictionary(d, d_sae, d, kind="transcoder", arch="topk" if k else "relu", k=k)
        tc.init_weights(g)
        with torch.no_grad():
            tc.W_enc.copy_(tc.W_dec.T)
        out[adapter.check_layer(layer)] = tc.eval()
    return out


