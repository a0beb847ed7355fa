"""ObsProp feature vectors: a hand-built toy with closed-form answers, then tiny real models."""

from __future__ import annotations


import pytest
import torch

from interp.methods.obsprop.observables import logit_diff, parse_observable, token_set
from interp.methods.obsprop.propagation import final_vector, head_vector, mlp_gradient_vector, obsprop, path_vector
from interp.models import ReplaceActivation


FAMILIES = ["gpt2", "llama", "neox"]


def test_observables_on_tiny_vocab(tiny_models):
    model = tiny_models["gpt2"]
    obs = parse_observable(model, [" was", "- he"])  # single tokens of the tiny vocabulary
    assert obs.vector[model.token_id(" was")] == 1 and obs.vector[model.token_id(" he")] == -1
    assert obs.vector.abs().sum() == 2
    logits = torch.randn(2, model.info.d_vocab)
    torch.testing.assert_close(obs.value(logits), logits[:, model.token_id(" was")] - logits[:, model.token_id(" he")])
    mean = logit_diff(model, [" was", " he"], " the")
    assert mean.vector[model.token_id(" was")] == 0.5 and mean.vector[model.token_id(" the")] == -1
    with pytest.raises(ValueError, match=r"tokenises as \[' s', 'he'\]"):
        token_set(model, {" she": 1.0})


# ----------------------------------------------------------------------------- tiny real models
def _obs(model):
    return logit_diff(model, " was", " he")


@pytest.mark.parametrize("family", FAMILIES)
def test_head_vector_reproduces_direct_contribution(tiny_models, family):
    """Patterns frozen: z_h W_O,h . v == sum_j A_ij a_j . y_h + bias term (exact)."""
    model = tiny_models[family]
    obs = _obs(model)
    v = final_vector(model, obs)
    layer = 1
    s = model.sites(layer)
    cache = model.run("She said that he was a nurse", names=[s.attn_in, s.attn_pattern, s.attn_z]).cache
    w = model.weights.layer(layer, fold_norms=True).attn
    a, pattern, z = cache[s.attn_in][0], cache[s.attn_pattern][0], cache[s.attn_z][0]
    for h in range(model.info.n_heads):
        y = head_vector(model, layer, h, v)
        direct = z[:, h] @ w.W_O[h] @ v  # (pos,)
        bias = w.b_V[w.kv_head(h)] @ w.W_O[h] @ v  # rows of A sum to 1
        predicted = pattern[h] @ (a @ y) + bias
        torch.testing.assert_close(predicted, direct, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("family", FAMILIES)
def test_direct_contributions_sum_to_observable(tiny_models, family):
    """Final-resid . v / scale (the norm's scalar) equals the observable up to bias terms."""
    model = tiny_models[family]
    obs = _obs(model)
    v = final_vector(model, obs)
    run = model.run("The cat sat on the mat", names=[model.final_resid_site])
    x = run.cache[model.final_resid_site][0, -1]
    norm = model.weights.final_norm
    scale = (x - x.mean() if norm.kind == "layer" else x).pow(2).mean().add(norm.eps).sqrt()
    bias = (norm.bias @ model.weights.W_U @ obs.vector if norm.bias is not None else 0) + model.weights.b_U @ obs.vector
    torch.testing.assert_close(x @ v / scale + bias, obs.value(run.output[0, -1]), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("family", FAMILIES)
def test_mlp_gradient_vector_matches_autograd(tiny_models, family):
    model = tiny_models[family]
    v = final_vector(model, _obs(model))
    s = model.sites(0)
    leaf = {}

    def as_leaf(act):  # make the MLP input a leaf of the graph so autograd differentiates w.r.t. it
        leaf["x"] = act.detach().requires_grad_(True)
        return leaf["x"]

    run = model.run(["The dog ate the bone", "The movie was great"], names=[s.mlp_out], keep_grad=True,
                    interventions=[ReplaceActivation(s.mlp_in, as_leaf)])
    x, out = leaf["x"], run.cache[s.mlp_out]
    grads = torch.autograd.grad((out[:, -1] @ v).sum(), x)[0][:, -1]  # (2, d_model): one per prompt
    ours = mlp_gradient_vector(model, 0, v, x[:, -1].detach())
    torch.testing.assert_close(ours, grads.mean(0), atol=1e-4, rtol=1e-4)


def test_obsprop_all_components_and_paths(tiny_models):
    model = tiny_models["llama"]
    obs = _obs(model)
    result = obsprop(model, obs, prompts=["The dog ate the bone", "She said that"])
    n = model.info.n_layers
    assert len(result.vectors) == 1 + n * (model.info.n_heads + 1)
    assert result.n_reference == 2
    direct = path_vector(model, obs, ["L1H2"])
    torch.testing.assert_close(direct.vector, result.vector("L1H2").vector)
    # A two-hop path: head 0.1's output read by MLP 1 - its vector is MLP-1's residual vector through head 0.1.
    two = path_vector(model, obs, ["L0H1", "M1"], prompts=["The dog ate the bone", "She said that"])
    m1 = result.vector("M1").vector
    torch.testing.assert_close(two.vector, head_vector(model, 0, 1, m1))
    assert two.site == model.sites(0).attn_in
