"""Complexity on real forward passes: activation collection, importance, the job and the CLI."""

from __future__ import annotations

import pytest
import torch

from interp.features import FeatureKind
from interp.methods.complexity.vinfo import feature_complexity
from interp.methods.complexity.activations import (CollectConfig, collect_activations, direction_group, neuron_group,
                                                site_depth, site_mid_depth)
from interp.methods.complexity.importance import ImportanceConfig, feature_importance, layer_flow
from interp.methods.complexity.selection import feature_groups, parse_ranges


def _tokens(adapter, n=6, ctx=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    toks = torch.randint(3, adapter.info.d_vocab, (n, ctx), generator=g)
    toks[:, 0] = adapter.info.bos_token_id
    return toks


def test_collect_matches_a_plain_run(tiny_models):
    adapter = tiny_models["llama"]
    toks = _tokens(adapter)
    v = torch.randn(2, adapter.info.d_model)
    groups = [neuron_group(adapter, 1, [3, 5, 7]), direction_group(adapter, adapter.sites(0).resid_post, v)]
    acts = collect_activations(adapter, toks, groups, CollectConfig(positions_per_window=5, with_mid=True, batch_size=4))
    s0, s1 = adapter.sites(0), adapter.sites(1)
    cache = adapter.run(toks, [s0.resid_pre, s1.resid_pre, s0.resid_mid, s1.resid_mid, s1.mlp_hidden,
                               s0.resid_post]).cache
    w, p = acts.window, acts.position
    assert len(acts.hs) == 2 and len(acts.mids) == 2  # neuron of block 1 reads resid_mid of block 1
    assert (p >= 1).all() and acts.Z.shape == (6 * 5, 5)
    torch.testing.assert_close(acts.hs[0], cache[s0.resid_pre][w, p])
    torch.testing.assert_close(acts.hs[1], cache[s1.resid_pre][w, p])
    torch.testing.assert_close(acts.mids[1], cache[s1.resid_mid][w, p])
    torch.testing.assert_close(acts.Z[:, :3], cache[s1.mlp_hidden][w, p][:, [3, 5, 7]])
    torch.testing.assert_close(acts.Z[:, 3:], cache[s0.resid_post][w, p] @ v.T, rtol=1e-5, atol=1e-5)
    assert acts.token_ids.tolist() == toks[w, p].tolist()
    assert acts.depth.tolist() == [2, 2, 2, 2, 2] and acts.mid_depth.tolist() == [2, 2, 2, 1, 1]


def test_depth_rules(tiny_models):
    a = tiny_models["llama"]
    s = a.sites(1)
    assert [site_depth(a, x) for x in (a.embed_site, s.resid_pre, s.mlp_hidden, s.resid_post)] == [1, 2, 2, 3]
    assert [site_mid_depth(a, x) for x in (s.resid_pre, s.attn_out, s.mlp_hidden, s.resid_post)] == [1, 1, 2, 2]


def test_importance_direction_path_equals_neuron_path(tiny_models):
    """One-hot directions at mlp_hidden write along one coordinate: the same attribution as
    the neuron itself, through the other code path (projection + write vector)."""
    adapter = tiny_models["llama"]
    toks = _tokens(adapter, n=4)
    idx = [0, 9, 20]
    site = adapter.sites(0).mlp_hidden
    onehot = torch.eye(adapter.info.d_mlp)[idx]
    groups = [neuron_group(adapter, 0, idx), direction_group(adapter, site, onehot)]
    imp = feature_importance(adapter, toks, groups, ImportanceConfig(batch_size=2))
    torch.testing.assert_close(imp.mean_abs[:3], imp.mean_abs[3:], rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(imp.mean[:3], imp.mean[3:], rtol=1e-5, atol=1e-7)
    assert (imp.mean_abs > 0).all() and imp.n_tokens == 4 * 15


def test_importance_sums_to_the_gradient_dot_activation(tiny_models):
    """Unit directions spanning resid_post of the last block decompose x: their signed
    attributions add up to g . x, computed here with plain autograd."""
    adapter = tiny_models["llama"]
    toks = _tokens(adapter, n=2)
    site = adapter.sites(1).resid_post
    d = adapter.info.d_model
    imp = feature_importance(adapter, toks, [direction_group(adapter, site, torch.eye(d))])
    leaf = {}

    def hook(act, hook):
        leaf["x"] = act.detach().requires_grad_(True)
        return leaf["x"]

    with adapter.hooks(fwd_hooks=[(site, hook)]):
        logits = adapter.logits(toks, keep_grad=True)
    obj = logits.gather(-1, logits.argmax(-1, keepdim=True)).sum()
    (g,) = torch.autograd.grad(obj, [leaf["x"]])
    want = (g * leaf["x"]).detach()[:, 1:].sum() / (2 * 15)
    # the terms cancel heavily: compare on the scale of the summed magnitudes
    assert abs(imp.mean.sum().item() - want.item()) < 1e-5 * imp.mean_abs.sum().item()


def test_layer_flow_telescopes(tiny_models):
    adapter = tiny_models["llama"]
    toks = _tokens(adapter, n=40, ctx=32, seed=1)
    groups = [neuron_group(adapter, 1, range(8))]
    acts = collect_activations(adapter, toks, groups, CollectConfig(positions_per_window=None, with_mid=True))
    res = feature_complexity(acts.hs, acts.Z, acts.depth, groups=acts.window)
    flow = layer_flow(acts.mids, acts.Z, res, acts.mid_depth, groups=acts.window)
    last_mid = flow.mid[1]  # a block-1 neuron's last readable stream is resid_mid of block 1
    torch.testing.assert_close(flow.embed + flow.attn + flow.mlp, last_mid, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(flow.post[0], res.curve[1])


def test_queries(tiny_models):
    a = tiny_models["llama"]
    assert parse_ranges("0-3,7") == [0, 1, 2, 3, 7]
    groups = feature_groups(a, "neurons:layers=0,1; neurons:1:2-4")
    assert [len(g.ids) for g in groups] == [a.info.d_mlp, a.info.d_mlp, 3]
    assert groups[2].ids[0].kind == FeatureKind.NEURON and groups[2].ids[0].index == 2
    for bad, word in (("neurons:layers=9", "out of range"), ("neurons:0:5-2", "ends before"),
                      ("bogus:1", "unknown feature query"), ("dict:x", "no store"), ("", "empty")):
        with pytest.raises(ValueError, match=word):
            feature_groups(a, bad)


def test_score_and_store_roundtrip(tiny_models, tmp_path):
    import copy

    from interp.jobs.complexity import RunConfig, score, store_run
    from interp.methods.complexity.store import read_complexity
    from interp.store import Store

    adapter = copy.copy(tiny_models["llama"])
    adapter.name = "tiny-llama"  # the store accepts model names, not absolute directories
    toks = _tokens(adapter, n=24, ctx=32)
    groups = feature_groups(adapter, "neurons:0:0-5; neurons:1:0-5")
    config = RunConfig(n_tokens=24 * 32, ctx_len=32, importance_windows=4, positions_per_window=None)
    run = score(adapter, groups, toks, config)
    store = Store(tmp_path / "store")
    run_id = store_run(store, adapter, run, config, "test", {"name": "random"})
    back = read_complexity(store, adapter.name)
    assert len(back) == 12
    merged = back.merge(run.frame, on=["site", "index"], suffixes=("", "_run"))
    assert (merged["K"] - merged["K_run"]).abs().max() < 1e-9
    assert store.get_run(run_id)["status"] == "done"
    names = set(store.read("results")["name"])
    assert {"complexity", "complexity_figure"} <= names


def _stored_transcoder(store, adapter, layer=1, d_sae=16, seed=0):
    from interp.dictionaries import Dictionary
    from interp.dictionaries.io import save_dictionary

    d = adapter.info.d_model
    s = adapter.sites(layer)
    tc = Dictionary(d, d_sae, d, kind="transcoder", arch="relu")
    tc.init_weights(torch.Generator().manual_seed(seed))
    with torch.no_grad():
        tc.b_enc.normal_(0, 0.1)
        tc.b_dec.normal_(0, 1.0)  # a transcoder must not subtract it from its input
    save_dictionary(store, "tc-test", tc, {"hook_name": s.mlp_in, "hook_name_out": s.mlp_out})
    run = store.start_run("test", {})
    store.write("dictionaries", [{"name": "tc-test", "model": adapter.name, "site": s.mlp_in, "hook_out": s.mlp_out,
                                  "kind": "transcoder", "arch": "relu"}], run_id=run)
    return {k: v.detach() for k, v in tc.named_parameters()}


def test_dictionary_and_store_queries(tiny_models, tmp_path):
    import copy

    from interp.store import Store

    adapter = copy.copy(tiny_models["llama"])
    adapter.name = "tiny-llama"  # the store accepts model names, not absolute directories
    store = Store(tmp_path / "store")
    t = _stored_transcoder(store, adapter)
    (group,) = feature_groups(adapter, "dict:tc-test:2-5", store)
    s = adapter.sites(1)
    assert group.site == s.mlp_in and group.readout.write_site == s.mlp_out
    assert [i.index for i in group.ids] == [2, 3, 4, 5] and group.ids[0].kind == FeatureKind.TRANSCODER
    toks = _tokens(adapter, n=3)
    acts = collect_activations(adapter, toks, [group], CollectConfig(positions_per_window=4))
    x = adapter.run(toks, [s.mlp_in]).cache[s.mlp_in][acts.window, acts.position]
    want = (x @ t["W_enc"] + t["b_enc"]).relu()[:, 2:6]  # transcoder: no b_dec on the input
    torch.testing.assert_close(acts.Z, want, rtol=1e-5, atol=1e-5)
    imp = feature_importance(adapter, toks, [group])
    assert imp.mean_abs.shape == (4,) and torch.isfinite(imp.mean_abs).all()

    run = store.start_run("test", {})
    store.write("features", [{"model": adapter.name, "site": s.mlp_hidden, "kind": "neuron", "index": i}
                             for i in (1, 4)], run_id=run)
    (neurons,) = feature_groups(adapter, "store:kind='neuron'", store)
    assert [i.index for i in neurons.ids] == [1, 4] and neurons.site == s.mlp_hidden
    with pytest.raises(ValueError, match="no dictionary"):
        feature_groups(adapter, "dict:missing", store)
