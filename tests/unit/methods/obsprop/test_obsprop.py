"""ObsProp feature vectors: a hand-built toy with closed-form answers, then tiny real models."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from interp.methods.obsprop.observables import Observable, parse_terms
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
from interp.models.sites import layer_sites
from interp.models.weights import AttentionWeights, LayerWeights, MLPWeights, NormWeights


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
