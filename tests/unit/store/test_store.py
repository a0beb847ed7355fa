"""The feature store: round trips, latest-wins replacement, validation, versions, tensors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from interp.features import FeatureId, FeatureKind
from interp.store import SCHEMA_VERSION, TABLES, Store, StoreError, StoreWarning
from interp.store.tables import constant

MODEL = "EleutherAI/pythia-70m"
SITE = "blocks.1.mlp.hook_post"


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "store")


@pytest.fixture
def run(store):
    return store.start_run("pytest", {"k": 3}, corpus={"name": "toy", "n": 2}, seed=7)


def ident(index, kind="neuron", site=SITE, source=""):
    return FeatureId(MODEL, site, kind, index, source).to_record()


ROWS = {
    "models": [{"model": MODEL, "architecture": {"type": "gpt_neox"}, "n_layers": 6, "d_model": 512,
                "d_mlp": 2048, "d_vocab": 50304}],
    "dictionaries": [{"name": "pythia-l1-sae", "model": MODEL, "site": SITE, "hook_out": None, "kind": "sae",
                      "arch": "topk", "config": {"k": 32}, "metrics": {"fvu": 0.1}, "path": "dictionaries/x"}],
    "features": [{**ident(i), "label": f"f{i}", "density": i / 10} for i in range(3)],
    "feature_tokens": [{**ident(0), "direction": "up", "variant": "raw", "end": end, "rank": r,
                        "token_id": r, "token_str": f"t{r}", "logit": 1.0 - r, "prob": 0.5}
                       for end in ("top", "bottom") for r in range(3)],
    "activation_examples": [{**ident(0), "group": "top", "example_rank": r, "tokens": ["a", "b"],
                             "token_ids": [1, 2], "acts": [0.5, 1.5], "max_act": 1.5, "max_pos": 1}
                            for r in range(2)],
    "attributions": [{"model": MODEL, "prompt": "The cat", "method": "ig", "target": " sat",
                      "tokens": ["The", " cat"], "scores": [0.25, 0.75], "extra": {"steps": 8}}],
    "complexity": [{**ident(0), "K": 0.75, "first_decodable_layer": 2, "curve": [0.0, 0.5, 1.0], "importance": 0.3}],
    "results": [{"name": "bench", "key": "acc", "payload": {"value": 0.9}}],
}


@pytest.mark.parametrize("table", sorted(ROWS))
def test_round_trip_every_table(store, run, table):
    store.write(table, ROWS[table], run_id=run)
    out = store.read(table)
    assert len(out) == len(ROWS[table])
    assert set(out["run_id"]) == {run}
    first = out.iloc[0]
    for col, value in ROWS[table][0].items():
        got = first[col]
        if col in TABLES[table].json_cols:
            got = json.loads(got)
        if isinstance(value, list):
            got = list(got)
            assert got == pytest.approx(value) if isinstance(value[0], float) else got == value
        else:
            assert got == value, (table, col)
    assert "_write_id" not in out.columns


def test_runs_record_provenance(store, run):
    record = store.get_run(run)
    assert record["status"] == "running" and record["seed"] == 7
    assert record["config"] == {"k": 3} and record["corpus"] == {"name": "toy", "n": 2}
    assert {"torch", "duckdb", "transformer-lens", "sae-lens", "transformers"} <= set(record["packages"])
    store.finish_run(run, "done")
    record = store.get_run(run)
    assert record["status"] == "done" and record["finished_at"] >= record["started_at"]
    assert len(store.read("runs")) == 1
    with pytest.raises(ValueError, match="valid statuses"):
        store.finish_run(run, "finished-ish")
    with pytest.raises(StoreError, match="start_run"):
        store.write("runs", [{"run_id": run}], run_id=run)


def test_latest_write_replaces_whole_group(store, run):
    store.write("feature_tokens", ROWS["feature_tokens"], run_id=run)
    rerun = store.start_run("pytest again", {})
    # The re-run writes only one rank: the old ranks of the same (feature, direction, variant) go.
    store.write("feature_tokens", [{**ROWS["feature_tokens"][0], "token_str": "new"}], run_id=rerun)
    other = [{**r, "direction": "down"} for r in ROWS["feature_tokens"]]
    store.write("feature_tokens", other, run_id=run)
    fid = FeatureId(MODEL, SITE, FeatureKind.NEURON, 0)
    up = store.feature_tokens(fid, direction="up")
    assert list(up["token_str"]) == ["new"] and list(up["run_id"]) == [rerun]
    assert len(store.feature_tokens(fid, direction="down")) == 6
    assert len(store.read("feature_tokens", latest=False)) == 13


def test_latest_wins_per_feature_and_filters(store, run):
    store.write("features", ROWS["features"], run_id=run)
    store.write("features", [{**ident(1), "label": "relabelled", "density": 0.9}], run_id=run)
    out = store.features(model=MODEL, kind="neuron")
    assert list(out["label"]) == ["f0", "relabelled", "f2"]
    # A filter on a non-key column must apply after resolution, never resurrect old rows.
    assert store.read("features", where={"label": "f1"}).empty
    assert list(store.read("features", where={"index": [0, 2]}, columns=["index"])["index"]) == [0, 2]
    assert store.features(model="other/model").empty
    assert store.features(kind=FeatureKind.SAE).empty


def test_extra_feature_columns_and_examples(store, run):
    store.write("features", pd.DataFrame([{**ident(0), "my_score": 3.5}]), run_id=run)
    store.write("features", pd.DataFrame([{**ident(1, kind="sae", source="d1"), "label": "x"}]), run_id=run)
    out = store.read("features")
    assert out.set_index("index").loc[0, "my_score"] == 3.5 and pd.isna(out.set_index("index").loc[1, "my_score"])
    store.write("activation_examples", ROWS["activation_examples"], run_id=run)
    examples = store.examples(FeatureId(MODEL, SITE, "neuron", 0))
    assert list(examples["example_rank"]) == [0, 1] and list(examples.iloc[0]["tokens"]) == ["a", "b"]
    assert store.examples(FeatureId(MODEL, SITE, "neuron", 0), group="quantile_1").empty


def test_model_names_are_url_quoted_in_partition_dirs(store, run):
    store.write("features", ROWS["features"], run_id=run)
    dirs = [p.name for p in (store.root / "tables" / "features").iterdir()]
    assert dirs == ["model=EleutherAI%2Fpythia-70m"]
    assert (store.root / "tables/features/model=EleutherAI%2Fpythia-70m/kind=neuron").is_dir()


def test_multi_partition_write_is_all_or_nothing(store, run):
    rows = [{**ident(0), "label": "n"}, {**ident(0, kind="sae", source="d"), "label": "s"}]
    store.write("features", rows, run_id=run)
    parts = sorted((store.root / "tables/features").rglob("part-*-m.parquet"))
    assert len(parts) == 2 and len(store.read("features")) == 2
    # Without its commit marker (a writer killed between parts) the write is invisible.
    for marker in (store.root / "commits").iterdir():
        marker.unlink()
    assert store.read("features").empty
    assert len(store.check().uncommitted) == 2


def test_dictionary_columns_are_written_as_strings(store, run):
    # Dictionary-encoded string columns (as jobs pass constants) read back as plain strings,
    # are validated like them, and split across partitions like them.
    n = 4
    labels = pa.DictionaryArray.from_arrays(pa.array(np.array([0, 1, 0, 1], np.int8)), pa.array(["a", "b"]))
    kinds = pa.DictionaryArray.from_arrays(pa.array(np.array([0, 0, 1, 1], np.int8)), pa.array(["neuron", "sae"]))
    table = pa.table({"model": constant(MODEL, n), "site": constant(SITE, n), "kind": kinds,
                      "index": np.arange(n, dtype=np.int64), "source": constant("", n), "label": labels})
    store.write("features", table, run_id=run)
    out = store.read("features").sort_values("index")
    assert out["label"].tolist() == ["a", "b", "a", "b"] and out["kind"].tolist() == ["neuron", "neuron", "sae", "sae"]
    assert out["model"].tolist() == [MODEL] * n and out["source"].tolist() == [""] * n
    files = sorted((store.root / "tables/features").rglob("part-*.parquet"))
    assert len(files) == 2  # one per kind
    read = pq.read_table(files[0])
    assert read.schema.field("label").type == pa.string()  # no dictionary type leaks to readers
    stats = pq.read_metadata(files[0]).row_group(0)
    names = [stats.column(i).path_in_schema for i in range(stats.num_columns)]
    with_stats = {name for i, name in enumerate(names) if stats.column(i).is_stats_set}
    assert {"model", "site", "kind", "index", "source", "_write_id", "_row"} <= with_stats
    assert "label" not in with_stats  # statistics only where reads filter
    bad = pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int8)), pa.array(["nope"]))
    with pytest.raises(ValueError, match="unknown feature kind"):
        store.write("features", table.set_column(2, "kind", bad), run_id=run)


@pytest.mark.parametrize("bad", ["../x", "/abs", "a/../b", ".hidden", "a b", "a//b", "", "x\\y"])
def test_names_are_validated(store, run, bad):
    with pytest.raises(StoreError, match="invalid|non-empty"):
        store.dictionary_dir(bad)
    with pytest.raises(StoreError):
        store.save_tensors(bad, {"w": torch.zeros(1)})
    with pytest.raises((StoreError, ValueError)):
        store.write("features", [{**ident(0), "model": bad}], run_id=run)


def test_bad_inputs_give_clear_errors(store, run):
    with pytest.raises(ValueError, match="valid tables: models, runs"):
        store.read("featurez")
    with pytest.raises(StoreError, match="needs column"):
        store.write("features", [{"model": MODEL}], run_id=run)
    with pytest.raises(StoreError, match="no column"):
        store.write("results", [{"name": "a", "key": "b", "oops": 1}], run_id=run)
    with pytest.raises(ValueError, match="unknown feature kind"):
        store.write("features", [{**ident(0), "kind": "nope"}], run_id=run)
    with pytest.raises(ValueError, match="hook name"):
        store.write("features", [{**ident(0), "site": "not a hook"}], run_id=run)
    with pytest.raises(StoreError, match="'top' or 'bottom'"):
        store.write("feature_tokens", [{**ROWS["feature_tokens"][0], "end": "middle"}], run_id=run)
    with pytest.raises(StoreError, match="run_id"):
        store.write("results", [{"name": "a", "key": "b", "run_id": "other"}], run_id=run)
    with pytest.raises(StoreError, match="does not fit"):
        store.write("features", [{**ident(0), "density": "high"}], run_id=run)
    with pytest.raises(StoreError, match="no column"):
        store.read("results", where={"nope": 1})


def test_schema_version_mismatch(tmp_path):
    root = tmp_path / "s"
    Store(root)
    assert json.loads((root / "STORE_VERSION").read_text()) == {"schema_version": SCHEMA_VERSION}
    (root / "STORE_VERSION").write_text(json.dumps({"schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1}.*reads version {SCHEMA_VERSION}"):
        Store(root)


def test_tensors_round_trip_and_dictionary_dir(store, run):
    tensors = {"w": torch.arange(6.0).reshape(2, 3).T, "b": torch.ones(3, dtype=torch.int64)}
    store.save_tensors("obsprop/layer3", tensors, {"site": SITE, "k": [1, 2]}, run_id=run)
    loaded = store.load_tensors("obsprop/layer3")
    assert torch.equal(loaded["w"], tensors["w"]) and torch.equal(loaded["b"], tensors["b"])
    assert store.tensor_metadata("obsprop/layer3") == {"site": SITE, "k": [1, 2], "run_id": run}
    with pytest.raises(FileNotFoundError, match="obsprop/layer3"):
        store.load_tensors("obsprop/layer4")
    target = store.dictionary_dir("pythia/l1-sae")
    assert target.is_relative_to(store.root)
    with store.write_dictionary_dir("pythia/l1-sae") as tmp:
        (tmp / "cfg.json").write_text("{}")
    with pytest.raises(RuntimeError):
        with store.write_dictionary_dir("pythia/l1-sae") as tmp:
            (tmp / "cfg.json").write_text('{"half": true}')
            raise RuntimeError("crash mid-write")
    assert (target / "cfg.json").read_text() == "{}"  # the failed write left the old folder intact
    assert [p.name for p in target.parent.iterdir()] == ["l1-sae"]


def test_corrupt_files_are_named(store, run):
    store.write("features", ROWS["features"], run_id=run)
    store.write("features", [{**ident(5)}], run_id=run)
    victim = sorted((store.root / "tables/features").rglob("part-*.parquet"))[0]
    victim.write_bytes(victim.read_bytes()[:40])  # truncated
    report = store.check()
    assert not report.ok and [p for p, _ in report.corrupt] == [victim]
    # A read skips the damaged file with a warning naming it, serves the rest, and writes nothing.
    with pytest.warns(StoreWarning, match=f"corrupt store file.*{victim.name}"):
        served = store.read("features")
    assert len(served) in (1, len(ROWS["features"])) and victim.exists()
    with pytest.warns(StoreWarning):
        assert store.sql("SELECT count(*) AS n FROM features")["n"][0] == len(served)
    # `check --fix` moves it into the quarantine folder; then reads are clean.
    assert any("quarantined" in line for line in store.check(fix=True).fixed) and not victim.exists()
    assert store.check().ok and [p.name for p in store.check().quarantined] == [victim.name]


def test_compact_keeps_latest_rows(store, run):
    for i in range(5):
        store.write("features", [{**ident(i % 2), "label": f"v{i}"}], run_id=run)
    before = store.read("features")
    assert store.compact("features") == 5
    assert len(list((store.root / "tables/features").rglob("part-*.parquet"))) == 1
    pd.testing.assert_frame_equal(store.read("features"), before)
    store.write("features", [{**ident(0), "label": "after"}], run_id=run)
    assert list(store.read("features")["label"]) == ["after", "v3"]
