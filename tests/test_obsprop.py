"""ObsProp feature vectors: a hand-built toy with closed-form answers, then tiny real models."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from interp.methods.obsprop.observables import Observable, logit_diff, parse_observable, parse_terms, token_set
from interp.methods.obsprop.propagation import (
    Component,
    ObsPropConfig,
    coupling,
    final_vector,
    head_vector,
    mlp_gradient_vector,
    mlp_linear_vectors,
    obsprop,
    path_vector,
)
from interp.models import ReplaceActivation
from interp.models.sites import layer_sites
from interp.models.weights import AttentionWeights, LayerWeights, MLPWeights, NormWeights

FAMILIES = ["gpt2", "llama", "neox"]


# ----------------------------------------------------------------------------- hand-built toy
class _ToyWeights:
    """One block: d_model 3, vocab 4, 2 query heads sharing 1 KV head, a ReLU MLP."""

    def __init__(self, norm_kind="rms"):
        self.W_U = torch.tensor([[1., 0., 0., 2.], [0., 1., 0., 0.], [0., 0., 1., 0.]])
        self.final_norm = NormWeights(norm_kind, torch.tensor([2., 1., 0.5]), None, 1e-6)
        self.g1 = torch.tensor([1., 3., 1.])
        self.g2 = torch.tensor([0.5, 1., 2.])
        self.W_V = torch.tensor([[[1., 0.], [0., 1.], [1., 1.]]])  # (1 kv head, 3, 2)
        self.W_O = torch.tensor([[[1., 0., 0.], [0., 0., 1.]], [[0., 2., 0.], [1., 0., 0.]]])  # (2, 2, 3)
        self.W_in = torch.tensor([[1., -1.], [0., 2.], [1., 0.]])  # (3, 2)
        self.W_out = torch.tensor([[0., 1., 0.], [1., 0., 1.]])  # (2, 3)

    def layer(self, layer, fold_norms=False):
        z = torch.zeros
        attn = AttentionWeights(z(2, 3, 2), z(1, 3, 2), self.W_V, self.W_O, z(2, 2), z(1, 2), z(1, 2), z(3))
        mlp = MLPWeights(self.W_in, None, self.W_out, z(2), None, z(3), "relu")
        ln1 = NormWeights(self.final_norm.kind, self.g1, None, 1e-6)
        ln2 = NormWeights(self.final_norm.kind, self.g2, None, 1e-6)
        if fold_norms:
            attn = AttentionWeights(z(2, 3, 2), z(1, 3, 2), self.W_V * self.g1[None, :, None], self.W_O,
                                    z(2, 2), z(1, 2), z(1, 2), z(3))
            mlp = MLPWeights(self.W_in * self.g2[:, None], None, self.W_out, z(2), None, z(3), "relu")
        return LayerWeights(layer, ln1, ln2, attn, mlp)


def _toy_adapter(norm_kind="rms"):
    info = SimpleNamespace(n_layers=1, n_heads=2, d_vocab=4, d_model=3, norm=norm_kind, parallel_attn_mlp=False)

    def check_layer(layer):
        if not 0 <= layer < 1:
            raise ValueError(f"layer {layer} out of range: valid 0..0")
        return layer

    return SimpleNamespace(name="toy", info=info, weights=_ToyWeights(norm_kind), check_layer=check_layer,
                           sites=lambda l: layer_sites(check_layer(l)), embed_site="hook_embed")


def test_toy_direct_head_vectors_match_closed_form():
    toy = _toy_adapter("rms")
    n = Observable.from_vector(torch.tensor([1., -1., 0., 0.]), "a-b")
    # v = gamma_f (.) W_U n = [2,1,.5] * [1,-1,0] = [2,-1,0]
    v = final_vector(toy, n)
    torch.testing.assert_close(v, torch.tensor([2., -1., 0.]))
    # Head 0: W_O[0] v = [2, 0]; W_V[0] [2,0] = [2, 0, 2]; times g1 = [2, 0, 2].
    torch.testing.assert_close(head_vector(toy, 0, 0, v), torch.tensor([2., 0., 2.]))
    # Head 1 (same KV head under GQA): W_O[1] v = [-2, 2]; W_V [-2,2] = [-2, 2, 0]; * g1 = [-2, 6, 0].
    torch.testing.assert_close(head_vector(toy, 0, 1, v), torch.tensor([-2., 6., 0.]))
    result = obsprop(toy, n, config=ObsPropConfig(mlp_method="linear"))
    assert [fv.label for fv in result.vectors] == ["embed", "L0H0", "L0H1", "M0"]
    assert result.ranking()["component"].tolist()[0] == "L0H1"  # norm sqrt(40) > sqrt(8) > ...


def test_toy_mlp_linear_and_gradient():
    toy = _toy_adapter("rms")
    v = torch.tensor([2., -1., 0.])
    # W_out v = [-1, 2]; W_in [-1, 2] = [-3, 4, -1]; g2 (.) -> [-1.5, 4, -2]
    up, gate = mlp_linear_vectors(toy, 0, v)
    torch.testing.assert_close(up, torch.tensor([-1.5, 4., -2.]))
    assert gate is None
    # With ReLU the gradient at x is g2 (.) W_in diag(1[x W_in' > 0]) W_out v. x1 turns on only unit 0
    # (folded pre-acts [0.5, -0.5]), x2 only unit 1 ([-0.2, 2]): gradients g2*W_in[:,0]*(-1) and g2*W_in[:,1]*2.
    x1, x2 = torch.tensor([1., 0., 0.]), torch.tensor([0., 1., -0.1])
    g = mlp_gradient_vector(toy, 0, v, torch.stack([x1, x2]))
    expected = (toy.weights.g2 * toy.weights.W_in[:, 0] * -1 + toy.weights.g2 * toy.weights.W_in[:, 1] * 2) / 2
    torch.testing.assert_close(g, expected)


def test_toy_layernorm_projects_out_the_mean():
    toy = _toy_adapter("layer")
    v = final_vector(toy, Observable.from_vector(torch.tensor([1., -1., 0., 0.])))
    torch.testing.assert_close(v, torch.tensor([2., -1., 0.]) - 1 / 3)
    assert abs(float(v.sum())) < 1e-6


def test_toy_path_composes_transposes():
    toy = _toy_adapter("rms")
    n = Observable.from_vector(torch.tensor([0., 0., 0., 1.]))
    # v = g_f (.) W_U e_3 = [2, 0, 0] * [2,0,0] -> [4, 0, 0]
    v = final_vector(toy, n)
    torch.testing.assert_close(v, torch.tensor([4., 0., 0.]))
    fv = path_vector(toy, n, ["embed", "L0H0"], config=ObsPropConfig(mlp_method="linear"))
    # Head 0 input: g1 (.) W_V (W_O[0] v) = g1 (.) W_V [4, 0] = [4, 0, 4]; the embed sees it unchanged.
    torch.testing.assert_close(fv.vector, torch.tensor([4., 0., 4.]))
    assert fv.site == "hook_embed" and fv.label == "embed>L0H0"


def test_coupling_is_expected_slope():
    y1, y2 = torch.tensor([2., 0.]), torch.tensor([1., 5.])
    assert coupling(y1, y2) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="zero"):
        coupling(torch.zeros(2), y2)


@pytest.mark.parametrize("spec", ["L3H5", "M7", "mlp7", "embed", "L3.H5", "L7mlp"])
def test_component_parse_roundtrip(spec):
    comp = Component.parse(spec)
    assert Component.parse(str(comp)) == comp


def test_bad_inputs_name_the_value():
    with pytest.raises(ValueError, match="'X9'"):
        Component.parse("X9")
    with pytest.raises(ValueError, match="mlp_method 'exact'"):
        ObsPropConfig(mlp_method="exact")
    toy = _toy_adapter()
    with pytest.raises(ValueError, match="cannot feed"):
        path_vector(toy, Observable.from_vector(torch.ones(4)), ["M0", "L0H0"], config=ObsPropConfig("linear"))
    with pytest.raises(ValueError, match="reference prompts"):
        obsprop(toy, Observable.from_vector(torch.ones(4)))


# ----------------------------------------------------------------------------- observables
def test_parse_terms_shell_forms():
    # What the shell makes of:  " she" -" he"   and   0.5*" great" +0.5*" good" -" bad"
    assert parse_terms([" she", "- he"]) == [(" she", 1.0), (" he", -1.0)]
    assert parse_terms(["0.5* great", "+0.5* good", "- bad"]) == [(" great", .5), (" good", .5), (" bad", -1.)]
    assert parse_terms(['-" he"']) == [(" he", -1.0)]
    assert parse_terms('" she" - " he"') == [(" she", 1.0), (" he", -1.0)]
    assert parse_terms("2*' she' -0.5*' he'") == [(" she", 2.0), (" he", -0.5)]
    with pytest.raises(ValueError, match="cannot parse"):
        parse_terms("she - he")


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
