"""Jobs open their run before the work: a slow step inside shows up between started_at and
finished_at (the complexity job and `interp obsprop` used to open it only to store results)."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pandas as pd
import torch

from interp.store import Store
from interp.store.runs import utcnow

SLEEP_S = 0.5


def _span(store: Store) -> tuple[pd.Timestamp, pd.Timestamp]:
    row = store.read("runs").iloc[-1]
    assert row["status"] == "done"
    return pd.Timestamp(row["started_at"]), pd.Timestamp(row["finished_at"])


def test_complexity_job_opens_its_run_before_scoring(tiny_models, tmp_path, monkeypatch):
    import interp.corpus
    import interp.jobs.complexity as job

    adapter = tiny_models["llama"]
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(3, adapter.info.d_vocab, (8, 16), generator=g)
    tokens[:, 0] = adapter.info.bos_token_id
    monkeypatch.setattr(interp.corpus, "token_windows", lambda *a, **k: SimpleNamespace(tokens=tokens, n_windows=8))
    # With a store the job scores shard by shard (`score_features`, on the job interface).
    real_score, scored_at = job.score_features, []

    def slow_score(*args, **kwargs):
        scored_at.append(utcnow())
        time.sleep(SLEEP_S)
        return real_score(*args, **kwargs)

    monkeypatch.setattr(job, "score_features", slow_score)
    store = Store(tmp_path / "store")
    config = job.RunConfig(n_tokens=8 * 16, ctx_len=16, importance_windows=2, positions_per_window=None, flow=False)
    run = job.run_complexity(adapter, "neurons:1:0-3", config, store=store)
    started, finished = _span(store)
    assert started <= pd.Timestamp(scored_at[0]) and (finished - started).total_seconds() >= SLEEP_S
    assert run.run_id == store.read("runs").iloc[-1]["run_id"]
    assert len(store.read("complexity")) == 4


def test_obsprop_cli_opens_its_run_before_computing(tiny_dirs, tmp_path, monkeypatch, capsys):
    import interp.methods.obsprop.propagation as propagation
    from interp.cli import main

    real, computed_at = propagation.obsprop, []

    def slow(*args, **kwargs):
        computed_at.append(utcnow())
        time.sleep(SLEEP_S)
        return real(*args, **kwargs)

    monkeypatch.setattr(propagation, "obsprop", slow)
    store = tmp_path / "store"
    assert main(["obsprop", "--model", str(tiny_dirs["llama"]), "--observable", " was", "- he",
                 "--store", str(store)]) == 0
    started, finished = _span(Store(store))
    assert started <= pd.Timestamp(computed_at[0]) and (finished - started).total_seconds() >= SLEEP_S
