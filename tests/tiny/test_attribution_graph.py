"""Attribution graphs (circuit-tracer's algorithm): exactness, visiting order, files, store, CLI."""

from __future__ import annotations

import json

import pytest
import torch

from interp.methods.circuits.attribution import LatentTarget, LogitTarget, attribute
from interp.methods.circuits.attribution_graph import AttributionConfig, attribution_graph
from interp.methods.circuits.graph_files import from_circuit_tracer, from_interp, to_circuit_tracer, to_interp
from interp.methods.circuits.trace import trace
from interp.methods.circuits.transcoders import random_transcoders

PROMPT = "The cat sat on the mat. She said that he"


def _transcoders(model, seed=0):
    """A ReLU transcoder with biases at layer 0, a skip TopK one at layer 1."""
    from interp.dictionaries import Dictionary

    d = model.info.d_model
    g = torch.Generator().manual_seed(seed)
    tc0 = Dictionary(d, 48, d, kind="transcoder", arch="relu")
    tc1 = Dictionary(d, 40, d, kind="transcoder", arch="topk", k=6, skip=True)
    for tc in (tc0, tc1):
        tc.init_weights(g)
        with torch.no_grad():
            tc.b_enc.normal_(0, 0.3, generator=g)
            tc.b_dec.normal_(0, 1.0, generator=g)
            if tc.skip:
                tc.W_skip.normal_(0, 0.1, generator=g)
    return {0: tc0.eval(), 1: tc1.eval()}


@pytest.mark.parametrize("family", ["llama", "gpt2", "neox"])
def test_each_node_input_is_the_sum_of_its_edges(tiny_models, family):
    """Latent pre-activations and demeaned logits = incoming edges + constants (RMSNorm+GQA, LayerNorm, parallel)."""
    model = tiny_models[family]
    tcs = _transcoders(model)
    g = attribution_graph(model, tcs, PROMPT, AttributionConfig(dtype="float64", batch_size=7))
    nf, nl = g.n_features, g.n_logits
    assert nf == len(g.active_features) > 0 and g.n_errors == 2 * g.n_pos
    # Position 0 has no latent nodes and its error nodes no edges: its MLP output is a constant.
    assert bool((g.active_features[:, 1] > 0).all())
    assert not g.adjacency[:, [nf + layer * g.n_pos for layer in range(2)]].any()
    rows = torch.cat([torch.arange(nf), torch.arange(g.n_nodes - nl, g.n_nodes)])
    total = g.adjacency[rows].sum(1) + g.node_bias[rows]
    assert torch.allclose(total, g.node_value[rows], atol=1e-5, rtol=0)  # the model itself runs in float32
    # The explained values, computed independently: the real logits, demeaned, and each latent's pre-activation.
    logits = model.logits(PROMPT)[0, -1].double()
    assert torch.allclose(g.node_value[-nl:], logits[g.logit_tokens] - logits.mean(), atol=1e-4)
    x = model.run(PROMPT, names=[model.sites(1).mlp_in]).cache[model.sites(1).mlp_in][0].double()
    layer, pos, idx = g.active_features[-1].tolist()
    assert layer == 1
    pre = x[pos] @ tcs[1].W_enc.detach().double()[:, idx] + tcs[1].b_enc.detach().double()[idx]
    assert float(g.node_value[nf - 1]) == pytest.approx(float(pre), abs=1e-4)
    # Errors and embeddings have no inputs; nothing reads a node of its own or a later layer.
    assert not g.adjacency[nf:g.n_nodes - nl].any()
    for i in range(nf):
        lay = int(g.active_features[g.selected_features[i], 0])
        later = [j for j in range(nf) if int(g.active_features[g.selected_features[j], 0]) >= lay]
        assert not g.adjacency[i, later].any()


