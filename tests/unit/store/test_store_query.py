"""`Store.sql` is read-only: only one SELECT, and even that cannot touch other files."""

from __future__ import annotations

import pytest

from interp.store import Store, StoreError


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "store")
    run = store.start_run("pytest", {})
    rows = [{"model": "m", "site": "blocks.0.hook_resid_post", "kind": "neuron", "index": i, "label": f"l{i}"}
            for i in range(4)]
    store.write("features", rows, run_id=run)
    store.write("features", [{**rows[0], "label": "new"}], run_id=run)
    return store


def test_select_with_describe_show_explain(store):
    out = store.sql("WITH f AS (SELECT * FROM features) SELECT label FROM f ORDER BY \"index\"")
    assert list(out["label"]) == ["new", "l1", "l2", "l3"]
    assert len(store.sql("SELECT * FROM features_all")) == 5
    assert "label" in set(store.sql("DESCRIBE features")["column_name"])
    assert "features" in set(store.sql("SHOW TABLES")["name"])
    assert len(store.sql("EXPLAIN SELECT * FROM features"))


@pytest.mark.parametrize("query, kind", [
    ("COPY (SELECT * FROM features) TO '{out}/leak.csv'", "COPY"),
    ("CREATE TABLE '{out}/t' AS SELECT 1", "CREATE"),
    ("INSERT INTO features SELECT * FROM features", "INSERT"),
    ("ATTACH '{out}/leak.duckdb' AS x", "ATTACH"),
    ("DROP VIEW features", "DROP"),
    ("SET enable_external_access = true", "SET"),
    ("PRAGMA version", "PRAGMA"),
    ("EXPORT DATABASE '{out}/dump'", "EXPORT"),
])
def test_writes_are_rejected(store, tmp_path, query, kind):
    out = tmp_path / "outside"
    out.mkdir()
    with pytest.raises(StoreError, match=f"read-only: {kind}"):
        store.sql(query.format(out=out))
    assert list(out.iterdir()) == []


def test_select_cannot_reach_other_files(store, tmp_path):
    secret = tmp_path / "secret.csv"
    secret.write_text("a\n1\n")
    with pytest.raises(StoreError, match="query failed"):
        store.sql(f"SELECT * FROM read_csv('{secret}')")
    with pytest.raises(StoreError, match="exactly one statement"):
        store.sql("SELECT 1; SELECT 2")
    with pytest.raises(StoreError, match="empty query"):
        store.sql("   ")
