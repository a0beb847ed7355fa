"""The neuron-mapping job: store content, resumption after kill -9, Ray parity, several models, CLI."""

from __future__ import annotations


import pytest

from interp.jobs.neuron_map import map_model
from interp.methods.neurons.decoding import DecodeConfig, decode_neurons
from interp.store import Store


@pytest.mark.model
def test_smollm2_two_layers_into_the_store(tmp_path, smollm2):
    store = Store(tmp_path / "store")
    summary = map_model(store, smollm2, layers=[0, 29], directions=("down",), top_k=5, progress=False)
    assert summary.mapped == {"smollm2-135m": [0, 29]}
    tokens = store.read("feature_tokens", where={"model": "smollm2-135m", "site": "blocks.29.mlp.hook_post"})
    assert len(tokens) == 1536 * 2 * 5
    expected = decode_neurons(smollm2, 29, "down", DecodeConfig(top_k=5))
    top = tokens[(tokens["end"] == "top") & (tokens["rank"] == 0)].sort_values("index")
    assert (top["token_id"].to_numpy() == expected.top_ids[:, 0].numpy()).mean() >= 0.999
    assert top["token_str"].iloc[0] == smollm2.decode([int(top["token_id"].iloc[0])])
