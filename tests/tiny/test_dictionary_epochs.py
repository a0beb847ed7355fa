"""Several epochs over one set of training windows: the model runs once per activation chunk,
and the headline dictionary of the main job's recipe sees epochs x its distinct tokens."""

from __future__ import annotations

import random

import pytest

from interp.dictionaries.train_config import TrainConfig
from interp.store import Store

WORDS = "the cat sat on a mat and then it ran to the big red door of an old house".split()


@pytest.fixture
def corpus(tmp_path):
    rng = random.Random(0)
    path = tmp_path / "docs.txt"
    path.write_text("\n\n".join(" ".join(rng.choice(WORDS) for _ in range(60)) + "." for _ in range(80)))
    return f"text:{path}"


@pytest.mark.parametrize("epochs", [1, 3])
def test_later_epochs_reuse_the_first_model_pass(tiny_models, tmp_path, corpus, monkeypatch, epochs):
    import interp.dictionaries.activations as acts
    from interp.jobs.dictionaries import DataConfig, train_and_publish_many

    passes = []
    real = acts.site_activations
    monkeypatch.setattr(acts, "site_activations", lambda *a, **k: passes.append(1) or real(*a, **k))
    model = tiny_models["llama"]
    data = DataConfig(corpus=corpus, ctx_len=16, eval_tokens=64, dashboard_tokens=0, buffer_windows=8,
                      activation_tokens=8 * 14 * 2)  # two chunks of 8 windows x 14 trainable tokens
    train = TrainConfig(kind="transcoder", arch="topk", k=2, expansion=2, batch_size=16, warmup_steps=1,
                        train_tokens=8 * 14 * 2 * epochs, dead_after_tokens=64, aux_k=4)
    (pub,) = train_and_publish_many(model, Store(tmp_path / "s"), [train], [1], data=data, progress=False)
    assert pub.result.config.train_tokens == 224 * epochs
    assert len(passes) == 2  # one model pass per chunk (7 batches of 16 each), however many epochs


def test_pipeline_recipe_refuses_zero_epochs(tiny_models, tmp_path):
    from interp.jobs.dictionaries import pipeline_transcoders

    with pytest.raises(ValueError, match="epochs must be >= 1, got 0"):
        pipeline_transcoders(tiny_models["llama"], Store(tmp_path / "s"), layers=(1,), epochs=0)
