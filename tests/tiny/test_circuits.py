"""Transcoder circuits: exact attribution sums, connections, graph bookkeeping, JSON, CLI."""

from __future__ import annotations

import json

import pytest
import torch
from sae_lens.saes.transcoder import (
    JumpReLUTranscoder,
    JumpReLUTranscoderConfig,
    SkipTranscoder,
    SkipTranscoderConfig,
    Transcoder,
    TranscoderConfig,
)

from interp.methods.circuits.attribution import LatentTarget, LogitTarget, attribute, trace
from interp.methods.circuits.graph import CircuitGraph, GraphConfig, build_graph, prune
from interp.methods.circuits.validation import ablation_check
from interp.methods.circuits.connections import connections, top_connections
from interp.methods.circuits.targets import parse_target
from interp.methods.circuits.transcoders import random_transcoders

PROMPT = "The cat sat on the mat. She said that he"


def _sae_lens_transcoders(d: int, seed: int = 0):
    """A plain ReLU transcoder at layer 0 and a skip transcoder at layer 1, random weights/biases."""
    torch.manual_seed(seed)
    tc0 = Transcoder(TranscoderConfig(d_in=d, d_sae=48, d_out=d, apply_b_dec_to_input=False))
    tc1 = SkipTranscoder(SkipTranscoderConfig(d_in=d, d_sae=40, d_out=d, apply_b_dec_to_input=False))
    with torch.no_grad():
        tc0.b_enc.normal_(0, 0.5)
        tc0.b_dec.normal_()
        tc1.W_skip.normal_(0, 0.1)
        tc1.b_dec.normal_()
    return {0: tc0, 1: tc1}


def _targets(tr):
    lt = tr.layers[1]
    active = int(lt.active_idx[-1, 0])
    return [LatentTarget(1, active), LatentTarget(1, 3, 4), LogitTarget(7), LogitTarget(7, 11, 5)]


@pytest.mark.parametrize("family", ["llama", "gpt2", "neox"])
def test_direct_contributions_sum_to_the_target(tiny_models, family):
    """Contributions + bias reproduce the real pre-activation / logit (RMSNorm+GQA, LayerNorm, parallel)."""
    model = tiny_models[family]
    tcs = _sae_lens_transcoders(model.info.d_model)
    tr = trace(model, tcs, PROMPT)
    for target in _targets(tr):
        a = attribute(model, tcs, PROMPT, target, tr=tr)
        assert abs(a.residual) < 1e-4 * max(1.0, abs(a.value)), (family, target, a.value, a.total)
        assert set(a.frame["kind"]) >= {"embed", "head", "error"}
    tr64 = trace(model, tcs, PROMPT, dtype="float64")
    a = attribute(model, tcs, PROMPT, LogitTarget(7), tr=tr64)
    assert abs(a.residual) < 1e-5


def test_jumprelu_and_topk_transcoders_are_exact(tiny_models):
    model = tiny_models["llama"]
    d = model.info.d_model
    torch.manual_seed(1)
    jr = JumpReLUTranscoder(JumpReLUTranscoderConfig(d_in=d, d_sae=32, d_out=d, apply_b_dec_to_input=False))
    with torch.no_grad():
        jr.threshold.fill_(0.3)
    tcs = {0: jr, 1: random_transcoders(model, [1], 64, k=4)[1]}
    tr = trace(model, tcs, PROMPT)
    assert int((tr.layers[1].active_val != 0).sum(-1).max()) <= 4
    for target in _targets(tr):
        a = attribute(model, tcs, PROMPT, target, tr=tr)
        assert abs(a.residual) < 1e-4 * max(1.0, abs(a.value))


def test_latent_contribution_is_activation_times_weight(tiny_models):
    """Worked by hand: a layer-0 latent's direct contribution to a layer-1 latent is z_i W_dec[i] . u."""
    model = tiny_models["llama"]
    tcs = _sae_lens_transcoders(model.info.d_model)
    tr = trace(model, tcs, PROMPT)
    target = LatentTarget(1, 3, -1)
    a = attribute(model, tcs, PROMPT, target, tr=tr)
    row = a.frame[a.frame["kind"] == "latent"].iloc[0]
    p, i = a.position, int(row["index"])
    z = tr.layers[0].active_val[p][tr.layers[0].active_idx[p] == i].sum()
    u = tr.layers[1].ln2_scale[p] * tcs[1].W_enc.detach()[:, 3]  # RMSNorm: no centring
    assert row["contribution"] == pytest.approx(float(z * tcs[0].W_dec.detach()[i] @ u), rel=1e-5)


