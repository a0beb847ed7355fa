"""Attribution graph pages' building blocks on a hand-built graph: tables, figures, saved query state."""

from __future__ import annotations

import json

import pytest

from helpers.graphs import EMB1, EMB2, ERR_L1_P2, F0, F1, F2, IDS, OUT, hand_graph, store_hand_graph
from interp.methods.circuits.graph_files import to_circuit_tracer
from interp.methods.circuits.graph_view import check_params, graph_params, node_edges, node_table


@pytest.fixture
def data():
    return to_circuit_tracer(hand_graph())


def test_node_table_reads_kind_layer_position_and_labels(data):
    nodes = node_table(data).set_index("node_id")
    assert len(nodes) == 8  # 3 latents, the used error, 3 embeddings (always kept), the logit
    f0 = nodes.loc[IDS[F0]]
    assert (f0["kind"], f0["layer"], f0["position"], f0["token"], f0["index"]) == ("feature", 0, 1, " cat", 5)
    assert f0["label"] == "L0 #5 @ ' cat'" and f0["activation"] == 2.0
    assert nodes.loc[IDS[ERR_L1_P2], "label"] == "error L1 @ ' sat'"
    assert nodes.loc[IDS[EMB1], "layer"] == -1 and nodes.loc[IDS[OUT], "layer"] == 2  # logits above the last layer
    assert nodes.loc[IDS[OUT], "label"] == 'Output " mat" (p=0.600)'
    data["qParams"]["annotations"] = {IDS[F2]: "verb detector"}
    assert node_table(data).set_index("node_id").loc[IDS[F2], "label"] == "verb detector"


def test_node_edges_in_and_out(data):
    edges = node_edges(data, IDS[F2])
    assert list(edges.incoming["source"]) == [IDS[F0], IDS[F1]]  # by |weight|: 1.0, then -0.5
    assert list(edges.incoming["weight"]) == [1.0, -0.5]
    assert list(edges.outgoing["target"]) == [IDS[OUT]] and list(edges.outgoing["weight"]) == [3.0]
    assert edges.incoming["label"].iloc[0] == "L0 #5 @ ' cat'"
    assert node_edges(data, IDS[EMB1]).incoming.empty
    with pytest.raises(ValueError, match="'9_9_9' is not in this graph"):
        node_edges(data, "9_9_9")


def test_check_params_refuses_unknown_nodes():
    ids = list(IDS.values())
    check_params(ids, [IDS[F0]], [["early", IDS[F0], IDS[F1]]], {IDS[F2]: "x"})
    with pytest.raises(ValueError, match="pinned node '5_5_5' is not"):
        check_params(ids, [IDS[F0], "5_5_5"])
    with pytest.raises(ValueError, match="non-empty label"):
        check_params(ids, supernodes=[[" ", IDS[F0]]])
    with pytest.raises(ValueError, match="at least one node"):
        check_params(ids, supernodes=[["alone"]])
    with pytest.raises(ValueError, match="supernode 'g': node 'nope'"):
        check_params(ids, supernodes=[["g", "nope"]])
    with pytest.raises(ValueError, match="annotated node"):
        check_params(ids, annotations={"nope": "x"})