def test_edges_match_direct_contributions(tiny_models):
    """Into a logit node, a last-layer latent's edge is z_i W_dec[i] . u: the direct contribution `attribute` finds.

    (Edges between latents of different layers also run through the frozen attention in
    between, which `attribute`'s one-hop decomposition keeps as head terms.)
    """
    model = tiny_models["llama"]
    tcs = _transcoders(model)
    tr = trace(model, tcs, PROMPT, dtype="float64")
    probs = tr.logits[-1].topk(2).indices.tolist()
    target = LogitTarget(probs[0], probs[1])
    g = attribution_graph(model, tcs, PROMPT, AttributionConfig(dtype="float64", skip_first_position=False),
                          targets=[target], tr=tr)
    feats = g.active_features[g.selected_features]
    frame = attribute(model, tcs, None, target, tr=tr).frame
    lat = frame[(frame["kind"] == "latent") & (frame["layer"] == 1)]
    assert len(lat) > 0
    for row in lat.itertuples():
        source = int(torch.nonzero((feats[:, 0] == 1) & (feats[:, 1] == row.source) & (feats[:, 2] == row.index)))
        assert float(g.adjacency[-1, source]) == pytest.approx(row.contribution, abs=1e-9)
    err = float(frame[(frame["kind"] == "error") & (frame["layer"] == 1)]["contribution"].iloc[0])
    assert float(g.adjacency[-1, g.n_features + 1 * g.n_pos + g.n_pos - 1]) == pytest.approx(err, abs=1e-9)
    assert not g.adjacency[-1, g.n_features + g.n_pos:g.n_features + 2 * g.n_pos - 1].any()  # earlier positions: no path


def test_logit_nodes_and_visiting_order(tiny_models):
    model = tiny_models["llama"]
    tcs = random_transcoders(model, [0, 1], 64, k=8)
    full = attribution_graph(model, tcs, PROMPT, AttributionConfig(max_n_logits=3, desired_logit_prob=0.999))
    probs = torch.softmax(model.logits(PROMPT)[0, -1].double(), -1)
    assert full.logit_tokens == probs.topk(3).indices.tolist()
    assert torch.allclose(full.logit_probabilities.double(), probs.topk(3).values, atol=1e-5)
    g = attribution_graph(model, tcs, PROMPT, AttributionConfig(max_feature_nodes=5, max_n_logits=3,
                                                                desired_logit_prob=0.999, batch_size=2,
                                                                update_interval=1))
    assert g.n_features == 5 and g.n_nodes == 5 + 3 * g.n_pos + 3
    # The first latents visited are the top ones by influence through the logit rows alone.
    from interp.methods.circuits.influence import partial_influences

    n_active = len(full.active_features)
    logit_rows = torch.zeros(3, n_active + 3 * g.n_pos + 3)
    logit_rows[:, :n_active] = full.adjacency[-3:, :n_active]
    logit_rows[:, n_active:] = full.adjacency[-3:, n_active:]
    first = partial_influences(logit_rows, full.logit_probabilities, torch.arange(n_active + 3 * g.n_pos,
                                                                                   n_active + 3 * g.n_pos + 3))
    top2 = set(first[:n_active].topk(2).indices.tolist())
    assert top2 <= set(g.selected_features.tolist())
    # A custom logit-difference node reads logit(a) - logit(b) exactly.
    a, b = full.logit_tokens[:2]
    d = attribution_graph(model, tcs, PROMPT, AttributionConfig(dtype="float64"), targets=[LogitTarget(a, b)])
    logits = model.logits(PROMPT)[0, -1].double()
    assert d.logit_tokens == [model.info.d_vocab] and float(d.node_value[-1]) == pytest.approx(
        float(logits[a] - logits[b]), abs=1e-4)
    assert float(d.adjacency[-1].sum() + d.node_bias[-1]) == pytest.approx(float(d.node_value[-1]), abs=1e-5)
    with pytest.raises(ValueError, match="last position"):
        attribution_graph(model, tcs, PROMPT, targets=[LogitTarget(a, position=2)])
    with pytest.raises(ValueError, match="not a logit target"):
        attribution_graph(model, tcs, PROMPT, targets=[LatentTarget(1, 0)])


def test_memory_estimate_refuses(tiny_models):
    model = tiny_models["llama"]
    tcs = random_transcoders(model, [0, 1], 64, k=8)
    seen = []
    g = attribution_graph(model, tcs, PROMPT, on_estimate=seen.append)
    est = seen[0]
    assert est.n_active == len(g.active_features) and est.n_nodes == g.n_nodes
    assert est.memory_gb * 2 ** 30 >= g.adjacency.numel() * 4
    with pytest.raises(ValueError, match="more memory than --max-memory"):
        attribution_graph(model, tcs, PROMPT, AttributionConfig(max_memory_gb=est.memory_gb / 2))
    for bad in (dict(max_n_logits=0), dict(desired_logit_prob=0.0), dict(node_threshold=2.0),
                dict(max_feature_nodes=-1), dict(dtype="half"), dict(max_memory_gb=0)):
        with pytest.raises(ValueError):
            AttributionConfig(**bad)