def _flows(graph):
    into, out = {}, {}
    for e in graph.edges:
        into[e.target] = into.get(e.target, 0.0) + e.weight
        out[e.source] = out.get(e.source, 0.0) + e.weight
    return into, out


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_graph_flow_is_conserved(tiny_models, family):
    """influence = sum of out-edges = sum of in-edges + rest for every expanded node."""
    model = tiny_models[family]
    tcs = _sae_lens_transcoders(model.info.d_model)
    tr = trace(model, tcs, PROMPT, dtype="float64")
    graph = build_graph(model, tr, LogitTarget(7, 11), GraphConfig(hops=3, top_k=12, share=1.0))
    into, out = _flows(graph)
    assert graph.node("target").influence == pytest.approx(graph.meta["stats"]["target_value"])
    expanded = [n for n in graph.nodes if n.expanded]
    assert any(n.type == "head" for n in expanded) and any(n.type == "latent" for n in expanded)
    for n in graph.nodes:
        if n.type != "target":
            assert out[n.id] == pytest.approx(n.influence, abs=1e-9)
        if n.expanded:
            scale = max(1.0, abs(n.influence))
            assert into.get(n.id, 0.0) + n.rest == pytest.approx(n.influence, abs=1e-5 * scale), n.id


def test_prune_and_json_roundtrip(tiny_models):
    model = tiny_models["llama"]
    tcs = _sae_lens_transcoders(model.info.d_model)
    tr = trace(model, tcs, PROMPT)
    full = build_graph(model, tr, LogitTarget(7), GraphConfig(hops=3, top_k=6, share=1.0))
    small = prune(full, 0.5)
    assert len(small.nodes) < len(full.nodes)
    assert small.meta["stats"]["covered_share"] >= 0.5
    into, out = _flows(small)
    ids = {n.id for n in small.nodes}
    children = {}
    for e in small.edges:
        children.setdefault(e.source, []).append(e.target)
    for nid in ids - {"target"}:  # every kept node reaches the target inside the kept graph
        seen, stack = set(), [nid]
        while stack:
            cur = stack.pop()
            seen.add(cur)
            stack += [c for c in children.get(cur, []) if c not in seen]
        assert "target" in seen, nid
    text = json.dumps(small.to_json())
    back = CircuitGraph.from_json(text)
    assert back.to_json() == json.loads(text)
    with pytest.raises(ValueError, match="schema"):
        CircuitGraph.from_json({"schema": "other"})
    bad = json.loads(text)
    bad["edges"].append({"source": "nope", "target": "target", "weight": 1.0})
    with pytest.raises(ValueError, match="nope"):
        CircuitGraph.from_json(bad)


def test_ablating_top_contributors_tracks_attribution(tiny_models):
    """Removing a contributor's vector changes the target by about its attributed amount."""
    model = tiny_models["llama"]
    tcs = _sae_lens_transcoders(model.info.d_model)
    tr = trace(model, tcs, PROMPT)
    target = LatentTarget(1, int(tr.layers[1].active_idx[-1, 0]))
    a = attribute(model, tcs, PROMPT, target, tr=tr)
    # Latents and heads: large error terms also move the norm's scale, which the direct
    # attribution holds fixed, so their effects are damped (see circuit_validation).
    check = ablation_check(model, tr, target, a, top_n=12, kinds=("latent", "head"))
    assert len(check.frame) == 12 and set(check.frame["kind"]) <= {"latent", "head"}
    assert check.pearson > 0.8, check.frame
    assert check.slope > 0.1


