"""`interp store info | query | check` through `interp.cli.main`."""

from __future__ import annotations

import json
import sys
import types

import pytest

from interp.cli import main
from interp.store import Store


@pytest.fixture(autouse=True)
def _no_cli_main_on_discovery(monkeypatch):
    # Command discovery imports every module of interp.cli, and importing
    # interp/cli/__main__.py runs `sys.exit(main())` on pytest's argv. Until discovery skips
    # it, hand discovery an already-imported stand-in.
    monkeypatch.setitem(sys.modules, "interp.cli.__main__", types.ModuleType("interp.cli.__main__"))


def _filled(root):
    store = Store(root)
    run = store.start_run("pytest", {})
    store.write("features", [{"model": "org/m", "site": "blocks.0.hook_resid_post", "kind": "neuron",
                              "index": i, "label": f"l{i}"} for i in range(3)], run_id=run)
    store.finish_run(run)
    return store


def test_info_and_query(tmp_path, capsys):
    root = tmp_path / "store"
    _filled(root)
    assert main(["store", "info", "--store", str(root)]) == 0
    text = capsys.readouterr().out
    assert "org/m" in text and "features" in text and "3 rows" in text
    assert main(["store", "info", "--json", "--store", str(root)]) == 0
    assert json.loads(capsys.readouterr().out)["tables"]["features"]["rows"] == 3
    assert main(["store", "query", "SELECT label FROM features ORDER BY label", "--format", "json",
                 "--store", str(root)]) == 0
    assert json.loads(capsys.readouterr().out) == [{"label": "l0"}, {"label": "l1"}, {"label": "l2"}]
    assert main(["store", "query", "SELECT count(*) AS n FROM features", "--format", "csv",
                 "--store", str(root)]) == 0
    assert capsys.readouterr().out.split() == ["n", "3"]
    assert main(["store", "query", "SELECT label FROM features", "--store", str(root)]) == 0
    assert "l2" in capsys.readouterr().out


def test_home_flag_sets_default_store(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("INTERP_HOME", raising=False)
    _filled(tmp_path / "home" / "store")
    assert main(["--home", str(tmp_path / "home"), "store", "query", "SELECT count(*) AS n FROM features",
                 "--format", "csv"]) == 0
    assert capsys.readouterr().out.split() == ["n", "3"]


def test_query_rejects_writes_and_check_finds_corruption(tmp_path, capsys):
    root = tmp_path / "store"
    store = _filled(root)
    assert main(["store", "query", "DROP VIEW features", "--store", str(root)]) == 2
    assert "read-only" in capsys.readouterr().err
    assert main(["store", "check", "--store", str(root)]) == 0
    assert "ok" in capsys.readouterr().out
    victim = next((store.root / "tables/features").rglob("part-*.parquet"))
    victim.write_bytes(b"PAR1 not really")
    assert main(["store", "check", "--store", str(root)]) == 1
    out = capsys.readouterr().out
    assert "CORRUPT" in out and victim.name in out
