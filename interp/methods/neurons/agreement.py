"""Cross-model agreement of decoded neurons: do two checkpoints' neurons mean the same tokens?

Davies et al. ("Decoding specialised feature neurons in LLMs with the final projection
layer") find that over 75% of Llama 3.1 8B's up-projection neurons keep their top decoded
token from the base to the instruct model.

1. Decode every neuron of both models (same architecture: same layers, d_mlp and
   tokenizer) with `interp.methods.neurons.decoding` - each through its own final norm and
   unembedding.
2. Neuron (l, i) agrees when its top token is the same in both models.
3. Agreement = the fraction of agreeing neurons, overall and per layer.

Comparing stored top-1 ids needs no model at all (`agreement_from_ids`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from interp.methods.neurons.decoding import DecodeConfig, decode_neurons


@dataclass(frozen=True)
class Agreement:
    """Top-token agreement between two models."""

    fraction: float
    """Agreeing neurons / all compared neurons."""
    per_layer: dict[int, float]
    """Layer -> fraction of its neurons that agree."""
    n_neurons: int
    disagreeing: list[tuple[int, int]]
    """(layer, index) of every neuron whose top token differs."""


def agreement_from_ids(ids_a: dict[int, np.ndarray], ids_b: dict[int, np.ndarray]) -> Agreement:
    """Agreement of top-1 token ids given per layer as (d_mlp,) arrays (same layers in both)."""
    if set(ids_a) != set(ids_b):
        raise ValueError(f"the two models cover different layers: {sorted(ids_a)} vs {sorted(ids_b)}")
    per_layer, bad, total, same = {}, [], 0, 0
    for layer in sorted(ids_a):
        a, b = np.asarray(ids_a[layer]), np.asarray(ids_b[layer])
        if a.shape != b.shape:
            raise ValueError(f"layer {layer}: {a.shape[0]} neurons vs {b.shape[0]}; the architectures differ")
        eq = a == b
        per_layer[layer] = float(eq.mean())
        bad += [(layer, int(i)) for i in np.nonzero(~eq)[0]]
        total, same = total + eq.size, same + int(eq.sum())
    if total == 0:
        raise ValueError("no neurons to compare")
    return Agreement(same / total, per_layer, total, bad)


def top_token_agreement(adapter_a, adapter_b, direction: str = "up", variant: str = "folded",
                        layers: Sequence[int] | None = None) -> Agreement:
    """Steps 1-3 for two loaded models (`ModelAdapter`s of the same architecture)."""
    ia, ib = adapter_a.info, adapter_b.info
    if (ia.n_layers, ia.d_mlp, ia.d_vocab) != (ib.n_layers, ib.d_mlp, ib.d_vocab):
        shape_a, shape_b = (ia.n_layers, ia.d_mlp, ia.d_vocab), (ib.n_layers, ib.d_mlp, ib.d_vocab)
        raise ValueError(f"models differ in (layers, d_mlp, vocab): {adapter_a.name} {shape_a} vs "
                         f"{adapter_b.name} {shape_b}")
    layers = range(ia.n_layers) if layers is None else [adapter_a.check_layer(layer) for layer in layers]
    config = DecodeConfig(top_k=1, variant=variant)
    top = lambda ad, layer: decode_neurons(ad, layer, direction, config).top_ids[:, 0].numpy()  # noqa: E731
    return agreement_from_ids({layer: top(adapter_a, layer) for layer in layers},
                              {layer: top(adapter_b, layer) for layer in layers})