def test_target_parsing_and_errors(tiny_models):
    model = tiny_models["llama"]
    tok = model.to_str_tokens(PROMPT)[2]
    t = parse_target(model, f'logit:"{tok}"@-2')
    assert t.position == -2 and t.token == model.token_id(tok) and t.other is None
    assert parse_target(model, "logitdiff:#5,#6").other == 6
    assert parse_target(model, "latent:tc:3@1", {"tc": 1}) == LatentTarget(1, 3, 1)
    assert parse_target(model, "latent:L0:2") == LatentTarget(0, 2, -1)
    for spec, msg in [("neuron:1", "valid forms"), ("latent:x:1", "L<layer>"), ("logit:#1,#2", "one token"),
                      ("latent:L9:1", "out of range")]:
        with pytest.raises(ValueError, match=msg):
            parse_target(model, spec)
    tcs = _sae_lens_transcoders(model.info.d_model)
    tr = trace(model, tcs, PROMPT)
    with pytest.raises(ValueError, match="position"):
        attribute(model, tcs, PROMPT, LogitTarget(7, position=99), tr=tr)
    with pytest.raises(ValueError, match="latent index"):
        attribute(model, tcs, PROMPT, LatentTarget(1, 999), tr=tr)
    with pytest.raises(ValueError, match="no transcoder at layer 1"):
        attribute(model, {0: tcs[0]}, PROMPT, LatentTarget(1, 0))
    with pytest.raises(ValueError, match="hops"):
        GraphConfig(hops=0)


def test_cli_build_export_import(tiny_dirs, tmp_path, capsys):
    from interp.cli import main
    from interp.store import Store

    store = tmp_path / "store"
    out = tmp_path / "g.json"
    rc = main(["circuit", "--model", str(tiny_dirs["llama"]), "--prompt", PROMPT, "--target", "logitdiff:#7,#11",
               "--dicts", "random:64:8", "--store", str(store), "-o", str(out), "--html", str(tmp_path / "g.html"),
               "--validate", "5"])
    assert rc == 0
    key = Store(store).read("results", where={"name": "circuit"})["key"].iloc[0]
    capsys.readouterr()
    assert main(["circuit", "export", key, "--store", str(store)]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert exported == json.loads(out.read_text()) | {"meta": exported["meta"]}
    assert "ablation_pearson" in exported["meta"]["stats"]
    other = tmp_path / "other"
    assert main(["circuit", "import", str(out), "--store", str(other)]) == 0
    assert len(Store(other).read("results", where={"name": "circuit"})) == 1
    assert main(["circuit", "export", "circuit-missing", "--store", str(store)]) == 2


def test_store_transcoders_and_connections_roundtrip(tiny_models, tmp_path):
    """Transcoders saved in SAELens format load by name; connection tables store and reload."""
    from interp.dictionaries.io import save_dictionary
    from interp.methods.circuits.store import load_connections, save_connections
    from interp.methods.circuits.transcoders import load_transcoders, transcoders_of
    from interp.store import Store

    model = tiny_models["llama"]
    store = Store(tmp_path / "store")
    run = store.start_run("test", {})
    made = random_transcoders(model, [0, 1], 32, k=4, seed=3)
    for layer, tc in made.items():
        name = f"tiny/L{layer}-tc"
        folder = save_dictionary(store, name, tc, {"hook_name": model.sites(layer).mlp_in})
        store.write("dictionaries", [{"name": name, "model": "tiny", "site": model.sites(layer).mlp_in,
                                      "hook_out": model.sites(layer).mlp_out, "kind": "transcoder", "arch": "topk",
                                      "config": {}, "metrics": {}, "path": str(folder.relative_to(store.root))}],
                    run_id=run)
    loaded, names = load_transcoders(store, ["tiny/L0-tc", "tiny/L1-tc"], model)
    assert names == {0: "tiny/L0-tc", 1: "tiny/L1-tc"}
    assert torch.allclose(loaded[1].W_dec, made[1].W_dec)
    a = attribute(model, loaded, PROMPT, LatentTarget(1, 0))
    assert abs(a.residual) < 1e-4 * max(1.0, abs(a.value))
    with pytest.raises(ValueError, match="no dictionaries"):
        load_transcoders(store, ["tiny/L5-tc"], model)
    table = top_connections(loaded[0], loaded[1], k=3)
    save_connections(store, names[0], names[1], table, run)
    back = load_connections(store, names[0], names[1])
    assert torch.equal(back.upstream_index, table.upstream_index)
    assert torch.allclose(back.downstream_weight, table.downstream_weight)
    assert transcoders_of(store, "tiny") == ["tiny/L0-tc", "tiny/L1-tc"]
