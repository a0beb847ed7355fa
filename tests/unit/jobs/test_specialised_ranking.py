"""Which neurons the clamp report tests: by the top end's logit z-score (default) or by the
top token's probability, on a hand-written store whose order is known."""

from __future__ import annotations

import json

import pytest

from interp.jobs.clamp_check import specialised_neurons
from interp.store import Store

MODEL = "toy"
# (layer, index): top token's probability, top-end z, bottom-end z. B and D tie on z and prob.
NEURONS = {(0, 1): (1.0, 5.0, 30.0),   # saturated softmax, ordinary top end (its strong end is the bottom)
           (1, 2): (1.0, 9.0, 1.0),    # B
           (0, 3): (0.6, 12.0, 1.0),   # the top token stands out most, softmax far from one-hot
           (1, 0): (1.0, 9.0, 2.0),    # D: ties with B
           (0, 4): (0.9, 9.0, 1.0)}    # same z as B and D, lower probability


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "store")
    run = store.start_run("test", {})
    tokens, feats = [], []
    for (layer, index), (prob, z, z_neg) in NEURONS.items():
        ident = {"model": MODEL, "site": f"blocks.{layer}.mlp.hook_post", "kind": "neuron", "index": index}
        tokens.append({**ident, "direction": "down", "variant": "folded", "end": "top", "rank": 0,
                       "token_id": 10 * layer + index, "token_str": "t", "logit": 1.0, "prob": prob})
        metrics = {"neuron_map": {"down/folded": {"max_prob": prob, "z": z, "z_neg": z_neg}}}
        feats.append({**ident, "specialisation": prob, "logit_z": max(z, z_neg), "metrics": json.dumps(metrics)})
    store.write("feature_tokens", tokens, run_id=run)
    store.write("features", feats, run_id=run)
    store.finish_run(run, "done")
    return store


def test_z_ranking_uses_the_top_end_and_breaks_ties_by_probability_then_position(store):
    got = [(layer, index) for layer, index, _ in specialised_neurons(store, MODEL, 5)]
    # z 12 first; the three z = 9 by probability (0.9 last), B vs D by layer then index; the
    # neuron whose large z is at its bottom end (which a positive clamp does not promote) last.
    assert got == [(0, 3), (1, 0), (1, 2), (0, 4), (0, 1)]
    assert specialised_neurons(store, MODEL, 1)[0] == (0, 3, 3)  # with its top token id


def test_prob_ranking_is_the_older_order(store):
    got = [(layer, index) for layer, index, _ in specialised_neurons(store, MODEL, 5, rank_by="prob")]
    assert got == [(0, 1), (1, 0), (1, 2), (0, 4), (0, 3)]  # ties at 1.0 by layer, then index


def test_bad_ranking_and_maps_without_z_are_clear_errors(store, tmp_path):
    with pytest.raises(ValueError, match="unknown ranking 'entropy'; valid: z, prob"):
        specialised_neurons(store, MODEL, 3, rank_by="entropy")
    old = Store(tmp_path / "old")
    run = old.start_run("test", {})
    ident = {"model": MODEL, "site": "blocks.0.mlp.hook_post", "kind": "neuron", "index": 0}
    old.write("feature_tokens", [{**ident, "direction": "down", "variant": "folded", "end": "top", "rank": 0,
                                  "token_id": 1, "token_str": "t", "logit": 1.0, "prob": 0.5}], run_id=run)
    old.write("features", [{**ident, "specialisation": 0.5,
                            "metrics": json.dumps({"neuron_map": {"down/folded": {"max_prob": 0.5}}})}], run_id=run)
    with pytest.raises(ValueError, match="no z-scores.*--force"):
        specialised_neurons(old, MODEL, 1)
    assert specialised_neurons(old, MODEL, 1, rank_by="prob") == [(0, 0, 1)]
