"""Dictionaries end to end: store round trip through SAELens, CLI, evaluation and dashboards."""

from __future__ import annotations


import pytest

from interp.dictionaries import TrainConfig
from interp.store import Store


@pytest.mark.model
def test_smollm2_transcoder_recovers_ce(smollm2, tmp_path):
    """A small TopK transcoder on layer 15 (20k tokens, expansion 4) beats zero ablation."""
    from interp.jobs.dictionaries import DataConfig, train_and_publish

    store = Store(tmp_path / "store")
    train = TrainConfig(kind="transcoder", arch="topk", k=16, expansion=4, batch_size=256, train_tokens=20_000)
    pub = train_and_publish(smollm2, store, train, 15, progress=False,
                            data=DataConfig(corpus="imdb", eval_tokens=512, dashboard_tokens=0))
    m = pub.metrics
    assert m.ce_zero_ablation > m.ce_clean
    assert 0 < m.ce_recovered <= 1.05
    assert m.fvu < 1.0 and m.l0 <= 16
    assert not store.read("dictionaries", where={"name": pub.name}).empty
