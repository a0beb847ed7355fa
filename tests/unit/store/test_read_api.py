"""The store read API (`interp.store.read`) on a hand-built store with values counted by hand.

`app_store.populate(n_layers=2, n_neurons=8)` writes 16 neurons (feature j = 8 * layer + i),
the transcoder latent LATENT (j = 16) and 3 ObsProp vectors: 20 features. Feature j has
max_act 2 + j % 5, label '<WORDS[j % 12]> detector', top tokens WORDS[(j + rank) % 12] with
ids 100 + (j + rank) % 50, and TOP_NEURON (j = 15) has specialisation 0.99 and ' Paris' first.
"""

from __future__ import annotations

import pytest

from helpers.app_store import LATENT, MODEL, PROMPT, TOP_NEURON, populate
from interp.features import FeatureId
from interp.store import read
from interp.store.read import SearchQuery


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return populate(tmp_path_factory.mktemp("read") / "store", n_layers=2, n_neurons=8, examples=True)


def neuron(layer: int, index: int) -> str:
    return FeatureId(MODEL, f"blocks.{layer}.mlp.hook_post", "neuron", index).key


def test_table_counts(store):
    counts = read.table_counts(store)
    assert counts == {"models": 1, "runs": 4, "dictionaries": 2, "features": 20, "attributions": 6,
                      "complexity": 16, "results": 9, "feature_tokens": 17 * 2 * 2 * 5,
                      "activation_examples": 17 * 2 * 3, "complexity_features": 1}


def test_facets(store):
    facets = read.facets(store)
    assert facets["model"] == [MODEL]
    assert facets["kind"] == ["neuron", "obsprop", "transcoder"]
    assert facets["source"] == ["", "she_vs_he", "tc-l2"]
    assert facets["site"] == ["blocks.0.hook_attn_in", "blocks.0.mlp.hook_post", "blocks.1.hook_attn_in",
                              "blocks.1.mlp.hook_post", "blocks.2.hook_attn_in", "blocks.2.ln2.hook_normalized"]


def test_search_orders_and_pages(store):
    q = dict(order="max_act", limit=3)
    first, total = read.search(store, SearchQuery(**q))
    assert total == 20
    # max_act 6 at j = 4, 9, 14; ties by site then index
    assert list(first["key"]) == [neuron(0, 4), neuron(1, 1), neuron(1, 6)]
    assert list(first["max_act"]) == [6.0, 6.0, 6.0]
    second, _ = read.search(store, SearchQuery(**q, offset=3))
    assert list(second["key"]) == [neuron(0, 3), neuron(1, 0), neuron(1, 5)]  # max_act 5; LATENT (j=16) has 3
    last, total = read.search(store, SearchQuery(**q, offset=18))
    assert total == 20 and len(last) == 2 and set(last["kind"]) == {"obsprop"}  # no max_act: NULLS LAST
    by_index, total = read.search(store, SearchQuery(kinds=("neuron",), order="index", descending=False, limit=3))
    assert total == 16 and list(by_index["key"]) == [neuron(0, 0), neuron(1, 0), neuron(0, 1)]


def test_search_filters(store):
    paris, total = read.search(store, SearchQuery(token="paris", token_rank=1))
    assert total == 3  # ' Paris' first at j = 2, 14 and the forced TOP_NEURON
    assert list(paris["key"])[0] == TOP_NEURON.key  # specialisation 0.99 sorts first
    assert set(paris["key"]) == {neuron(0, 2), neuron(1, 6), TOP_NEURON.key}
    assert read.search(store, SearchQuery(label="dog"))[1] == 2  # j = 1, 13
    latent, total = read.search(store, SearchQuery(sources=("tc-l2",)))
    assert total == 1 and list(latent["key"]) == [LATENT.key]
    # j = 16: top tokens WORDS[4..8] of its first direction ('down')
    assert latent["top_tokens"].iloc[0] == " cat | <script> |  & |  capital |  is"


def test_top_tokens(store):
    frame = read.top_tokens(store, read.search(store, SearchQuery(kinds=("transcoder",)))[0], n=2)
    assert list(frame["top_tokens"]) == [" cat | <script>"]


