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
