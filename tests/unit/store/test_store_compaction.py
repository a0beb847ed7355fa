"""Compaction cleans up after itself, reads survive it, and one corrupt file is set aside
(quarantined, with a warning naming it) instead of failing every query."""

from __future__ import annotations

import errno
import os
import sys
import types

import pytest

import interp.store.store as store_module
from interp.store import TABLES, Store, StoreWarning
from interp.store.reading import QUARANTINE_DIR

SITE = "blocks.0.hook_resid_post"


def _feature(i, kind="neuron", **extra):
    return {"model": "m", "site": SITE, "kind": kind, "index": i, "source": "" if kind == "neuron" else "d", **extra}


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "store")
    run = store.start_run("pytest", {})
    for b in range(3):  # three writes spanning two partitions: three commit markers
        store.write("features", [_feature(b, label=f"n{b}"), _feature(b, "sae", label=f"s{b}")], run_id=run)
    store.write("feature_tokens", [{**_feature(0), "direction": "up", "variant": "raw", "end": "top", "rank": 0,
                                    "token_str": "a"}], run_id=run)
    store.finish_run(run)
    return store


def _parts(store, table="features"):
    return sorted((store.root / "tables" / table).rglob("part-*.parquet"))


def test_compaction_removes_commit_markers_and_keeps_rows(store):
    before = store.read("features")
    assert len(os.listdir(store.root / "commits")) == 3
    store.compact()
    assert os.listdir(store.root / "commits") == []
    assert [p.name.endswith("-c.parquet") for p in _parts(store)] == [True, True]
    assert store.read("features").equals(before)


def test_a_partition_with_one_multi_partition_part_is_compacted_too(store):
    store.compact()
    run = store.start_run("pytest", {})
    store.write("features", [_feature(9, label="n9"), _feature(9, "sae", label="s9")], run_id=run)
    assert len(os.listdir(store.root / "commits")) == 1
    store.compact()  # each partition now holds a -c file and one -m part
    assert os.listdir(store.root / "commits") == []
    assert sorted(store.read("features")["label"]) == ["n0", "n1", "n2", "n9", "s0", "s1", "s2", "s9"]


def test_a_read_retries_when_compaction_removes_its_files(store, monkeypatch):
    # The files are listed, then a compactor replaces them before the read opens them.
    real = store_module.list_files
    calls = []

    def list_then_compact(root, spec, where=None):
        files = real(root, spec, where)
        calls.append(len(files))
        if len(calls) == 1:
            Store(root).compact("features")
        return files

    monkeypatch.setattr(store_module, "list_files", list_then_compact)
    out = store.read("features")
    assert sorted(out["label"]) == ["n0", "n1", "n2", "s0", "s1", "s2"]
    assert calls == [6, 2]  # the first listing vanished; the second found the compacted files
    assert not (store.root / QUARANTINE_DIR).exists()


def test_a_corrupt_footer_is_quarantined_and_other_tables_still_serve(store):
    victim = _parts(store)[0]
    victim.write_bytes(b"PAR1" + b"\0" * 64 + b"PAR1")
    # A query on any table skips the file with a warning naming it, answers, and writes nothing.
    with pytest.warns(StoreWarning, match=f"corrupt store file .*{victim.name}.*skipped"):
        assert store.sql("SELECT token_str FROM feature_tokens")["token_str"].tolist() == ["a"]
    with pytest.warns(StoreWarning):
        out = store.sql("SELECT label FROM features ORDER BY label")
    assert len(out) == 5 and victim.exists()
    store.check(fix=True)  # the check moves it aside
    moved = store.root / QUARANTINE_DIR / victim.relative_to(store.root)
    assert moved.read_bytes().startswith(b"PAR1\0")
    assert len(store.read("features")) == 5  # no warning and no error any more
    report = store.check()
    assert report.ok and report.quarantined == [moved]
    for name in TABLES:  # every table answers
        store.sql(f"SELECT count(*) FROM {name}")


@pytest.mark.parametrize("reader", ["read", "sql"])
def test_a_corrupt_data_page_is_found_and_quarantined(tmp_path, reader):
    store = Store(tmp_path / "store")
    run = store.start_run("pytest", {})
    store.write("features", [_feature(i, label="x" * 40 + str(i)) for i in range(2000)], run_id=run)
    store.write("features", [_feature(5000, label="kept")], run_id=run)
    victim = _parts(store)[0]
    data = bytearray(victim.read_bytes())
    for i in range(200, 2000):  # damage the first data pages; the footer stays intact
        data[i] ^= 0x5A
    victim.write_bytes(bytes(data))
    with pytest.warns(StoreWarning, match=victim.name):
        out = store.read("features") if reader == "read" else store.sql("SELECT * FROM features")
    assert out["label"].tolist() == ["kept"]
    assert victim.exists()  # a read never writes
    store.check(fix=True)
    assert not victim.exists() and store.check().ok


def test_a_corrupt_file_that_cannot_be_moved_is_reported(store, monkeypatch):
    victim = _parts(store)[0]
    victim.write_bytes(b"not parquet at all")

    def read_only(src, dst):
        raise OSError(errno.EROFS, "Read-only file system", str(src))

    monkeypatch.setattr("interp.store.reading.os.replace", read_only)
    with pytest.warns(StoreWarning, match=f"{victim.name}.*skipped"):
        assert len(store.read("features")) == 5
    assert any("could not move" in line for line in store.check(fix=True).fixed)
    assert victim.exists()


@pytest.fixture
def cli(monkeypatch):
    # Command discovery imports every module of interp.cli; importing __main__ would run it.
    monkeypatch.setitem(sys.modules, "interp.cli.__main__", types.ModuleType("interp.cli.__main__"))
    from interp.cli import main

    return main


def test_cli_compact(store, cli, capsys):
    assert cli(["store", "compact", "--store", str(store.root)]) == 0
    out = capsys.readouterr().out
    assert "9 -> 4 data files" in out and out.count("\n") == 1  # features 6 -> 2, runs 2 -> 1, tokens 1
    assert os.listdir(store.root / "commits") == []
    assert cli(["store", "compact", "--table", "nope", "--store", str(store.root)]) == 2
    assert "unknown store table 'nope'" in capsys.readouterr().err


def test_cli_query_warns_in_one_line_about_a_quarantined_file(store, cli, capsys):
    victim = _parts(store)[0]
    victim.write_bytes(b"garbage")
    assert cli(["store", "query", "SELECT count(*) AS n FROM features", "--format", "csv",
                "--store", str(store.root)]) == 0
    captured = capsys.readouterr()
    assert captured.out.split() == ["n", "5"]
    assert captured.err.count("\n") == 1 and captured.err.startswith("interp: warning: corrupt store file")
    assert victim.name in captured.err