def test_one_feature(store):
    row = read.feature_row(store, TOP_NEURON)
    assert row["specialisation"] == pytest.approx(0.99) and row["metrics"] == {"entropy": 3.5}
    assert read.feature_row(store, FeatureId(MODEL, "blocks.0.mlp.hook_post", "neuron", 99)) is None
    assert read.parse_key(store, LATENT.key) == LATENT
    with pytest.raises(ValueError, match="no feature"):
        read.parse_key(store, f"{MODEL}//blocks.0.mlp.hook_post/neuron/99")
    assert len(read.feature_tokens(store, TOP_NEURON)) == 2 * 2 * 5
    assert len(read.feature_examples(store, TOP_NEURON)) == 2 * 3
    assert len(read.feature_complexity(store, TOP_NEURON)) == 1
    assert len(read.feature_complexity(store, LATENT)) == 1  # from the older results payload
    from interp.methods.neurons.store import clamp_sweeps

    sweeps = clamp_sweeps(store, TOP_NEURON)
    assert [s["rise"] for s in sweeps] == [0.58]
    assert clamp_sweeps(store, FeatureId(MODEL, "blocks.0.mlp.hook_post", "neuron", 0)) == []


def test_neighbours_count_shared_top_token_ids(store):
    near = read.neighbours(store, TOP_NEURON, n=3)
    # TOP_NEURON (j = 15) has ids 115..119; j = 14 and 16 share 4 of them, j = 13 shares 3
    assert list(near["shared"]) == [4, 4, 3]
    keys = [FeatureId.from_record(r).key for r in near.to_dict("records")]
    assert set(keys[:2]) == {neuron(1, 6), LATENT.key} and keys[2] == neuron(1, 5)


def test_method_results(store):
    graphs = read.circuits(store)
    assert graphs[["key", "nodes", "edges", "target"]].to_dict("records") == [
        {"key": "circuit-demo", "nodes": 3, "edges": 2, "target": "logit ' Paris'"}]
    with pytest.raises(ValueError, match="no circuit 'nope'"):
        read.circuit_payload(store, "nope")
    hits = read.circuits_with(store, LATENT)
    assert hits[["circuit", "position", "influence"]].to_dict("records") == [
        {"circuit": "circuit-demo", "position": 4, "influence": 0.7}]
    assert len(read.attributions(store, prompt=PROMPT)) == 3
    summary = read.faithfulness_summary(store).set_index("method")
    assert summary.loc["reagent", "n"] == 2
    assert summary.loc["reagent", "soft_ns"] == pytest.approx((0.42 + 0.50) / 2)
    assert summary.loc["random", "soft_nc"] == pytest.approx((0.04 + 0.06) / 2)
    cx = read.complexity_features(store, model=MODEL)
    # 16 neurons from the complexity table + the latent whose only copy is an older results payload
    assert len(cx) == 17 and cx["label"].notna().all()


def test_store_wide_reads(store):
    assert list(read.results(store, prefix="obsprop_")["name"]) == [
        "obsprop_ablation", "obsprop_data_efficiency", "obsprop_ranking"]
    ranking = read.results(store, name="obsprop_ranking")
    assert [r["component"] for r in ranking["payload"].iloc[0]["ranking"]] == ["L0H1", "L1H2", "L2H0"]
    names = read.result_names(store).set_index("name")["n"].to_dict()
    assert names == {"circuit": 1, "clamp": 1, "clamp_report": 1, "complexity_features": 1, "obsprop_ablation": 1,
                     "obsprop_data_efficiency": 1, "obsprop_ranking": 1, "reagent_faithfulness": 2}
    assert read.runs(store)["command"].tolist() == ["interp obsprop", "interp attribute", "interp train",
                                                    "interp map-neurons"]
    assert sorted(read.dictionaries(store)["metric.l0"]) == [16.0, 32.0]
    stats = read.layer_stats(store, MODEL).set_index(["kind", "site"])["n"]
    assert stats[("neuron", "blocks.0.mlp.hook_post")] == 8 and stats[("transcoder", LATENT.site)] == 1
    assert stats.sum() == 20
    one = read.feature_sample(store, MODEL, "neuron", n=5)
    assert len(one) == 5 and set(one["kind"]) == {"neuron"}  # the sample is drawn after the filter
    assert one.equals(read.feature_sample(store, MODEL, "neuron", n=5))  # a repeatable sample
    assert len(read.feature_sample(store, MODEL, "transcoder", n=5)) == 1
    assert len(read.feature_sample(store, n=100)) == 20


def test_counts_follow_latest_wins(tmp_path):
    store = populate(tmp_path / "store", n_layers=1, n_neurons=2, examples=False)
    before = read.table_counts(store)
    run = store.start_run("relabel", {})
    store.write("features", [{**FeatureId(MODEL, "blocks.0.mlp.hook_post", "neuron", 0).to_record(),
                              "label": "relabelled"}], run_id=run)
    after = read.table_counts(store)
    assert after["features"] == before["features"]  # the new row replaces the old one
    assert read.search(store, SearchQuery(label="relabelled"))[1] == 1
