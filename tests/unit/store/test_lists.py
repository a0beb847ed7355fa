"""Named feature lists: add, re-add, remove, labels shown, and the CSV/JSON export round trip."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from interp.features import FeatureId
from interp.store import Store
from interp.store import lists

A = FeatureId("m", "blocks.0.mlp.hook_post", "neuron", 4)
B = FeatureId("m", "blocks.1.ln2.hook_normalized", "transcoder", 9, source="tc/a")


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "store")
    with s.run("test fill") as run:
        s.write("features", [{**A.to_record(), "label": "own label"}, {**B.to_record(), "label": None}], run_id=run)
        s.write("feature_labels", [{**B.to_record(), "origin": "auto", "label": "dog/puppy"}], run_id=run)
    return s


def test_add_remove_and_readd(store):
    lists.add_to_list(store, "animals", A, note="first", author="ada")
    lists.add_to_list(store, "animals", B, note="a latent", author="ada")
    lists.add_to_list(store, "other", A)
    got = lists.read_list(store, "animals")
    assert got["key"].tolist() == [A.key, B.key]
    assert got["label"].tolist() == ["own label", "dog/puppy"]
    assert got["note"].tolist() == ["first", "a latent"] and set(got["author"]) == {"ada"}

    lists.remove_from_list(store, "animals", A)
    assert lists.read_list(store, "animals")["key"].tolist() == [B.key]
    assert lists.read_list(store, "other")["key"].tolist() == [A.key]
    with pytest.raises(KeyError, match="not on list"):
        lists.remove_from_list(store, "animals", A)

    lists.add_to_list(store, "animals", B, note="renamed note")
    got = lists.read_list(store, "animals")
    assert got["note"].tolist() == ["renamed note"]
    names = lists.list_names(store).set_index("list")["features"].to_dict()
    assert names == {"animals": 1, "other": 1}
    assert lists.read_list(store, "nothing here").empty


def test_export_round_trip(store):
    lists.add_to_list(store, "animals", A, note="commas, \"quotes\"", author="ada")
    lists.add_to_list(store, "animals", B, note="", author="bob")
    frame = lists.read_list(store, "animals")
    csv = pd.read_csv(io.StringIO(lists.export_list(frame, "csv")), keep_default_na=False)
    records = json.loads(lists.export_list(frame, "json"))
    for back in (csv, pd.DataFrame(records)):
        assert back.columns.tolist() == lists.COLUMNS
        assert back["key"].tolist() == [A.key, B.key]
        assert back["note"].tolist() == ["commas, \"quotes\"", ""]
        assert back["index"].astype(int).tolist() == [4, 9]
        assert [FeatureId.from_record(r) for r in back.to_dict("records")] == [A, B]
        assert pd.to_datetime(back["created_at"]).tolist() == frame["created_at"].tolist()
    with pytest.raises(ValueError, match="export format"):
        lists.export_list(frame, "xml")


@pytest.mark.parametrize("name", ["", "  ", "../etc", "a" * 81, "-x", "bad/name"])
def test_bad_list_names_are_refused(store, name):
    with pytest.raises(ValueError, match="list name"):
        lists.add_to_list(store, name, A)
