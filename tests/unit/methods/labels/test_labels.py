"""The automatic label rule on hand-built tables, and user edits winning over it."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from interp.features import FeatureId
from interp.methods.labels import rule
from interp.methods.labels.store import build_labels, feature_labels, save_edit, write_labels
from interp.store import Store, read

M = "m"
A = FeatureId(M, "blocks.0.mlp.hook_post", "neuron", 0)
B = FeatureId(M, "blocks.1.ln2.hook_normalized", "transcoder", 2, source="tc")
C = FeatureId(M, "blocks.1.mlp.hook_post", "neuron", 5)
D = FeatureId(M, "blocks.1.ln2.hook_normalized", "transcoder", 3, source="tc")


def _tokens(fid, direction, variant, words, end="top"):
    return [{**fid.to_record(), "direction": direction, "variant": variant, "end": end, "rank": r,
             "token_id": r, "token_str": w, "logit": 1.0, "prob": 0.1} for r, w in enumerate(words)]


def _example(fid, word, act, rank):
    return {**fid.to_record(), "group": "top", "example_rank": rank, "tokens": ["<s>", word], "token_ids": [0, 1],
            "acts": [0.0, act], "max_act": act, "max_pos": 1}


TOKENS = pd.DataFrame(
    _tokens(A, "down", "folded", [" Paris", " paris", "\n", "France", " Lyon", " Rome"])
    + _tokens(A, "down", "raw", [" x", " y"])              # a later variant: not used
    + _tokens(A, "up", "folded", [" dog"])                 # not an output direction
    + _tokens(A, "down", "folded", [" zzz"], end="bottom")  # bottom tokens: not used
    + _tokens(B, "decoder", "raw", [" cat", " Cat", " kitten"])
    + _tokens(C, "down", "folded", [" yes"]))
EXAMPLES = [_example(A, " paris", 2.0, 0), _example(A, "Paris", 1.5, 1), _example(A, " the", 3.0, 2),
            _example(A, " of", 0.5, 3), _example(A, " ", 9.0, 4),  # whitespace: skipped
            _example(B, " puppy", 1.0, 0), _example(B, " dog", 1.0, 1), _example(D, " no", 0.7, 0)]


def _example_tokens():
    return pd.DataFrame([{**{c: e[c] for c in rule.IDENTITY}, "token": e["tokens"][e["max_pos"]],
                          "max_act": e["max_act"]} for e in EXAMPLES])


def _by_key(frame):
    return {FeatureId.from_record(r).key: r for r in frame.to_dict("records")}


def test_output_label_is_first_three_distinct_stripped_tokens_of_the_output_direction():
    got = _by_key(rule.output_labels(TOKENS))
    # " paris" repeats "Paris" case-insensitively, "\n" strips to nothing, " Rome" is fourth
    assert got[A.key]["output_label"] == "Paris/France/Lyon"
    assert got[B.key]["output_label"] == "cat/kitten"
    assert got[C.key]["output_label"] == "yes"
    assert D.key not in got


def test_input_label_weights_tokens_at_the_maximum_by_activation():
    got = _by_key(rule.input_labels(_example_tokens()))
    # paris: 2.0 + 1.5 = 3.5 (spelled as its heaviest example " paris"), the: 3.0, of: 0.5
    assert got[A.key]["input_label"] == "paris/the/of"
    assert got[B.key]["input_label"] == "dog/puppy"  # tied weights: alphabetical
    assert got[D.key]["input_label"] == "no"


def test_combined_label_and_agreement():
    labels = _by_key(rule.combine(rule.output_labels(TOKENS), rule.input_labels(_example_tokens())))
    assert (labels[A.key]["agree"], labels[A.key]["label"]) == (True, "Paris/France/Lyon")
    assert (labels[B.key]["agree"], labels[B.key]["label"]) == (False, "in: dog/puppy -> out: cat/kitten")
    assert labels[C.key]["agree"] is None and labels[C.key]["label"] == "yes"
    assert labels[D.key]["agree"] is None and labels[D.key]["label"] == "no"


def test_agreement_by_layer_counts_only_features_with_both_labels():
    labels = rule.combine(rule.output_labels(TOKENS), rule.input_labels(_example_tokens()))
    table = rule.agreement_by_layer(labels).set_index(["kind", "layer"])
    assert table.loc[("neuron", 0), ["features", "with_both", "agreeing", "share"]].tolist() == [1, 1, 1, 1.0]
    assert table.loc[("neuron", 1), ["features", "with_both", "agreeing"]].tolist() == [1, 0, 0]
    assert math.isnan(table.loc[("neuron", 1), "share"])
    assert table.loc[("transcoder", 1), ["features", "with_both", "agreeing", "share"]].tolist() == [2, 1, 0, 0.0]


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "store")
    with s.run("test fill") as run:
        s.write("features", [{**f.to_record(), "label": None} for f in (A, B, C, D)], run_id=run)
        s.write("feature_tokens", TOKENS, run_id=run)
        s.write("activation_examples", EXAMPLES, run_id=run)
    return s


def test_labels_from_the_store_and_edits_win(store):
    build = build_labels(store, M)
    write_labels(store, M, build)
    got = feature_labels(store, A)
    assert got["label"] == "Paris/France/Lyon" and got["user"] is None
    assert (got["auto"]["output_label"], got["auto"]["input_label"]) == ("Paris/France/Lyon", "paris/the/of")

    save_edit(store, A, "  capital cities ", author="ada")
    save_edit(store, A, "French capital", author="bob")
    got = feature_labels(store, A)
    assert got["label"] == "French capital" and got["user"]["author"] == "bob"
    assert got["auto"]["label"] == "Paris/France/Lyon"  # the automatic row is kept
    assert len(store.read("feature_labels", where={"origin": "user"}, latest=False)) == 2  # both edits stored
    with pytest.raises(ValueError, match="empty"):
        save_edit(store, A, "   ")


def test_search_matches_shown_input_and_output_labels(store):
    write_labels(store, M, build_labels(store, M))
    save_edit(store, C, "affirmation", author="ada")

    def found(text):
        page, _ = read.search(store, read.SearchQuery(label=text, order="index"))
        return set(page["key"])

    assert found("affirm") == {C.key}
    assert found("puppy") == {B.key}       # input label
    assert found("lyon") == {A.key}        # output label
    assert found("kitten") == {B.key}
    page, _ = read.search(store, read.SearchQuery(label="affirm"))
    assert page["label"].tolist() == ["affirmation"]
