"""benchmarks/export_comparison.py: a stored comparison becomes the CSV the transcoders notebook draws."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pandas as pd
from helpers.paths import REPO

from interp.store import Store

SCRIPT = REPO / "benchmarks" / "export_comparison.py"
KEY = "smollm2-135m/L15/topk-2000000-dens"


def _module():
    spec = importlib.util.spec_from_file_location("export_comparison", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(kind, k, ce_spliced, ce_recovered, extra=None):
    return {"name": f"L15-{kind}-k{k}", "variant": "dens", "kind": kind, "arch": "topk", "k": k,
            "skip": kind == "transcoder", "n_tokens": 20480, "l0": float(k), "l0_lo": k - 0.1, "l0_hi": float(k), "fvu": 0.3, "fvu_lo": 0.29,
            "fvu_hi": 0.31, "ce_clean": 4.0, "ce_spliced": ce_spliced, "delta_ce": ce_spliced - 4.0,
            "delta_ce_lo": ce_spliced - 4.01, "delta_ce_hi": ce_spliced - 3.99, "ce_recovered": ce_recovered,
            "ce_recovered_lo": ce_recovered - 0.02, "ce_recovered_hi": ce_recovered + 0.02, "ce_recovered_mean": 0.5,
            "kl": 0.01, "dead_fraction": 0.2, "dead_fraction_lo": 0.19, "dead_fraction_hi": 0.21, **(extra or {})}


def _store_with_comparison(root):
    store = Store(root)
    rows = [_row("sae", 16, 4.05, 0.8), _row("transcoder", 32, 4.01, 0.97, {"unlisted": 1.0}),
            _row("transcoder", 16, 4.02, 0.95), _row("sae", 32, 4.03, 0.9)]
    run = store.start_run("bench_transcoder_vs_sae", {})
    payload = {"table": rows, "train_tokens": 2_000_000}
    store.write("results", [{"name": "dictionary_sweep", "key": KEY, "payload": payload}], run_id=run)
    store.finish_run(run, "done")
    return store


def test_the_csv_holds_the_stored_rows_by_k_transcoder_first(tmp_path):
    _store_with_comparison(tmp_path / "store")
    out = tmp_path / "out.csv"
    done = subprocess.run([sys.executable, str(SCRIPT), "--store", str(tmp_path / "store"), "--key", KEY,
                           "--out", str(out)], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(out)
    assert list(zip(table["k"], table["kind"])) == [(16, "transcoder"), (16, "sae"), (32, "transcoder"), (32, "sae")]
    assert list(table["ce_spliced"]) == [4.02, 4.05, 4.01, 4.03]
    assert "unlisted" not in table.columns and list(table.columns) == list(_module().COLUMNS)
    assert f"wrote {out}" in done.stdout


def test_an_unknown_key_is_one_line_naming_it_and_the_stored_keys(tmp_path):
    _store_with_comparison(tmp_path / "store")
    done = subprocess.run([sys.executable, str(SCRIPT), "--store", str(tmp_path / "store"), "--key", "nope",
                           "--out", str(tmp_path / "x.csv")], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"--key 'nope': no stored comparison of that key (this store holds: {KEY})" in done.stderr
    assert not (tmp_path / "x.csv").exists()


def test_the_default_path_is_under_benchmarks_results():
    assert _module().default_out(KEY) == REPO / "benchmarks" / "results" / "smollm2-135m_L15_topk-2000000-dens.csv"


def test_a_missing_store_is_refused_without_creating_it(tmp_path):
    missing = tmp_path / "missing"
    done = subprocess.run([sys.executable, str(SCRIPT), "--store", str(missing), "--key", KEY],
                          capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 2 and "no such directory" in done.stderr and not missing.exists()


def test_a_directory_that_is_not_a_store_is_refused_and_left_empty(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--store", str(tmp_path), "--key", KEY],
                          capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 2 and "not a store (no STORE_VERSION file)" in done.stderr
    assert list(tmp_path.iterdir()) == []


def _export(tmp_path, out, *extra):
    return subprocess.run([sys.executable, str(SCRIPT), "--store", str(tmp_path / "store"), "--key", KEY,
                           "--out", str(out), *extra], capture_output=True, text=True, cwd=REPO)


def test_merge_keeps_the_rows_at_other_k_and_replaces_the_same_dictionary(tmp_path):
    _store_with_comparison(tmp_path / "store")
    out = tmp_path / "out.csv"
    earlier = pd.DataFrame([_row("transcoder", 8, 4.03, 0.9), _row("sae", 8, 4.06, 0.7),
                            _row("transcoder", 16, 9.99, 0.1)])[list(_module().COLUMNS)]
    earlier.to_csv(out, index=False)
    done = _export(tmp_path, out, "--merge")
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(out)
    assert list(zip(table["k"], table["kind"])) == [(8, "transcoder"), (8, "sae"), (16, "transcoder"), (16, "sae"),
                                                    (32, "transcoder"), (32, "sae")]
    assert list(table["ce_spliced"]) == [4.03, 4.06, 4.02, 4.05, 4.01, 4.03]  # the stored k-16 transcoder, not 9.99


def test_merge_refuses_rows_from_other_held_out_tokens_and_leaves_the_csv(tmp_path):
    _store_with_comparison(tmp_path / "store")
    out = tmp_path / "out.csv"
    earlier = pd.DataFrame([{**_row("transcoder", 8, 4.03, 0.9), "ce_clean": 4.5}])[list(_module().COLUMNS)]
    earlier.to_csv(out, index=False)
    before = out.read_text()
    done = _export(tmp_path, out, "--merge")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--merge: the CSV there has ce_clean [4.5], this comparison [4.0]" in done.stderr
    assert out.read_text() == before


def test_without_merge_the_csv_is_replaced(tmp_path):
    _store_with_comparison(tmp_path / "store")
    out = tmp_path / "out.csv"
    pd.DataFrame([_row("transcoder", 8, 4.03, 0.9)])[list(_module().COLUMNS)].to_csv(out, index=False)
    assert _export(tmp_path, out).returncode == 0
    assert sorted(set(pd.read_csv(out)["k"])) == [16, 32]


def test_merge_compares_the_clean_ce_at_the_precision_the_csv_keeps(tmp_path):
    # The stored clean CE 4.0000004 is written as 4; the earlier CSV's 4 is the same windows.
    store = Store(tmp_path / "store")
    run = store.start_run("bench_transcoder_vs_sae", {})
    rows = [{**_row("transcoder", 64, 4.01, 0.98), "ce_clean": 4.0000004}]
    store.write("results", [{"name": "dictionary_sweep", "key": KEY, "payload": {"table": rows}}], run_id=run)
    store.finish_run(run, "done")
    out = tmp_path / "out.csv"
    pd.DataFrame([_row("transcoder", 8, 4.03, 0.9)])[list(_module().COLUMNS)].to_csv(out, index=False)
    done = _export(tmp_path, out, "--merge")
    assert done.returncode == 0, done.stderr
    assert list(pd.read_csv(out)["k"]) == [8, 64]
