"""Complexity on real forward passes: activation collection, importance, the job and the CLI."""

from __future__ import annotations

import pytest
import torch

from interp.methods.complexity.vinfo import feature_complexity
from interp.methods.complexity.activations import CollectConfig, collect_activations, direction_group


@pytest.mark.model
def test_smollm2_embedding_feature_vs_repeat_position(smollm2):
    """z_embed = h_0 . v is a linear function of the token embedding: exactly decodable at
    h_0 (I_V = 1). z_rep = 1 in the second copy of a repeated random sequence: the same
    tokens appear in both copies, so h_0 carries nothing about it (I_V ~ 0); it needs
    attention over the context, and becomes decodable only a few layers in.

    (A random embedding direction is not K ~ 0 in SmolLM2 at this sample size: its linear
    decodability falls to ~0.1-0.3 after block 0, so K itself is not compared here; the
    toy tests in test_complexity.py pin the K ~ 0 case.)"""
    adapter = smollm2
    g = torch.Generator().manual_seed(0)
    n_win, half = 48, 31
    seq = torch.randint(1000, 20000, (n_win, half), generator=g)
    toks = torch.cat([torch.full((n_win, 1), adapter.info.bos_token_id), seq, seq], 1)
    depth = 7
    groups = [direction_group(adapter, adapter.sites(depth - 1).resid_pre, torch.randn(1, adapter.info.d_model))]
    acts = collect_activations(adapter, toks, groups, CollectConfig(positions_per_window=None))
    v = torch.randn(adapter.info.d_model, generator=g)
    z_embed = acts.hs[0] @ v
    z_rep = (acts.position > half).float()
    res = feature_complexity(acts.hs, torch.stack([z_embed, z_rep], 1), [depth, depth], groups=acts.window)
    print("embed curve", res.curve[:, 0].tolist(), "repeat curve", res.curve[:, 1].tolist())
    assert res.curve[0, 0].item() > 0.999
    assert res.curve[0, 1].item() < 0.05, res.curve[:, 1]
    assert res.curve[1:, 1].max().item() > 0.5, res.curve[:, 1]
    assert res.first_layer[0].item() == 0 and res.first_layer[1].item() >= 2
