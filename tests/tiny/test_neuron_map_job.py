"""The neuron-mapping job: store content, resumption after kill -9, Ray parity, several models, CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest

from interp.jobs.neuron_map import MapConfig, map_model, map_models, parse_layers, pending_layers
from interp.methods.neurons.decoding import DecodeConfig, decode_neurons
from interp.store import Store
from helpers.paths import REPO




from helpers.stores import assert_same_store as _assert_same_store, content as _content  # noqa: E402,F401


def test_job_writes_every_neuron_and_matches_the_method(tmp_path, tiny_dirs, tiny_models):
    store = Store(tmp_path / "store")
    summary = map_model(store, str(tiny_dirs["llama"]), directions=("up", "gate", "down"), top_k=4, progress=False)
    assert summary.mapped == {"llama": [0, 1]} and summary.skipped == {"llama": []}
    tokens = store.read("feature_tokens", where={"model": "llama"})
    d_mlp = tiny_models["llama"].info.d_mlp
    assert len(tokens) == 2 * d_mlp * 3 * 2 * 4  # layers x neurons x directions x ends x k
    expected = decode_neurons(tiny_models["llama"], 1, "gate", DecodeConfig(top_k=4))
    got = tokens[(tokens["site"] == "blocks.1.mlp.hook_post") & (tokens["direction"] == "gate")
                 & (tokens["end"] == "top")]
    got = got.sort_values(["index", "rank"])
    assert np.array_equal(got["token_id"].to_numpy().reshape(d_mlp, 4), expected.top_ids.numpy())
    assert np.allclose(got["prob"].to_numpy().reshape(d_mlp, 4), expected.top_probs.numpy())
    feats = store.features(model="llama", kind="neuron")
    assert len(feats) == 2 * d_mlp
    metrics = json.loads(feats["metrics"].iloc[0])["neuron_map"]
    assert set(metrics) == {"up/folded", "gate/folded", "down/folded"}
    row0 = metrics["down/folded"]
    assert feats["specialisation"].iloc[0] == pytest.approx(max(row0["max_prob"], row0["max_prob_neg"]))


def test_features_merge_keeps_other_columns_and_directions(tmp_path, tiny_dirs):
    store = Store(tmp_path / "store")
    run = store.start_run("labels", {})
    store.write("features", [{"model": "llama", "site": "blocks.0.mlp.hook_post", "kind": "neuron", "index": 3,
                              "label": "cats", "density": 0.25, "metrics": {"other": 1}}], run_id=run)
    map_model(store, str(tiny_dirs["llama"]), directions=("down",), top_k=2, layers=[0], progress=False)
    map_model(store, str(tiny_dirs["llama"]), directions=("up",), top_k=2, layers=[0], progress=False)
    row = store.features(model="llama").set_index("index").loc[3]
    assert row["label"] == "cats" and row["density"] == 0.25
    metrics = json.loads(row["metrics"])
    assert metrics["other"] == 1 and set(metrics["neuron_map"]) == {"down/folded", "up/folded"}


def test_rerun_skips_complete_layers_and_equals_one_uninterrupted_run(tmp_path, tiny_dirs):
    model = str(tiny_dirs["gpt2"])
    partial, whole = Store(tmp_path / "a"), Store(tmp_path / "b")
    map_model(partial, model, layers=[1], directions=("up", "down"), variants=("folded", "raw"), top_k=3,
              progress=False)
    again = map_model(partial, model, directions=("up", "down"), variants=("folded", "raw"), top_k=3, progress=False)
    assert again.skipped == {"gpt2": [1]} and again.mapped == {"gpt2": [0]}
    map_model(whole, model, directions=("up", "down"), variants=("folded", "raw"), top_k=3, progress=False)
    _assert_same_store(partial, whole)
    # A different top_k is a different result: nothing is skipped.
    assert set(pending_layers(partial, "gpt2", [0, 1], MapConfig(top_k=5))) == {0, 1}


_KILLABLE = textwrap.dedent("""
    import sys, time
    from interp.store import Store
    from interp.jobs.neuron_map import map_model
    write = Store.write
    def slow_write(self, *args, **kwargs):  # slow the job down so it can be killed mid-way
        out = write(self, *args, **kwargs)
        time.sleep(1.0)
        return out
    Store.write = slow_write
    map_model(Store(sys.argv[1]), sys.argv[2], directions=("up", "gate", "down"), top_k=3, progress=False)
