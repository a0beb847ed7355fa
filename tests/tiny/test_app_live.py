"""The prompt view's live computations (`app.live`) on a tiny model, and on SmolLM2 via AppTest."""

from __future__ import annotations


import pytest
import torch

from app import live
from interp.models import ClampUnit


PROMPT = "The capital of France is"


@pytest.fixture(scope="module")
def tiny(tiny_models):
    return tiny_models["llama"]


def test_prediction_is_the_softmax_top_k(tiny):
    frame = live.prediction(tiny, PROMPT, k=5)
    probs = torch.softmax(tiny.logits(tiny.to_tokens(PROMPT))[0, -1].float(), -1)
    top = torch.topk(probs, 5)
    assert frame["token_id"].tolist() == top.indices.tolist()
    assert frame["prob"].tolist() == pytest.approx(top.values.tolist(), rel=1e-5)
    assert frame["prob"].is_monotonic_decreasing


def test_continuation_is_greedy_and_a_clamp_reaches_every_step(tiny):
    tokens = tiny.to_tokens(PROMPT)
    for _ in range(4):
        tokens = torch.cat([tokens, tiny.logits(tokens)[:, -1].argmax(-1, keepdim=True)], 1)
    assert live.continuation(tiny, PROMPT, 4) == tiny.decode(tokens[0, -4:].tolist())

    site = tiny.sites(0).mlp_hidden
    clamp = ClampUnit(site, 0, 1e4)
    clamped = live.continuation(tiny, PROMPT, 4, clamp=clamp)
    manual = tiny.to_tokens(PROMPT)
    for _ in range(4):
        manual = torch.cat([manual, tiny.logits(manual, interventions=(clamp,))[:, -1].argmax(-1, keepdim=True)], 1)
    assert clamped == tiny.decode(manual[0, -4:].tolist())


def test_active_neurons_are_ranked_per_layer_without_bos(tiny):
    found = live.active_neurons(tiny, PROMPT, layers=[0, 1], k=2)
    tokens = tiny.to_tokens(PROMPT)
    for layer in (0, 1):
        site = tiny.sites(layer).mlp_hidden
        acts = tiny.run(tokens, names=[site]).cache[site][0, 1:]  # (pos - 1, d_mlp): BOS left out
        best, where = acts.max(0)
        top = best.topk(2)
        part = found.table[found.table["layer"] == layer]
        assert part["index"].tolist() == top.indices.tolist() and part["rank"].tolist() == [1, 2]
        assert part["act"].tolist() == pytest.approx(top.values.tolist(), rel=1e-5)
        assert part["pos"].tolist() == (where[top.indices] + 1).tolist()  # positions of the whole prompt
    assert found.tokens == tiny.to_str_tokens(PROMPT)[1:]
    assert found.heat.shape == (4, tokens.shape[1] - 1) and found.labels[0].startswith("L0/N")


def test_including_bos_ranks_over_every_position(tiny):
    tokens = tiny.to_tokens(PROMPT)
    site = tiny.sites(1).mlp_hidden
    acts = tiny.run(tokens, names=[site]).cache[site][0]
    found = live.active_neurons(tiny, PROMPT, layers=[1], k=3, include_bos=True)
    assert found.table["index"].tolist() == acts.max(0).values.topk(3).indices.tolist()
    assert found.tokens == tiny.to_str_tokens(PROMPT) and found.heat.shape[1] == tokens.shape[1]


def test_every_view_reads_the_one_forward_pass(tiny, monkeypatch):
    from interp.models.adapter import ModelAdapter

    found = live.forward(tiny, PROMPT)
    calls = []
    real = ModelAdapter.run
    monkeypatch.setattr(ModelAdapter, "run", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    frame = live.prediction(tiny, found, k=3)
    live.active_neurons(tiny, found, layers=[0, 1])
    grid = live.lens(tiny, found)
    assert calls == []
    assert frame["token_id"].tolist() == tiny.logits(tiny.to_tokens(PROMPT))[0, -1].topk(3).indices.tolist()
    assert grid.top_ids[-1, :, 0].tolist() == found.logits.argmax(-1).tolist()  # last lens row = the output


def test_empty_prompt_is_a_clear_error(tiny):
    with pytest.raises(ValueError, match="prompt is empty"):
        live.prediction(tiny, "   ")


def test_live_attributions_cover_every_token_and_zero_the_bos(tiny):
    results = live.attributions(tiny, PROMPT, methods=("reagent", "occlusion", "random"), reagent_probes=2,
                                reagent_steps=5)
    assert [r.method for r in results] == ["reagent", "occlusion", "random"]
    for r in results:
        assert r.tokens == tiny.to_str_tokens(PROMPT)
        assert len(r.scores) == len(r.tokens) and float(r.scores[0]) == 0.0, r.method  # BOS is never attributed
    assert float(results[0].scores.sum()) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="unknown attribution method"):
        live.attributions(tiny, PROMPT, methods=("telepathy",))


def test_active_latents_are_ranked_by_their_largest_activation(tiny):
    from interp.dictionaries.dictionary import Dictionary

    site = tiny.sites(1).mlp_in
    d_in = tiny.info.d_model
    dictionary = Dictionary(d_in, 16, d_in, kind="sae", arch="relu")
    dictionary.init_weights(torch.Generator().manual_seed(0))
    found = live.active_latents(tiny, dictionary, site, PROMPT, k=2)
    x = tiny.run(tiny.to_tokens(PROMPT), names=[site]).cache[site][0, 1:]  # BOS dropped
    acts = torch.relu((x - dictionary.b_dec) @ dictionary.W_enc + dictionary.b_enc)
    expected = acts.max(0).values.topk(2)
    assert found.tokens == tiny.to_str_tokens(PROMPT)[1:]
    assert found.table["index"].tolist() == expected.indices.tolist()
    assert found.table["act"].tolist() == pytest.approx(expected.values.tolist(), rel=1e-5, abs=1e-6)
    assert found.heat.shape == (len(found.labels), len(found.tokens))