def test_circuit_tracer_file_roundtrip(tiny_models):
    model = tiny_models["llama"]
    tcs = random_transcoders(model, [0, 1], 64, k=8)
    g = attribution_graph(model, tcs, PROMPT, meta={"model": "tiny", "dictionaries": {"0": "a", "1": "b"}})
    data = to_circuit_tracer(g, slug="t")
    json.dumps(data)  # plain JSON
    assert data["metadata"]["prompt_tokens"] == g.str_tokens and data["metadata"]["node_threshold"] == 0.8
    assert data["metadata"]["transcoder_list"] == ["a", "b"] and set(data["qParams"]) >= {"pinnedIds", "supernodes"}
    ids = {n["node_id"]: n for n in data["nodes"]}
    types = {n["feature_type"] for n in data["nodes"]}
    assert {"embedding", "logit", "cross layer transcoder"} <= types
    emb = [n for n in data["nodes"] if n["feature_type"] == "embedding"]
    assert [n["node_id"] for n in emb] == [f"E_{t}_{p}" for p, t in enumerate(g.tokens.tolist())]
    top = [n for n in data["nodes"] if n["feature_type"] == "logit"][0]
    assert top["node_id"] == f"3_{g.logit_tokens[0]}_{g.n_pos - 1}" and top["is_target_logit"]
    feat = next(n for n in data["nodes"] if n["feature_type"] == "cross layer transcoder")
    layer, index, pos = map(int, feat["node_id"].split("_"))
    i = int(torch.nonzero((g.active_features == torch.tensor([layer, pos, index])).all(1)))
    assert feat["activation"] == pytest.approx(float(g.activation_values[i]))
    for link in data["links"]:
        assert link["source"] in ids and link["target"] in ids
    # Import: exactly those nodes and links; exported again, the same file.
    back = from_circuit_tracer(json.loads(json.dumps(data)))
    assert int(back.kept_nodes.sum()) == len(data["nodes"]) and back.kept_edges.shape[1] == len(data["links"])
    data["qParams"]["pinnedIds"] = [feat["node_id"]]
    data["qParams"]["supernodes"] = [["group", feat["node_id"], top["node_id"]]]
    back = from_circuit_tracer(data)
    assert to_circuit_tracer(back) == data
    again = from_circuit_tracer(to_circuit_tracer(back))
    assert torch.equal(again.adjacency, back.adjacency) and torch.equal(again.active_features, back.active_features)
    assert again.qparams == back.qparams and again.labels == back.labels
    for bad, msg in [({"nodes": []}, "metadata, nodes and links"),
                     ({**data, "nodes": [{"node_id": "x", "feature_type": "spline"}]}, "feature_type"),
                     ({**data, "links": [{"source": "nope", "target": "x", "weight": 1}]}, "missing")]:
        with pytest.raises(ValueError, match=msg):
            from_circuit_tracer(bad)


def test_interp_file_and_store_roundtrip(tiny_models, tmp_path):
    from interp.methods.circuits.store import load_attribution_graph, save_attribution_graph
    from interp.store import Store

    model = tiny_models["llama"]
    g = attribution_graph(model, random_transcoders(model, [0, 1], 64, k=8), PROMPT, meta={"model": "tiny"})
    g.labels["E_1_0"] = "bos"
    g.qparams["pinnedIds"] = ["E_1_0"]
    for back in (from_interp(json.loads(json.dumps(to_interp(g)))), None):
        if back is None:
            store = Store(tmp_path / "store")
            with store.run("test", {}) as run:
                key = save_attribution_graph(store, g, run)
            back = load_attribution_graph(store, key)
        for name in ("adjacency", "active_features", "activation_values", "selected_features", "tokens",
                     "logit_probabilities", "node_bias"):
            assert torch.equal(getattr(back, name), getattr(g, name)), name
        assert torch.equal(back.node_value.isnan(), g.node_value.isnan())
        assert back.logit_tokens == g.logit_tokens and back.labels == g.labels and back.qparams == g.qparams
        assert to_circuit_tracer(back) == to_circuit_tracer(g)
    with pytest.raises(ValueError, match="schema"):
        from_interp({"schema": "other"})


