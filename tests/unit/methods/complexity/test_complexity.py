"""Closed-form ridge V-information: exactness against sklearn and toys with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from interp.methods.complexity.vinfo import (ComplexityConfig, feature_complexity, first_decodable_layer, make_split,
                                       ridge_scores)


def _data(n=500, d=12, F=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    # Dimensions on very different scales and a non-zero mean, like a residual stream.
    H = torch.randn(n, d, generator=g, dtype=torch.float64) * torch.logspace(-1, 1.5, d, dtype=torch.float64) + 2.0
    W = torch.randn(d, F, generator=g, dtype=torch.float64)
    noise = torch.randn(n, F, generator=g, dtype=torch.float64) * torch.linspace(0.1, 20, F, dtype=torch.float64)
    return H, H @ W * 0.2 + noise + 5.0


@pytest.mark.parametrize("standardize", [False, True])
def test_closed_form_matches_sklearn_ridge_per_feature(standardize):
    from sklearn.linear_model import Ridge
    from sklearn.metrics import r2_score

    H, Z = _data()
    split = make_split(len(H), ComplexityConfig(seed=3))
    lambdas = [1e-3, 0.5, 30.0, 2000.0]
    scores = ridge_scores(H, Z, split, lambdas, standardize=standardize)
    X = H.numpy()
    if standardize:  # the documented preprocessing: train mean and train std (ddof=1)
        X = (X - X[split.train].mean(0)) / X[split.train].std(0, ddof=1)
    for i, lam in enumerate(lambdas):
        for f in range(Z.shape[1]):
            model = Ridge(alpha=lam).fit(X[split.train], Z[split.train, f].numpy())
            for rows, got in ((split.val, scores.r2_val), (split.test, scores.r2_test)):
                want = r2_score(Z[rows, f].numpy(), model.predict(X[rows]))
                assert abs(want - got[i, f].item()) < 1e-5, (lam, f, want, got[i, f].item())


def test_lambda_is_chosen_per_feature_on_validation():
    from sklearn.linear_model import Ridge
    from sklearn.metrics import r2_score

    H, Z = _data(n=400, d=30, F=5, seed=1)  # few tokens per dimension: the penalty matters
    config = ComplexityConfig(alphas=(1e-4, 1e-2, 1.0), seed=2)
    res = feature_complexity([H], Z, [1] * Z.shape[1], config)
    split = make_split(len(H), config)
    X = H.numpy()
    X = (X - X[split.train].mean(0)) / X[split.train].std(0, ddof=1)
    for f in range(Z.shape[1]):
        fits = [Ridge(alpha=a * len(split.train)).fit(X[split.train], Z[split.train, f].numpy())
                for a in config.alphas]
        val = [r2_score(Z[split.val, f].numpy(), m.predict(X[split.val])) for m in fits]
        best = int(np.argmax(val))
        test = r2_score(Z[split.test, f].numpy(), fits[best].predict(X[split.test]))
        assert res.alpha[0, f].item() == pytest.approx(config.alphas[best])
        assert res.curve[0, f].item() == pytest.approx(max(test, 0.0), abs=1e-5)


def test_planted_feature_gives_curve_zero_then_one():
    """Layers 0-2 are noise independent of z; from layer 3 on z is an exact linear readout."""
    g = torch.Generator().manual_seed(0)
    n, d, L = 3000, 8, 6
    z = torch.randn(n, 1, generator=g)
    w = torch.randn(d, generator=g)
    hs = []
    for l in range(L):
        h = torch.randn(n, d, generator=g)
        if l >= 3:  # plant z along w: z = h . w / |w|^2 - (other part), exactly recoverable
            h = h - (h @ w)[:, None] * w / (w @ w) + z * w / (w @ w)
        hs.append(h)
    res = feature_complexity(hs, z, [L])
    curve = res.curve[:, 0]
    assert (curve[:3] < 0.01).all(), curve
    assert (curve[3:] > 0.9999).all(), curve
    assert res.K[0].item() == pytest.approx(1 - 3 / 6, abs=0.01)
    assert res.first_layer[0].item() == 3
    # log form: -1/2 log(1 - R^2), large where the feature is exactly decodable
    assert res.curve_nats[0, 0].item() == pytest.approx(-0.5 * math.log1p(-curve[0].item()), rel=1e-4)
    assert (res.curve_nats[3:, 0] > 3).all()


def test_embedding_linear_feature_has_K_near_zero_and_xor_has_high_K():
    """Toy stream: h_0 = token attributes, h_1 adds the previous token's attributes (an
    'attention' copy), h_2 adds their XOR (an 'MLP'). z1 = a linear function of the current
    token is simple; z2 = XOR(a_t, a_{t-1}) is only linearly readable at h_2."""
    g = torch.Generator().manual_seed(1)
    n = 4000
    a = torch.randint(0, 2, (n + 1,), generator=g).float()
    extra = torch.randn(n + 1, 4, generator=g)
    cur, prev = a[1:], a[:-1]
    h0 = torch.cat([cur[:, None], extra[1:]], 1)
    h1 = torch.cat([h0, prev[:, None]], 1)
    xor = (cur != prev).float()
    h2 = torch.cat([h1, xor[:, None]], 1)
    Z = torch.stack([2 * cur - 1 + 0.5 * extra[1:, 0], xor], 1)
    res = feature_complexity([h0, h1, h2], Z, [3, 3])
    assert res.K[0].item() < 0.01
    assert res.curve[:2, 1].max().item() < 0.01  # XOR is not linear in (a_t, a_{t-1})
    assert res.curve[2, 1].item() > 0.999
    assert res.K[1].item() == pytest.approx(2 / 3, abs=0.01)


def test_depth_masks_layers_and_constant_features_get_nan():
    H, Z = _data(n=300, d=5, F=3)
    Z[:, 2] = 7.0
    res = feature_complexity([H, H, H], Z, [3, 1, 2])
    assert res.curve[1:, 1].isnan().all() and not res.curve[0, 1].isnan()
    assert res.curve[2, 2].isnan() and not res.curve[1, 2].isnan()
    assert res.K[0].item() == pytest.approx(1 - res.curve[:, 0].mean().item(), abs=1e-6)
    assert res.K[1].item() == pytest.approx(1 - res.curve[0, 1].item(), abs=1e-6)
    assert res.constant.tolist() == [False, False, True] and math.isnan(res.K[2].item())


def test_first_decodable_layer_by_hand():
    nan = float("nan")
    curve = torch.tensor([[0.0, 0.0, 0.1, 0.0],
                          [0.2, 0.0, 0.1, 0.0],
                          [0.5, 0.9, 0.1, 0.0],
                          [0.8, nan, nan, 0.0]])
    assert first_decodable_layer(curve, 0.5).tolist() == [2, 2, 0, -1]


def test_split_keeps_windows_whole():
    groups = torch.arange(40).repeat_interleave(7)
    s = make_split(len(groups), ComplexityConfig(seed=4), groups)
    sets = [set(groups[idx].tolist()) for idx in (s.train, s.val, s.test)]
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
    assert sum(len(idx) for idx in (s.train, s.val, s.test)) == len(groups)


@pytest.mark.parametrize("kwargs, word", [
    (dict(alphas=()), "alphas"), (dict(alphas=(1.0, -1.0)), "alphas"), (dict(val_fraction=0.0), "val_fraction"),
    (dict(val_fraction=0.5, test_fraction=0.45), r"val_fraction \+ test_fraction"),
    (dict(decodable_fraction=1.5), "decodable_fraction"),
])
def test_config_rejects_bad_values(kwargs, word):
    with pytest.raises(ValueError, match=word):
        ComplexityConfig(**kwargs)


def test_bad_inputs_name_the_problem():
    H, Z = _data(n=100, d=4, F=2)
    with pytest.raises(ValueError, match="depth"):
        feature_complexity([H], Z, [1, 2])
    with pytest.raises(ValueError, match=r"hs\[1\]"):
        feature_complexity([H, H[:50]], Z, [2, 2])
    with pytest.raises(ValueError, match="at least one"):
        feature_complexity([], Z, [1, 1])
