"""The store read API the dashboard calls: filters, paging, latest-wins and literal user text."""

from __future__ import annotations

import pytest

from helpers.app_store import LATENT, MODEL, TOP_NEURON, populate
from interp.features import FeatureId
from interp.store import read
from interp.store.read import SearchQuery


@pytest.fixture()
def store(tmp_path):
    return populate(tmp_path / "store", n_layers=2, n_neurons=10, examples=True)


def _keys(frame):
    return set(frame["key"]) if len(frame) else set()


def test_token_search_follows_latest_wins(store):
    found, total = read.search(store, SearchQuery(token="Paris", token_rank=1))
    toks = store.read("feature_tokens")
    firsts = toks[(toks["end"] == "top") & (toks["rank"] == 0) & (toks["token_str"] == " Paris")]
    assert _keys(found) == {FeatureId.from_record(r).key for r in firsts.to_dict("records")}
    assert TOP_NEURON.key in _keys(found) and total == len(found)
    fid = FeatureId(MODEL, "blocks.0.mlp.hook_post", "neuron", 3)
    run = store.start_run("relabel", {})
    rows = [{**fid.to_record(), "direction": "up", "variant": "gain_folded", "end": "top", "rank": 0,
             "token_id": 1, "token_str": " O'Brien%_"}]
    store.write("feature_tokens", rows, run_id=run)
    found, total = read.search(store, SearchQuery(token=" o'brien%_ ", token_rank=1))
    assert _keys(found) == {fid.key} and total == 1
    # a later write replaces the feature's 'up' tokens: the old token no longer matches
    store.write("feature_tokens", [{**rows[0], "token_str": " Lyon"}], run_id=run)
    assert read.search(store, SearchQuery(token="o'brien%_"))[1] == 0
    assert _keys(read.search(store, SearchQuery(token="lyon", token_rank=1))[0]) == {fid.key}
    # % and _ are literal in text filters
    assert read.search(store, SearchQuery(context="%"))[1] == 0
    assert read.search(store, SearchQuery(label="e%v"))[1] == 0
    assert read.search(store, SearchQuery(label="e_v"))[1] == 3  # the ObsProp vectors 'she_vs_he via ...'
    assert read.search(store, SearchQuery(label="exv"))[1] == 0


def test_filters_combine_and_pages_partition_the_matches(store):
    everything = read.search(store, SearchQuery(limit=1000))[0]
    assert len(everything) == 2 * 10 + 1 + 3  # neurons, the transcoder latent, ObsProp vectors
    neurons = everything[everything["kind"] == "neuron"]
    expected = neurons[neurons["specialisation"].between(0.2, 0.7)].sort_values("specialisation", ascending=False)
    q = dict(kinds=("neuron",), specialisation=(0.2, 0.7), limit=3)
    pages = [read.search(store, SearchQuery(**q, offset=o))[0] for o in range(0, len(expected) + 3, 3)]
    seen = [k for p in pages for k in (p["key"] if len(p) else [])]
    assert seen == list(expected["key"])
    assert read.search(store, SearchQuery(**q))[1] == len(expected)
    latent = read.search(store, SearchQuery(sources=("tc-l2",)))[0]
    assert list(latent["key"]) == [LATENT.key]


def test_context_search_and_top_tokens(store):
    found, total = read.search(store, SearchQuery(context="<script> &", limit=1000))
    assert total == len(found) > 0
    for key in found["key"]:
        ex = store.examples(read.parse_key(store, key))
        assert any("<script> &" in "".join(t) for t in ex["tokens"])
    row = found.iloc[0]
    toks = store.feature_tokens(read.parse_key(store, row["key"]), direction="down")
    expected = " | ".join(toks[toks["end"] == "top"].sort_values("rank")["token_str"])
    assert row["top_tokens"] == expected  # 'down' sorts before 'up'


def test_bad_queries_are_clear_errors(store):
    with pytest.raises(ValueError, match="cannot sort by"):
        SearchQuery(order="label; DROP TABLE features")
    with pytest.raises(ValueError, match="unknown feature kind"):
        SearchQuery(kinds=("wizard",))
    with pytest.raises(ValueError, match="lower bound exceeds"):
        SearchQuery(complexity=(0.9, 0.1))
    with pytest.raises(ValueError, match="no feature"):
        read.parse_key(store, f"{MODEL}//blocks.0.mlp.hook_post/neuron/999")
    assert read.parse_key(store, LATENT.key) == LATENT


def test_neighbours_share_top_tokens(store):
    fid = FeatureId(MODEL, "blocks.0.mlp.hook_post", "neuron", 1)
    near = read.neighbours(store, fid, n=5)
    mine = set(store.feature_tokens(fid).query("end == 'top'")["token_id"])
    for r in near.to_dict("records"):
        other = store.feature_tokens(FeatureId.from_record(r)).query("end == 'top'")
        assert r["shared"] == len(mine & set(other["token_id"])) >= 1
    assert list(near["shared"]) == sorted(near["shared"], reverse=True)