def test_figure_lays_out_by_layer_and_position_with_widths_by_weight(data):
    from interp.viz.circuits import EDGE_BINS, attribution_graph_figure, graph_layout

    xy = graph_layout(node_table(data))
    assert xy[IDS[F0]] == (1.0, 0.0) and xy[IDS[OUT]] == (2.0, 2.0) and xy[IDS[EMB2]] == (2.0, -1.0)
    # F2 and the error share (position 2, layer 1): spread, the more influential (smaller cumulative) first.
    assert xy[IDS[F2]] == pytest.approx((1.8, 1.0)) and xy[IDS[ERR_L1_P2]] == pytest.approx((2.2, 1.0))
    fig = attribution_graph_figure(data, pinned=[IDS[F2]], selected=IDS[F0])
    lines = [t for t in fig.data if t.mode == "lines"]
    # |w| / 3.0 in 5 classes: +{0.5, 0.5} class 0, +{1, 1, 1} class 1, +2 class 3, +3 class 4, -0.5 class 0.
    got = sorted((t.line.color.startswith("rgba(31"), len(t.x) // 3, t.line.width) for t in lines)
    width = [0.5 + 6 * (b + 1) / EDGE_BINS for b in range(EDGE_BINS)]
    assert got == sorted([(False, 1, width[0]), (True, 2, width[0]), (True, 3, width[1]), (True, 1, width[3]),
                          (True, 1, width[4])])
    markers = {t.name: t for t in fig.data if t.mode == "markers"}
    assert set(markers) == {"feature", "error", "embedding", "logit"}
    feats = markers["feature"]
    assert list(feats.customdata) == [IDS[F0], IDS[F1], IDS[F2]]
    assert list(feats.marker.symbol) == ["circle", "circle", "star"] and feats.marker.size[0] == 16
    assert "L0 #5 @ ' cat'" in feats.text[0] and "activation 2" in feats.text[0]
    assert list(fig.layout.yaxis.ticktext) == ["emb", "0", "1", "logit"]
    assert list(fig.layout.xaxis.ticktext) == ["<bos>", " cat", " sat"]
    # An AttributionGraph draws the same as its file.
    assert len(attribution_graph_figure(hand_graph()).data) == len(attribution_graph_figure(data).data)


def test_subgraph_merges_supernodes_and_sums_their_edges(data):
    from interp.viz.circuits import subgraph_figure

    fig = subgraph_figure(data, pinned=[IDS[F0], IDS[F2], IDS[OUT]], supernodes=[["early", IDS[F0], IDS[F1]]])
    markers = {t.name: t for t in fig.data if t.mode == "markers"}
    assert list(markers["supernode"].customdata) == ["supernode: early"]
    assert (markers["supernode"].x[0], markers["supernode"].y[0]) == (1.5, 0.0)  # mean place of F0, F1
    assert "early (2 nodes)" in markers["supernode"].text[0]
    assert list(markers["feature"].customdata) == [IDS[F2]] and list(markers["logit"].customdata) == [IDS[OUT]]
    segments = sorted(len(t.x) // 3 for t in fig.data if t.mode == "lines")
    assert sum(segments) == 2  # early -> F2 (1.0 - 0.5), F2 -> logit; no embedding edges (not pinned)
    assert fig.layout.title.text == "subgraph: 3 nodes, 2 edges"


def test_params_saved_reloaded_and_exported(tmp_path, capsys):
    from interp.cli import main
    from interp.methods.circuits.graph_files import from_circuit_tracer
    from interp.methods.circuits.store import (attribution_graph_file, attribution_graph_table,
                                               load_attribution_graph, update_graph_params)
    from interp.store import Store

    store = Store(tmp_path / "store")
    key = store_hand_graph(store)
    q = update_graph_params(store, key, pinned=[IDS[F0], IDS[OUT], IDS[F0]], supernodes=[["early", IDS[F0], IDS[F1]]],
                            annotations={IDS[F2]: "verb detector", IDS[F1]: " "})
    assert q["pinnedIds"] == [IDS[F0], IDS[OUT]] and q["annotations"] == {IDS[F2]: "verb detector"}
    update_graph_params(store, key, pinned=[IDS[F0], IDS[F2]])  # the others stay as saved
    back = load_attribution_graph(store, key)
    assert back.qparams["pinnedIds"] == [IDS[F0], IDS[F2]]
    assert back.qparams["supernodes"] == [["early", IDS[F0], IDS[F1]]]
    assert back.qparams["annotations"] == {IDS[F2]: "verb detector"}
    assert len(store.read("results", where={"name": "attribution-graph", "key": key})) == 1  # latest row wins
    light = load_attribution_graph(store, key, adjacency=False)  # what the update reads: node fields only
    assert light.adjacency.shape == (13, 0) and light.n_nodes == 13 and light.qparams == back.qparams
    assert attribution_graph_table(store).set_index("key").loc[key, "pinned"] == 2
    view = attribution_graph_file(store, key)
    assert graph_params(view).pinned == [IDS[F0], IDS[F2]] and view["metadata"]["dictionaries"] == {"0": "tc-l0",
                                                                                                   "1": "tc-l1"}
    out = tmp_path / "ct.json"
    assert main(["circuit", "export", key, "--format", "circuit-tracer", "-o", str(out),
                 "--store", str(store.root)]) == 0
    exported = json.loads(out.read_text())
    assert exported["qParams"]["pinnedIds"] == [IDS[F0], IDS[F2]]
    assert exported["qParams"]["supernodes"] == [["early", IDS[F0], IDS[F1]]]
    assert next(n for n in exported["nodes"] if n["node_id"] == IDS[F2])["clerp"] == "verb detector"
    assert from_circuit_tracer(exported).qparams == exported["qParams"]
    with pytest.raises(ValueError, match="pinned node 'nope'"):
        update_graph_params(store, key, pinned=["nope"])
    assert load_attribution_graph(store, key).qparams["pinnedIds"] == [IDS[F0], IDS[F2]]  # refused: unchanged
    with pytest.raises(KeyError, match="no attribution graph 'other'"):
        update_graph_params(store, "other", pinned=[])
