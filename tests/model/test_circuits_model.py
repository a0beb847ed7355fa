"""Transcoder circuits: exact attribution sums, connections, graph bookkeeping, JSON, CLI."""

from __future__ import annotations


import pytest

from interp.methods.circuits.attribution import LatentTarget, LogitTarget, attribute, trace
from interp.methods.circuits.validation import ablation_check
from interp.methods.circuits.transcoders import random_transcoders


@pytest.mark.model
def test_smollm2_attribution_is_exact_and_ablations_agree(smollm2):
    """Real model, random TopK transcoders at every layer (trained ones are not assumed)."""
    tcs = random_transcoders(smollm2, range(smollm2.info.n_layers), 1024, k=16)
    prompt = "The capital of France is"
    tr = trace(smollm2, tcs, prompt)
    target = LogitTarget(smollm2.token_id(" Paris"))
    a = attribute(smollm2, tcs, prompt, target, tr=tr)
    assert abs(a.residual) < 1e-4 * abs(a.value)
    latent = LatentTarget(12, int(tr.layers[12].active_idx[-1, 0]))
    b = attribute(smollm2, tcs, prompt, latent, tr=tr)
    assert abs(b.residual) < 1e-4 * max(1.0, abs(b.value))
    check = ablation_check(smollm2, tr, latent, b, top_n=10)
    assert check.pearson > 0.3, check.frame



@pytest.mark.model
def test_smollm2_attribution_graph_is_exact(smollm2):
    """circuit-tracer's graph on the real model: every latent and logit row adds up to its value."""
    import torch

    from interp.methods.circuits.attribution_graph import AttributionConfig, attribution_graph

    prompt = "The capital of France is"
    tcs = random_transcoders(smollm2, range(smollm2.info.n_layers), 1024, k=4)
    g = attribution_graph(smollm2, tcs, prompt, AttributionConfig(max_n_logits=3))
    assert g.n_features == len(g.active_features) > 0
    logits = smollm2.logits(prompt)[0, -1]
    assert g.logit_tokens[0] == int(logits.argmax())
    assert torch.allclose(g.node_value[-g.n_logits:], (logits[g.logit_tokens] - logits.mean()).float(), atol=1e-3)
    rows = torch.cat([torch.arange(g.n_features), torch.arange(g.n_nodes - g.n_logits, g.n_nodes)])
    err = (g.adjacency[rows].sum(1) + g.node_bias[rows] - g.node_value[rows]).abs()
    assert bool((err < 1e-3 * (1 + g.node_value[rows].abs())).all()), float(err.max())
    s = g.meta["scores"]
    assert 0.0 <= s["replacement"] <= 1.0 and 0.0 <= s["completeness"] <= 1.0
