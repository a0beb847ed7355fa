"""The decoded tokens of ObsProp vectors: what each vector promotes through the unembedding.

A feature vector ``y`` lives at its first component's input site (a normalised input, or the
embeddings). Decoding it:

1. Residual-stream version ``r = P y`` (`propagation.to_residual`: LayerNorm centring; RMSNorm
   and the embeddings: ``r = y``) - the unembedding reads the residual stream, not a norm's output.
2. ``r`` through the final norm and the unembedding with the neurons' decoder
   (`interp.methods.neurons.decoding.decode_directions`, variant ``folded`` by default): top and
   bottom tokens with their logits and probabilities, exactly as a neuron's ``down`` direction.
3. Rows of the store's ``feature_tokens`` table (`interp.methods.neurons.store.token_rows`),
   direction `DIRECTION`, one feature per vector with the identity `save_obsprop` gives it.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import torch

from interp.methods.neurons.decoding import DecodeConfig, decode_directions
from interp.methods.neurons.store import token_rows
from interp.methods.obsprop.propagation import FeatureVector, to_residual

DIRECTION = "vector"
"""The ``direction`` value of an ObsProp vector's decoded-token rows."""


def residual_directions(adapter, vectors: Sequence[FeatureVector]) -> torch.Tensor:
    """(n, d_model) step 1 for each vector."""
    return torch.stack([to_residual(adapter, fv.component, fv.vector.detach().float()) for fv in vectors])


def decoded_token_rows(adapter, vectors: Sequence[tuple[str, FeatureVector]],
                       config: DecodeConfig = DecodeConfig()) -> pa.Table:
    """Steps 1-3 for (feature source, vector) pairs: their ``feature_tokens`` rows.

    A zero vector (a component with no path to the observable) decodes to nothing: it is left out.
    """
    kept = [(source, fv) for source, fv in vectors if float(fv.vector.norm()) > 0]
    if not kept:
        return pa.table({})
    weights = adapter.weights
    decoded = decode_directions(residual_directions(adapter, [fv for _, fv in kept]), weights.W_U,
                                weights.final_norm, config)
    vocab = pa.array(adapter.vocab_strings(), pa.string())
    parts = [token_rows(adapter.store_name, fv.site, DIRECTION, config.variant, decoded.rows(i, i + 1), vocab,
                        kind="obsprop", source=source, indices=[fv.component.index])
             for i, (source, fv) in enumerate(kept)]
    return pa.concat_tables(parts)
