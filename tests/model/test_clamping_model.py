"""Clamping verification on tiny models with planted neurons (known answers) and on SmolLM2."""

from __future__ import annotations

import pytest

from interp.methods.neurons.clamping import ClampConfig, clamp_sweep
from interp.methods.neurons.decoding import DecodeConfig, decode_neurons


@pytest.mark.model
def test_smollm2_last_layer_specialised_neuron_beats_controls(smollm2):
    decoded = decode_neurons(smollm2, 29, "down", DecodeConfig(top_k=1))
    index = int(decoded.max_prob.argmax())
    target = int(decoded.top_ids[index, 0])
    r = clamp_sweep(smollm2, 29, index, "I went to the", target,
                    ClampConfig(values=(0.0, 20.0), n_controls=4, neutral_prompts=("The weather today is",)))
    assert r.target_probs[-1] > r.baseline_prob
    assert r.beats_mean