""")


def test_kill_9_mid_job_then_rerun_gives_the_uninterrupted_content(tmp_path, tiny_dirs):
    model = str(tiny_dirs["llama"])
    root = tmp_path / "killed"
    script = tmp_path / "job.py"
    script.write_text(_KILLABLE)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, str(script), str(root), model], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            if root.exists() and len(Store(root).read("results", where={"name": "neuron_map"})) >= 3:
                break  # layer 0 has landed (3 directions); layer 1 is under way
            time.sleep(0.1)
        assert proc.poll() is None, "the job ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    killed = Store(root)
    done = set(killed.read("results", where={"name": "neuron_map"})["key"])
    assert not any("/L1/" in k for k in done), "layer 1 finished before the kill: nothing was interrupted"
    rerun = map_model(killed, model, directions=("up", "gate", "down"), top_k=3, progress=False)
    assert rerun.mapped == {"llama": [1]} and rerun.skipped == {"llama": [0]}
    whole = Store(tmp_path / "whole")
    map_model(whole, model, directions=("up", "gate", "down"), top_k=3, progress=False)
    _assert_same_store(killed, whole)


def test_kernel_and_torch_reductions_fill_the_store_alike(tmp_path, tiny_dirs):
    kernel, torch_ops = Store(tmp_path / "kernel"), Store(tmp_path / "torch")
    for store, reduction in ((kernel, "kernel"), (torch_ops, "torch")):
        map_models(store, [str(tiny_dirs["llama"])], MapConfig(directions=("up", "down"), top_k=5, reduction=reduction),
                   progress=False)
    a, b = _content(kernel, "feature_tokens"), _content(torch_ops, "feature_tokens")
    assert a["token_id"].tolist() == b["token_id"].tolist()
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-5)
    fa, fb = (s.features(model="llama").sort_values(["site", "index"]) for s in (kernel, torch_ops))
    assert np.allclose(fa["specialisation"], fb["specialisation"], rtol=1e-5)
    with pytest.raises(ValueError, match="'simd'"):
        MapConfig(reduction="simd")


def test_several_models_in_one_job(tmp_path, tiny_dirs):
    store = Store(tmp_path / "store")
    summary = map_models(store, [str(tiny_dirs["gpt2"]), str(tiny_dirs["neox"])], MapConfig(top_k=2), progress=False)
    assert summary.mapped == {"gpt2": [0, 1], "neox": [0, 1]}
    assert set(store.read("feature_tokens")["model"]) == {"gpt2", "neox"}
    assert store.get_run(summary.run_id)["status"] == "done"
    assert set(store.read("models")["model"]) == {"gpt2", "neox"}


def test_bad_requests_raise_clear_errors(tmp_path, tiny_dirs):
    store = Store(tmp_path / "store")
    with pytest.raises(ValueError, match="gated MLP"):
        map_model(store, str(tiny_dirs["gpt2"]), directions=("gate",), progress=False)
    with pytest.raises(ValueError, match=r"layers \[7\] are out of range"):
        map_model(store, str(tiny_dirs["gpt2"]), layers=[7], progress=False)
    with pytest.raises(ValueError, match="'sideways'"):
        MapConfig(directions=("sideways",))
    with pytest.raises(ValueError, match="backend"):
        map_model(store, str(tiny_dirs["gpt2"]), backend="spark")
    assert parse_layers("0,5-7") == (0, 5, 6, 7) and parse_layers("all") is None
    with pytest.raises(ValueError, match="0,5-7"):
        parse_layers("zero")


def test_cli_maps_and_shows_a_neuron(tmp_path, tiny_dirs, capsys):
    from interp.cli import main

    root = str(tmp_path / "store")
    assert main(["map-neurons", "--model", str(tiny_dirs["llama"]), "--top-k", "3", "--directions", "up,down",
                 "--store", root]) == 0
    capsys.readouterr()
    assert main(["show", "neuron", "llama", "1:5", "--format", "json", "--store", root]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert set(shown["decodings"]) == {"up/folded", "down/folded"}
    stored = Store(root).read("feature_tokens", where={"model": "llama", "index": 5, "direction": "down",
                                                       "site": "blocks.1.mlp.hook_post", "end": "top"})
    assert [t["token_id"] for t in shown["decodings"]["down/folded"]["top"]] == stored["token_id"].tolist()
    assert main(["show", "neuron", "llama", "1:5", "--store", root]) == 0
    table = capsys.readouterr().out.splitlines()
    header = table[table.index("down/folded") + 1].split()
    assert header == ["top", "token", "logit", "prob", "bottom", "token", "logit", "prob"]
    assert len(table) == 1 + 2 * (3 + 3)  # the title; per decoding: a blank line, its name, the header, 3 ranks
    assert main(["show", "neuron", "llama", "1:5", "--store", str(tmp_path / "empty")]) == 2
    assert "map-neurons" in capsys.readouterr().err
