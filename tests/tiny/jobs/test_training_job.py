"""``interp train`` on the job interface: one unit per layer, the layer's dictionaries sharing it.

Ray (a local instance, 2 workers) and the local backend give bitwise the same dictionaries
(weights and metrics: on these tiny models no reduction depends on torch's thread count, see
test_job_backends.py); a failed layer is named and a rerun trains only it; training's own
dashboards carry the marker `interp dashboards` reads, so it does not redo them."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from test_job_parity import _dictionary_tensors  # noqa: E402 - same folder
from interp.dictionaries.train_config import TrainConfig
from interp.jobs import training
from interp.jobs.dictionaries import DataConfig
from interp.jobs.training import train_layers
from interp.jobs.units import JobFailed
from interp.store import Store

TRAINS = [TrainConfig(kind="transcoder", train_tokens=384, batch_size=64, expansion=2, warmup_steps=1,
                      dead_after_tokens=256, aux_k=8, k=k) for k in (2, 4)]


def _data(corpus, dashboard_tokens=0):
    return DataConfig(corpus=corpus, ctx_len=16, eval_tokens=64, dashboard_tokens=dashboard_tokens, buffer_windows=8)


def _rows(store: Store) -> pd.DataFrame:
    rows = store.read("dictionaries", columns=["name", "site", "hook_out", "kind", "arch", "config", "metrics"])
    rows["metrics"] = rows["metrics"].map(lambda m: json.dumps({k: v for k, v in json.loads(m).items()
                                                                if "seconds" not in k}, sort_keys=True))
    return rows.sort_values("name").reset_index(drop=True)


def test_layers_on_ray_equal_local_and_a_layers_dictionaries_share_one_unit(tmp_path, tiny_dirs, corpus, ray_local):
    model = str(tiny_dirs["llama"])
    local, distributed = Store(tmp_path / "local"), Store(tmp_path / "ray")
    a = train_layers(model, local, TRAINS, [0, 1], data=_data(corpus), progress=False)
    b = train_layers(model, distributed, TRAINS, [0, 1], data=_data(corpus), progress=False, backend="ray")
    names = [t.name for t in a]
    assert names == [t.name for t in b] == ["llama/L0-transcoder-topk-k2-x2-0k", "llama/L0-transcoder-topk-k4-x2-0k",
                                            "llama/L1-transcoder-topk-k2-x2-0k", "llama/L1-transcoder-topk-k4-x2-0k"]
    assert all(t.trained for t in a + b) and [t.layer for t in a] == [0, 0, 1, 1]
    assert [t.metrics["l0"] <= k for t, k in zip(a, (2, 4, 2, 4))] == [True] * 4
    pd.testing.assert_frame_equal(_rows(local), _rows(distributed), check_exact=True)
    for name in names:
        x, y = _dictionary_tensors(local, name), _dictionary_tensors(distributed, name)
        assert set(x) == set(y) and x
        for key in x:
            torch.testing.assert_close(x[key], y[key], rtol=0, atol=0, msg=f"{name} {key}")
    # Two units (one per layer), each with both k: the dictionaries of a layer share its model pass.
    runs = distributed.read("runs")
    configs = [json.loads(c) for c in runs.loc[runs["command"] == "interp train", "config"]]
    assert sorted(tuple(c["names"]) for c in configs if "names" in c) == [tuple(names[:2]), tuple(names[2:])]
    again = train_layers(model, distributed, TRAINS, [0, 1], data=_data(corpus), progress=False, backend="ray")
    assert [t.name for t in again] == names and not any(t.trained for t in again)
    assert len(distributed.read("dictionaries")) == 4


def test_a_failed_layer_is_named_and_a_rerun_trains_only_it(tmp_path, tiny_dirs, corpus, monkeypatch):
    model = str(tiny_dirs["llama"])
    whole = Store(tmp_path / "whole")
    train_layers(model, whole, TRAINS[:1], [0, 1], data=_data(corpus), progress=False)
    store = Store(tmp_path / "broken")
    real = training.train_and_publish_many

    def fail_on_layer_1(adapter, store, trains, layers, **kw):
        if layers[0] == 1:
            raise RuntimeError("worker lost")
        return real(adapter, store, trains, layers, **kw)

    monkeypatch.setattr(training, "train_and_publish_many", fail_on_layer_1)
    with pytest.raises(JobFailed, match="L1") as failed:
        train_layers(model, store, TRAINS[:1], [0, 1], data=_data(corpus), progress=False)
    assert list(failed.value.done) == ["L0"] and store.read("dictionaries")["name"].tolist() == [
        "llama/L0-transcoder-topk-k2-x2-0k"]
    monkeypatch.setattr(training, "train_and_publish_many", real)
    rerun = train_layers(model, store, TRAINS[:1], [0, 1], data=_data(corpus), progress=False)
    assert [t.trained for t in rerun] == [False, True]
    pd.testing.assert_frame_equal(_rows(store), _rows(whole), check_exact=True)


def test_trainings_dashboards_are_marked_so_interp_dashboards_skips_them(tmp_path, tiny_dirs, corpus):
    from interp.jobs.dashboards import DashboardsJobConfig, run_dashboards

    model, store = str(tiny_dirs["llama"]), Store(tmp_path / "s")
    (trained,) = train_layers(model, store, TRAINS[:1], [1], data=_data(corpus, dashboard_tokens=128), progress=False)
    examples = store.read("activation_examples", where={"source": trained.name})
    assert len(examples) > 0
    same = DashboardsJobConfig(tokens=128, corpus=corpus, ctx_len=16)
    summary = run_dashboards(store, model, [trained.name], same, progress=False)
    assert summary.skipped == [trained.name] and summary.done == []
    other = run_dashboards(store, model, [trained.name], DashboardsJobConfig(tokens=256, corpus=corpus, ctx_len=16),
                           progress=False)
    assert other.done == [trained.name]  # other windows: computed


def test_train_cli_takes_a_layer_list_and_a_rerun_prints_the_stored_ones(tmp_path, tiny_dirs, corpus, capsys):
    from interp.cli import main

    args = ["train", "--kind", "sae", "--model", str(tiny_dirs["llama"]), "--layer", "0-1", "--k", "2", "4",
            "--expansion", "2", "--tokens", "384", "--batch-size", "64", "--corpus", corpus, "--ctx-len", "16",
            "--eval-tokens", "64", "--dashboard-tokens", "0", "--checkpoint-every", "0",
            "--store", str(tmp_path / "s")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.count("CE recovered") == 4 and "already stored" not in out
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.count("(already stored with these settings; --force trains it again)") == 4
    one_k = [a for a in args if a != "4"]
    assert main(one_k + ["--name", "x"]) == 2
    assert "--layer 0-1: --name and --site name one dictionary" in capsys.readouterr().err
