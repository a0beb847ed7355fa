"""The model adapter: loading paths, tokenisation, caching, interventions, weights, errors."""

from __future__ import annotations

import pytest
import torch

from interp.models import AddVector, ClampUnit, ReplaceActivation


FAMILIES = ["gpt2", "llama", "neox"]


# ----- offline hub-style path: tiny random models saved to a directory ------------------------
@pytest.mark.parametrize("family", FAMILIES)
def test_tiny_model_loads_through_directory_path(tiny_models, family):
    model = tiny_models[family]
    assert model.info.n_layers == 2
    assert model.info.norm == ("rms" if family == "llama" else "layer")
    assert model.info.gated_mlp == (family == "llama")
    logits = model.logits("The cat sat on the mat")
    assert logits.shape[-1] == model.info.d_vocab
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("family", FAMILIES)
def test_weights_reproduce_mlp_output(tiny_models, family):
    model = tiny_models[family]
    sites = model.sites(1)
    out = model.run("The dog ate the bone", names=[sites.mlp_in, sites.mlp_hidden, sites.mlp_out])
    w = model.weights.layer(1, fold_norms=True)
    x = out.cache[sites.mlp_in]
    torch.testing.assert_close(w.mlp.hidden(x), out.cache[sites.mlp_hidden], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(w.mlp(x), out.cache[sites.mlp_out], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("family", FAMILIES)
def test_unfolded_weights_with_norm_reproduce_mlp_output(tiny_models, family):
    model = tiny_models[family]
    sites = model.sites(0)
    resid_name = sites.resid_pre if family == "neox" else sites.resid_mid
    out = model.run("She said that he was a nurse", names=[resid_name, sites.mlp_out])
    w = model.weights.layer(0)
    by_hand = w.mlp(w.ln2(out.cache[resid_name]))
    torch.testing.assert_close(by_hand, out.cache[sites.mlp_out], atol=1e-4, rtol=1e-4)


def test_gqa_weights_shapes(tiny_models):
    model = tiny_models["llama"]
    w = model.weights.layer(0).attn
    assert w.W_Q.shape == (4, 32, 8) and w.W_K.shape == (2, 32, 8)
    assert [w.kv_head(h) for h in range(4)] == [0, 0, 1, 1]
    assert w.W_OV(3).shape == (32, 32)


def test_attention_weights_reproduce_head_output(tiny_models):
    """z = pattern @ (x W_V + b_V) per head, and attn_out = sum_h z_h W_O + b_O."""
    model = tiny_models["llama"]
    s = model.sites(1)
    out = model.run("The capital of France is Paris", names=[s.attn_in, s.attn_pattern, s.attn_out])
    w = model.weights.layer(1, fold_norms=True).attn
    x = out.cache[s.attn_in][0]  # (pos, d_model)
    pattern = out.cache[s.attn_pattern][0]  # (head, q, k)
    total = w.b_O.clone()
    for h in range(w.n_heads):
        v = x @ w.W_V[w.kv_head(h)] + w.b_V[w.kv_head(h)]  # (pos, d_head)
        total = total + (pattern[h] @ v) @ w.W_O[h]
    torch.testing.assert_close(total, out.cache[s.attn_out][0], atol=1e-4, rtol=1e-4)


def test_interventions_clean_up_bit_identical(tiny_models):
    model = tiny_models["gpt2"]
    tokens = model.to_tokens("The movie was great")
    before = model.logits(tokens)
    site = model.sites(0).mlp_hidden
    with model.intervene(ClampUnit(site, 3, 50.0)):
        clamped = model.logits(tokens)
    assert not torch.equal(clamped, before)
    assert torch.equal(model.logits(tokens), before)
    vec = torch.ones(model.info.d_model)
    steered = model.logits(tokens, interventions=[AddVector(model.sites(1).resid_pre, vec, scale=5.0)])
    assert not torch.equal(steered, before)
    zeroed = model.logits(tokens, interventions=[ReplaceActivation(model.sites(1).mlp_out, torch.zeros_like)])
    assert not torch.equal(zeroed, before)
    assert torch.equal(model.logits(tokens), before)


def test_intervention_removed_after_error(tiny_models):
    model = tiny_models["gpt2"]
    tokens = model.to_tokens("The dog")
    before = model.logits(tokens)
    with pytest.raises(RuntimeError):
        with model.intervene(ClampUnit(model.sites(0).mlp_hidden, 0, 9.0)):
            raise RuntimeError("boom")
    assert torch.equal(model.logits(tokens), before)


def test_clamp_sets_value_seen_downstream(tiny_models):
    model = tiny_models["llama"]
    site = model.sites(0).mlp_hidden
    out = model.run("The cat", names=[site], interventions=[ClampUnit(site, 7, 3.5, positions=-1)])
    acts = out.cache[site]
    assert acts[0, -1, 7].item() == pytest.approx(3.5)


def test_stop_at_layer_returns_residual(tiny_models):
    model = tiny_models["llama"]
    name = model.sites(0).resid_post
    full = model.run("The cat sat", names=[name])
    early = model.run("The cat sat", names=[name], stop_at_layer=1)
    assert early.output.shape[-1] == model.info.d_model
    torch.testing.assert_close(early.cache[name], full.cache[name])


def test_bos_policy_and_batches(tiny_models):
    model = tiny_models["llama"]
    with_bos = model.to_tokens("The cat", prepend_bos=True)
    without = model.to_tokens("The cat", prepend_bos=False)
    assert with_bos[0, 0].item() == model.info.bos_token_id
    assert with_bos.shape[1] == without.shape[1] + 1
    batch = model.tokenize(["The cat sat on the mat", "The dog"])
    assert batch.tokens.shape[0] == 2 and batch.lengths.tolist()[0] > batch.lengths.tolist()[1]
    # Right padding never changes earlier positions of a causal model.
    single = model.logits("The dog")
    torch.testing.assert_close(model.logits(batch.tokens)[1, : batch.lengths[1]], single[0], atol=1e-4, rtol=1e-4)


# ----- errors a person can act on ----------------------------------------------------------
def test_clear_errors(tiny_models):
    model = tiny_models["gpt2"]
    with pytest.raises(ValueError, match="valid layers are 0..1"):
        model.sites(5)
    with pytest.raises(ValueError, match="non-empty"):
        model.to_tokens("")
    with pytest.raises(ValueError, match="context"):
        model.to_tokens("the cat " * 100)
    with pytest.raises(ValueError, match="valid 0..127"):
        model.check_index(model.sites(0).mlp_hidden, 128)
    with pytest.raises(ValueError, match="unknown site"):
        model.run("The cat", names=["blocks.0.not_a_hook"])


@pytest.mark.parametrize("family", FAMILIES)
def test_vocab_strings_are_what_decode_gives_each_token(tiny_models, family):
    model = tiny_models[family]
    strings = model.vocab_strings()
    assert len(strings) == model.info.d_vocab
    assert list(strings) == model.tokenizer.batch_decode([[i] for i in range(model.info.d_vocab)])
    assert model.vocab_strings() is strings  # cached


@pytest.mark.parametrize("family", FAMILIES)
def test_last_position_run_gives_the_last_logits_and_full_earlier_sites(tiny_models, family):
    model = tiny_models[family]
    tokens = model.to_tokens(["a b c d e", "f g h i j"])
    site = model.sites(1).resid_post
    full = model.run(tokens, names=[site])
    last = model.run(tokens, names=[site], last_position=True)
    assert last.output.shape == (2, 1, model.info.d_vocab)
    assert torch.allclose(last.output[:, 0], full.output[:, -1], atol=1e-5)
    assert torch.equal(last.cache[site], full.cache[site])  # sites before the final norm keep every position
    with pytest.raises(ValueError, match="last_position"):
        model.run(tokens, stop_at_layer=1, last_position=True)
