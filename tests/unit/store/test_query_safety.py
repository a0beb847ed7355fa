"""`Store.sql` / `interp store query` under hostile input: nothing is modified, no file
outside the store's data is touched, and every refusal is one clear line."""

from __future__ import annotations

import hashlib
import sys
import types

import duckdb
import pytest

from interp.store import Store, StoreError
from interp.store.query import readonly_connection

SITE = "blocks.0.hook_resid_post"


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A store with two writes (one spanning two partitions), a cwd and an outside folder."""
    store = Store(tmp_path / "store")
    run = store.start_run("pytest", {})
    rows = [{"model": "m", "site": SITE, "kind": kind, "index": i, "label": f"{kind}{i}",
             "source": "" if kind == "neuron" else "d"} for kind in ("neuron", "sae") for i in range(3)]
    store.write("features", rows, run_id=run)
    store.write("feature_tokens", [{"model": "m", "site": SITE, "kind": "neuron", "index": 0, "direction": "up",
                                    "variant": "raw", "end": "top", "rank": 0, "token_str": "a", "logit": 1.5}],
                run_id=run)
    store.finish_run(run)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    (cwd / "notes.csv").write_text("a,b\n1,2\n")
    monkeypatch.chdir(cwd)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text("password\nhunter2\n")
    data_file = sorted((store.root / "tables" / "features").rglob("part-*.parquet"))[0]
    return types.SimpleNamespace(store=store, cwd=cwd, outside=outside, data=data_file, tmp=tmp_path)


def _snapshot(*folders) -> dict[str, str]:
    """Every path under the folders with the sha256 of its bytes ('' for folders)."""
    found = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
    return found


# Each statement must be refused; {data} is a store data file, {out} a folder outside the
# store, {secret} a file there, {cwd} the working directory, {store} the store root.
HOSTILE = [
    # DDL / DML
    "CREATE TABLE t AS SELECT * FROM features",
    "CREATE TABLE '{out}/t.csv' AS SELECT 1",
    "CREATE VIEW v AS SELECT 1",
    "CREATE OR REPLACE VIEW features AS SELECT 1 AS x",
    "CREATE MACRO m(a) AS a + 1",
    "CREATE SEQUENCE s",
    "CREATE SCHEMA s",
    "CREATE TYPE mood AS ENUM ('a', 'b')",
    "CREATE SECRET s (TYPE s3, KEY_ID 'k', SECRET 'v')",
    "CREATE TEMP TABLE t AS SELECT * FROM read_csv('{secret}')",
    "DROP VIEW features",
    "DROP TABLE IF EXISTS features",
    "ALTER VIEW features RENAME TO f2",
    "INSERT INTO features SELECT * FROM features",
    "UPDATE features SET label = 'x'",
    "DELETE FROM features",
    "TRUNCATE features",
    "COMMENT ON VIEW features IS 'x'",
    "PIVOT features ON kind USING count(*)",
    # COPY / EXPORT / IMPORT
    "COPY (SELECT * FROM features) TO '{out}/leak.csv'",
    "COPY (SELECT 1) TO '{cwd}/leak.parquet' (FORMAT parquet)",
    "COPY (SELECT 1) TO 'relative_leak.csv'",
    "COPY (SELECT * FROM features) TO '{data}' (FORMAT parquet, USE_TMP_FILE false)",
    "COPY features TO '{out}/f.csv'",
    "COPY features FROM '{secret}'",
    "EXPORT DATABASE '{out}/dump'",
    "IMPORT DATABASE '{out}'",
    # ATTACH / USE / DETACH
    "ATTACH '{out}/x.duckdb' AS x",
    "ATTACH '{data}' AS x",
    "ATTACH ':memory:' AS x",
    "DETACH memory",
    "USE memory",
    # extensions
    "INSTALL httpfs",
    "FORCE INSTALL httpfs",
    "LOAD httpfs",
    "LOAD '{out}/evil.duckdb_extension'",
    "UPDATE EXTENSIONS",
    # reading files outside the store (and the store's files other than through its views)
    "SELECT * FROM read_csv('{secret}')",
    "SELECT * FROM read_csv_auto('{secret}')",
    "SELECT * FROM read_text('{secret}')",
    "SELECT * FROM read_blob('{secret}')",
    "SELECT * FROM read_json('{secret}')",
    "SELECT * FROM read_json_auto('{secret}')",
    "SELECT * FROM read_ndjson('{secret}')",
    "SELECT * FROM read_parquet('{data}')",
    "SELECT * FROM parquet_scan('{data}')",
    "SELECT * FROM parquet_metadata('{data}')",
    "SELECT * FROM read_text('{data}')",
    "SELECT * FROM glob('{out}/*')",
    "SELECT * FROM glob('{store}/**')",
    "SELECT * FROM sniff_csv('{secret}')",
    "SELECT * FROM '{secret}'",
    "FROM 'notes.csv'",
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM query('SELECT * FROM read_text(''{secret}'')')",
    "WITH s AS (SELECT * FROM read_csv('{secret}')) SELECT * FROM s",
    # settings
    "SET enable_external_access = true",
    "SET lock_configuration = false",
    "RESET enable_external_access",
    "SET allowed_directories = ['{out}']",
    "SET temp_directory = '{cwd}'",
    "SET VARIABLE x = 1",
    "PRAGMA enable_profiling",
    "PRAGMA profiling_output = '{out}/profile.json'",
    "PRAGMA version",
    "CALL pragma_version()",
    "CHECKPOINT",
    "VACUUM",
    "ANALYZE",
    # several statements
    "SELECT 1; SELECT 2",
    "SELECT 1; COPY (SELECT 1) TO '{out}/leak.csv'",
    "SELECT * FROM features;; DROP VIEW features",
    "SELECT 1 /* ; */ ; DROP VIEW features",
    # EXPLAIN ANALYZE runs its inner statement; EXPLAIN of anything but a SELECT
    "EXPLAIN ANALYZE COPY (SELECT * FROM features) TO '{data}' (FORMAT parquet, USE_TMP_FILE false)",
    "EXPLAIN ANALYZE COPY (SELECT 1) TO '{cwd}/leak.csv'",
    "explain analyze copy (select 1) to '{out}/leak.csv'",
    "EXPLAIN ANALYSE COPY (SELECT 1) TO '{out}/leak.csv'",
    "EXPLAIN /* hidden */ ANALYZE COPY (SELECT 1) TO '{out}/leak.csv'",
    "EXPLAIN ANALYZE SELECT * FROM features",
    "EXPLAIN ANALYZE CREATE TABLE t AS SELECT 1",
    "EXPLAIN (ANALYZE) SELECT 1",
    "EXPLAIN (FORMAT json) COPY (SELECT 1) TO '{out}/leak.csv'",
    "EXPLAIN COPY (SELECT 1) TO '{out}/leak.csv'",
    "EXPLAIN INSERT INTO features SELECT * FROM features",
    "EXPLAIN ATTACH '{out}/x.duckdb'",
]


def test_the_suite_covers_the_reported_statements():
    assert len(HOSTILE) >= 67 and len(set(HOSTILE)) == len(HOSTILE)


@pytest.mark.parametrize("template", HOSTILE)
def test_hostile_statement_is_refused_and_changes_nothing(env, template):
    query = template.format(data=env.data, out=env.outside, secret=env.outside / "secret.csv",
                            cwd=env.cwd, store=env.store.root)
    before = _snapshot(env.tmp)
    with pytest.raises(StoreError) as caught:
        env.store.sql(query)
    message = str(caught.value)
    assert "\n" not in message and message, message
    assert "hunter2" not in message
    assert _snapshot(env.tmp) == before  # nothing in the store, the cwd or elsewhere changed
    assert len(env.store.sql("SELECT * FROM features")) == 6  # and the store still reads


@pytest.mark.parametrize("statement", [
    "COPY (SELECT 1) TO '{data}' (FORMAT parquet, USE_TMP_FILE false)",
    "EXPLAIN ANALYZE COPY (SELECT 1) TO '{cwd}/leak.csv'",
    "SELECT * FROM read_csv('{secret}')",
    "SELECT * FROM read_parquet('{data}')",
    "SELECT * FROM glob('{out}/*')",
    "ATTACH '{out}/x.duckdb' AS x",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "SET lock_configuration = false",
])
def test_the_engine_refuses_file_access_without_the_whitelist(env, statement):
    # The connection itself is locked: even statements that skip `check_readonly` fail.
    con, _ = readonly_connection(env.store.root)
    before = _snapshot(env.tmp)
    try:
        with pytest.raises(duckdb.Error, match="disabled|locked|Permission"):
            con.execute(statement.format(data=env.data, out=env.outside, secret=env.outside / "secret.csv",
                                         cwd=env.cwd))
        assert con.execute("SELECT count(*) FROM features").fetchone()[0] == 6
    finally:
        con.close()
    assert _snapshot(env.tmp) == before


@pytest.mark.parametrize("query, expected", [
    ("SELECT label FROM features WHERE kind = 'neuron' ORDER BY \"index\"", [("neuron0",), ("neuron1",), ("neuron2",)]),
    ("WITH s AS (SELECT kind, count(*) AS n FROM features GROUP BY kind) SELECT * FROM s ORDER BY kind",
     [("neuron", 3), ("sae", 3)]),
    ("FROM features_all SELECT count(*)", [(6,)]),
    ("SELECT f.label, t.token_str, t.logit FROM features f JOIN feature_tokens t USING (model, site, kind, \"index\")",
     [("neuron0", "a", 1.5)]),
    ("SELECT label, row_number() OVER (PARTITION BY kind ORDER BY \"index\" DESC) AS r FROM features "
     "WHERE kind = 'sae' ORDER BY r", [("sae2", 1), ("sae1", 2), ("sae0", 3)]),
    ("VALUES (1, 'a'), (2, 'b')", [(1, "a"), (2, "b")]),
    ("SELECT status, pid IS NOT NULL FROM runs", [("done", True)]),
    ("SELECT count(*) FROM features_all WHERE _write_id IS NOT NULL", [(6,)]),
])
def test_ordinary_selects_still_work(env, query, expected):
    before = _snapshot(env.tmp)
    assert [tuple(r) for r in env.store.sql(query).itertuples(index=False)] == expected
    assert _snapshot(env.tmp) == before


def test_describe_show_summarize_and_explain(env):
    assert "label" in set(env.store.sql("DESCRIBE features")["column_name"])
    assert {"features", "runs"} <= set(env.store.sql("SHOW TABLES")["name"])
    assert len(env.store.sql("SUMMARIZE SELECT \"index\" FROM features")) == 1
    assert len(env.store.sql("EXPLAIN SELECT * FROM features WHERE kind = 'sae'"))
    assert len(env.store.sql("EXPLAIN /* plan */ SELECT 1"))


@pytest.fixture
def cli(monkeypatch):
    # Command discovery imports every module of interp.cli; importing __main__ would run it.
    monkeypatch.setitem(sys.modules, "interp.cli.__main__", types.ModuleType("interp.cli.__main__"))
    from interp.cli import main

    return main


def test_cli_refuses_explain_analyze_copy_onto_a_store_file(env, cli, capsys):
    before = _snapshot(env.tmp)
    query = f"EXPLAIN ANALYZE COPY (SELECT 1 AS x) TO '{env.data}' (FORMAT parquet, USE_TMP_FILE false)"
    assert cli(["store", "query", query, "--store", str(env.store.root)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "read-only" in err and "EXPLAIN" in err
    assert _snapshot(env.tmp) == before
    assert env.store.check().ok