def test_transcoder_set_roundtrip(tiny_models, tmp_path):
    import yaml

    from interp.dictionaries import Dictionary
    from interp.methods.circuits.transcoder_set import export_transcoder_set, import_transcoder_set

    model = tiny_models["llama"]
    d = model.info.d_model
    tcs = _transcoders(model)
    tcs[0] = Dictionary(d, 40, d, kind="transcoder", arch="topk", k=6, skip=True)
    tcs[0].init_weights(torch.Generator().manual_seed(5))
    path = export_transcoder_set(tcs, tmp_path / "set", "tiny-llama")
    cfg = yaml.safe_load(path.read_text())
    assert cfg["model_kind"] == "transcoder_set" and cfg["activation"] == "topk" and cfg["k"] == 6
    assert cfg["feature_input_hook"] == "ln2.hook_normalized" and cfg["feature_output_hook"] == "hook_mlp_out"
    from safetensors.torch import load_file

    assert load_file(cfg["transcoders"][1])["W_enc"].shape == (40, d)  # circuit-tracer's (d_sae, d_model)
    back, _ = import_transcoder_set(tmp_path / "set")
    x = torch.randn(5, d)
    for layer in (0, 1):
        for name in ("W_enc", "W_dec", "b_enc", "b_dec", "W_skip"):
            assert torch.equal(getattr(back[layer], name), getattr(tcs[layer], name)), name
        assert torch.allclose(back[layer](x), tcs[layer](x))
    jr = {0: Dictionary(d, 16, d, kind="transcoder", arch="jumprelu")}
    jr[0].init_weights()
    with torch.no_grad():
        jr[0].threshold.fill_(0.2)
    export_transcoder_set(jr, tmp_path / "jr", "tiny")
    back, cfg = import_transcoder_set(tmp_path / "jr")
    assert "activation" not in cfg and back[0].arch == "jumprelu" and torch.equal(back[0].threshold, jr[0].threshold)
    with pytest.raises(ValueError, match="every layer"):
        export_transcoder_set({1: tcs[1]}, tmp_path / "bad", "tiny")
    with pytest.raises(ValueError, match="one activation function"):
        export_transcoder_set({0: jr[0], 1: tcs[1]}, tmp_path / "bad", "tiny")
    with pytest.raises(FileNotFoundError, match="config.yaml"):
        import_transcoder_set(tmp_path / "nothing")


def test_cli_graph_export_import(tiny_dirs, tmp_path, capsys):
    from interp.cli import main
    from interp.store import Store

    store = tmp_path / "store"
    base = ["--model", str(tiny_dirs["llama"]), "--dicts", "random:64:8", "--store", str(store)]
    assert main(["circuit", "graph", "--prompt", PROMPT, "--max-feature-nodes", "20", *base]) == 0
    out = capsys.readouterr().out
    assert "estimate:" in out and "replacement score" in out
    key = Store(store).read("results", where={"name": "attribution-graph"})["key"].iloc[0]
    f = tmp_path / "ct.json"
    assert main(["circuit", "export", key, "--format", "circuit-tracer", "-o", str(f), "--store", str(store)]) == 0
    data = json.loads(f.read_text())
    assert {"metadata", "qParams", "nodes", "links"} <= set(data)
    other = tmp_path / "other"
    assert main(["circuit", "import", str(f), "--store", str(other)]) == 0
    key2 = Store(other).read("results", where={"name": "attribution-graph"})["key"].iloc[0]
    f2 = tmp_path / "ct2.json"
    assert main(["circuit", "export", key2, "--format", "circuit-tracer", "-o", str(f2), "--store", str(other)]) == 0
    assert json.loads(f2.read_text()) == data
    fi = tmp_path / "interp.json"
    assert main(["circuit", "export", key, "--format", "interp", "-o", str(fi), "--store", str(store)]) == 0
    assert json.loads(fi.read_text())["schema"] == "interp.attribution_graph/1"
    # build without --target explains the top next token.
    capsys.readouterr()
    assert main(["circuit", "--prompt", "The capital of France is", *base]) == 0
    assert "target: the top next token" in capsys.readouterr().out
    # Bad input: one line each, exit 2.
    bad = [["circuit", "graph", "--prompt", PROMPT, "--max-memory", "1e-9", *base],
           ["circuit", "graph", "--prompt", PROMPT, "--target", "latent:L1:0", *base],
           ["circuit", "graph", "--prompt", PROMPT, "--target", "logit:#1@2", *base],
           ["circuit", "graph", "--prompt", PROMPT, "--max-feature-nodes", "-3", *base],
           ["circuit", "graph", "--prompt", " ", *base],
           ["circuit", "export", key, "--format", "circuit-tracer", "--html", str(tmp_path / "x.html"),
            "--store", str(store)],
           ["circuit", "import", str(tmp_path / "interp.json.missing"), "--store", str(other)]]
    (tmp_path / "junk.json").write_text('{"nodes": []}')
    bad.append(["circuit", "import", str(tmp_path / "junk.json"), "--store", str(other)])
    for argv in bad:
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = [line for line in capsys.readouterr().err.splitlines() if line.strip() and not line.startswith("Loading weights")]
        assert len(err) == 1 and err[0].startswith("interp: error:"), (argv, err)
