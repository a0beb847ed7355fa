"""LM-head neuron decoding: hand-built cases with known answers, blocked vs reference, real models."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from interp.methods.neurons.decoding import DecodeConfig, available_directions, decode_neurons, decode_one, neuron_directions


@pytest.mark.parametrize("family", ["gpt2", "llama", "neox"])
def test_folded_decoding_is_the_models_own_final_norm_and_unembedding(tiny_models, family):
    model = tiny_models[family]
    w = model.weights
    for direction in available_directions(model.info.gated_mlp):
        dirs = neuron_directions(w, 1, direction)
        assert dirs.shape == (model.info.d_mlp, model.info.d_model)
        out = decode_neurons(model, 1, direction, DecodeConfig(top_k=3, chunk_size=17))
        # The model's own final norm, without its bias and eps (the same for every neuron /
        # negligible against a real residual, but not against a small weight vector).
        norm = dataclasses.replace(w.final_norm, eps=0.0)
        bias = norm.bias if norm.bias is not None else 0.0
        logits = (norm(dirs) - bias) @ w.W_U
        assert torch.equal(out.top_ids, logits.topk(3, dim=1).indices), direction
        assert torch.allclose(out.top_logits, logits.topk(3, dim=1).values, rtol=1e-4, atol=1e-5)
    if not model.info.gated_mlp:
        with pytest.raises(ValueError, match="gated"):
            neuron_directions(w, 0, "gate")


def test_down_direction_is_what_the_neuron_adds_to_the_residual(tiny_models):
    model = tiny_models["llama"]
    sites = model.sites(1)
    tokens = model.to_tokens("The cat sat on the mat")
    cache = model.run(tokens, names=[sites.mlp_hidden, sites.mlp_out]).cache
    hidden = cache[sites.mlp_hidden][0, -1]
    rebuilt = hidden @ neuron_directions(model.weights, 1, "down")  # sum_i h_i W_out[i]
    assert torch.allclose(rebuilt, cache[sites.mlp_out][0, -1], atol=1e-4)


def test_decode_one_matches_the_whole_layer(tiny_models):
    model = tiny_models["llama"]
    layer = decode_neurons(model, 0, "gate", DecodeConfig(top_k=4))
    one = decode_one(model, 0, 7, "gate", DecodeConfig(top_k=4))
    assert torch.equal(one.top_ids[0], layer.top_ids[7])
    with pytest.raises(ValueError, match="out of range"):
        decode_one(model, 0, 10_000)
