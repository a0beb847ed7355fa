"""LM-head neuron decoding: hand-built cases with known answers, blocked vs reference, real models."""

from __future__ import annotations


import pytest
import torch

from interp.methods.neurons.decoding import DecodeConfig, decode_directions, neuron_directions, reference_decode


@pytest.mark.model
def test_smollm2_blocked_top_tokens_match_float64_reference(smollm2):
    w = neuron_directions(smollm2.weights, 29, "down")[:256]
    got = decode_directions(w, smollm2.weights.W_U, smollm2.weights.final_norm, DecodeConfig(top_k=5))
    ref = reference_decode(w, smollm2.weights.W_U, smollm2.weights.final_norm, "folded", 5)
    assert (got.top_ids[:, 0] == ref.top_ids[:, 0]).float().mean() >= 0.999
    assert (got.bottom_ids[:, 0] == ref.bottom_ids[:, 0]).float().mean() >= 0.999
    assert torch.allclose(got.max_prob.double(), ref.max_prob, rtol=1e-3)
    assert torch.allclose(got.entropy.double(), ref.entropy, rtol=1e-3, atol=1e-4)
