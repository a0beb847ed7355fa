"""The model adapter: loading paths, tokenisation, caching, interventions, weights, errors."""

from __future__ import annotations

import pytest
import torch

from interp.models import ClampUnit


# ----- the real embedded model ----------------------------------------------------------------
@pytest.mark.model
def test_smollm2_paris(smollm2):
    assert smollm2.info.n_layers == 30 and smollm2.info.d_model == 576 and smollm2.info.d_mlp == 1536
    assert smollm2.info.n_kv_heads == 3 and smollm2.info.d_vocab == 49152
    logits = smollm2.logits("The capital of France is")
    assert smollm2.decode(logits[0, -1].argmax()) == " Paris"


@pytest.mark.model
def test_smollm2_vocab_strings_are_what_decode_gives(smollm2):
    strings = smollm2.vocab_strings()
    ids = list(range(0, smollm2.info.d_vocab, 97)) + [smollm2.info.d_vocab - 1]
    assert [strings[i] for i in ids] == [smollm2.decode([i]) for i in ids]


@pytest.mark.model
def test_smollm2_cached_activation_equals_manual_hook(smollm2):
    site = smollm2.sites(7).mlp_hidden
    tokens = smollm2.to_tokens("The capital of France is")
    seen = {}

    def grab(act, hook):
        seen["act"] = act.detach().clone()

    with smollm2.hooks(fwd_hooks=[(site, grab)]), torch.no_grad():
        smollm2.bridge(tokens)
    cached = smollm2.run(tokens, names=[site]).cache[site]
    assert torch.equal(cached, seen["act"])


@pytest.mark.model
def test_smollm2_weights_reproduce_mlp_and_interventions_restore(smollm2):
    sites = smollm2.sites(12)
    tokens = smollm2.to_tokens("The quick brown fox jumps over the lazy dog")
    out = smollm2.run(tokens, names=[sites.mlp_in, sites.mlp_out])
    w = smollm2.weights.layer(12, fold_norms=True)
    torch.testing.assert_close(w.mlp(out.cache[sites.mlp_in]), out.cache[sites.mlp_out], atol=1e-4, rtol=1e-4)
    with smollm2.intervene(ClampUnit(sites.mlp_hidden, 100, 20.0)):
        changed = smollm2.logits(tokens)
    assert not torch.equal(changed, out.output)
    assert torch.equal(smollm2.logits(tokens), out.output)


@pytest.mark.model
def test_smollm2_final_norm_and_unembed_reproduce_logits(smollm2):
    tokens = smollm2.to_tokens("Hello world")
    out = smollm2.run(tokens, names=[smollm2.final_resid_site])
    w = smollm2.weights
    by_hand = w.final_norm(out.cache[smollm2.final_resid_site]) @ w.W_U + w.b_U
    torch.testing.assert_close(by_hand, out.output, atol=1e-3, rtol=1e-4)
