"""The Circuits page on a stored hand-built attribution graph: pins, node edges, annotations, supernodes."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from helpers.app_store import circuit_json
from helpers.graphs import F0, F1, F2, IDS, MODEL, store_hand_graph
from helpers.paths import REPO

PAGE = REPO / "app" / "views" / "circuits.py"
KEY = "graph-hand"


@pytest.fixture
def store(tmp_path):
    from interp.store import Store

    store = Store(tmp_path / "store")
    store_hand_graph(store, KEY)
    with store.run("interp train", {}) as run:
        store.write("dictionaries", [{"name": f"tc-l{l}", "model": MODEL, "site": f"blocks.{l}.ln2.hook_normalized",
                                      "hook_out": f"blocks.{l}.hook_mlp_out", "kind": "transcoder", "arch": "topk",
                                      "config": {}, "metrics": {}} for l in (0, 1)], run_id=run)
    return store


@pytest.fixture
def open_page(monkeypatch, store):
    monkeypatch.setenv("INTERP_STORE", str(store.root))

    def run() -> AppTest:
        at = AppTest.from_file(str(PAGE), default_timeout=60)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at
    return run


def _ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def test_pins_are_saved_with_the_graph(open_page, store):
    from interp.methods.circuits.store import load_attribution_graph

    at = open_page()
    assert len(at.get("plotly_chart")) == 1  # the graph; no subgraph before anything is pinned
    pins = at.multiselect(key=f"pins-{KEY}")
    assert pins.value == []
    _ok(pins.select(IDS[F0]).select(IDS[F2]).run())
    assert load_attribution_graph(store, KEY).qparams["pinnedIds"] == [IDS[F0], IDS[F2]]
    at = open_page()  # a new session: the pins come from the store
    assert at.multiselect(key=f"pins-{KEY}").value == [IDS[F0], IDS[F2]]
    assert len(at.get("plotly_chart")) == 2  # the graph and the pinned subgraph
    _ok(at.multiselect(key=f"pins-{KEY}").unselect(IDS[F0]).run())
    assert load_attribution_graph(store, KEY).qparams["pinnedIds"] == [IDS[F2]]


def test_a_node_shows_its_edges_link_and_annotation(open_page, store):
    from interp.methods.circuits.store import load_attribution_graph

    at = open_page()
    _ok(at.selectbox(key=f"node-{KEY}").set_value(IDS[F2]).run())
    frames = [d.value for d in at.dataframe]
    incoming = next(f for f in frames if "source" in f)
    outgoing = next(f for f in frames if "target" in f)
    assert list(incoming["source"]) == [IDS[F0], IDS[F1]] and list(incoming["weight"]) == [1.0, -0.5]
    assert list(outgoing["weight"]) == [3.0]
    links = "\n".join(m.value for m in at.markdown)
    assert "feature?feature=" in links and "tc-l1" in links and "%2F7" in links  # layer 1's dictionary, latent 7
    _ok(at.text_input(key=f"note-{KEY}-{IDS[F2]}").input("verb detector").run())
    _ok(at.button(key=f"save-note-{KEY}").click().run())
    assert load_attribution_graph(store, KEY).qparams["annotations"] == {IDS[F2]: "verb detector"}
    at = open_page()
    assert "verb detector" in at.selectbox(key=f"node-{KEY}").format_func(IDS[F2])


def test_supernodes_are_saved_and_bad_ones_refused(open_page, store):
    from interp.methods.circuits.store import load_attribution_graph

    at = open_page()
    at.text_input(key=f"sn-label-{KEY}").input("early")
    at.multiselect(key=f"sn-nodes-{KEY}").select(IDS[F0]).select(IDS[F1])
    _ok(at.button(key=f"FormSubmitter:supernode-{KEY}-Add supernode").click().run())
    assert load_attribution_graph(store, KEY).qparams["supernodes"] == [["early", IDS[F0], IDS[F1]]]
    at = open_page()
    assert len(at.get("plotly_chart")) == 2  # a supernode makes a subgraph
    at.multiselect(key=f"sn-nodes-{KEY}").select(IDS[F2])  # no label
    at.button(key=f"FormSubmitter:supernode-{KEY}-Add supernode").click().run()
    assert "non-empty label" in "\n".join(e.value for e in at.error)
    assert load_attribution_graph(store, KEY).qparams["supernodes"] == [["early", IDS[F0], IDS[F1]]]


def test_path_search_view_stays_on_the_page(open_page, store):
    with store.run("interp circuit", {}) as run:
        store.write("results", [{"name": "circuit", "key": "circuit-demo", "payload": circuit_json()}], run_id=run)
    at = open_page()
    assert at.radio(key="circuit-view").options == ["Attribution graph", "Path search"]
    _ok(at.radio(key="circuit-view").set_value("Path search").run())
    assert "Nodes by |influence| on the target" in "\n".join(c.value for c in at.caption)
    assert len(at.get("plotly_chart")) == 1


def test_pins_of_pruned_away_nodes_are_kept(open_page, store):
    from interp.methods.circuits.store import load_attribution_graph, update_graph_params

    update_graph_params(store, KEY, pinned=["0_0_1"])  # layer 0's error at position 1: a node, but pruned away
    at = open_page()
    assert at.multiselect(key=f"pins-{KEY}").value == []
    assert load_attribution_graph(store, KEY).qparams["pinnedIds"] == ["0_0_1"]  # opening the page changes nothing
    _ok(at.multiselect(key=f"pins-{KEY}").select(IDS[F0]).run())
    assert load_attribution_graph(store, KEY).qparams["pinnedIds"] == [IDS[F0], "0_0_1"]
