"""Soft-NS / Soft-NC and hard metrics, checked against values worked out by hand."""

from __future__ import annotations


import pytest
import torch

from interp.methods.attribution.baselines import random_attribution
from interp.methods.attribution.targets import AttributionResult, resolve_target
from interp.methods.attribution.faithfulness import FaithfulnessConfig, faithfulness
from interp.models.interventions import ReplaceActivation


KEY = 3


PROMPT = "The cat sat on the mat. The dog ate"


@pytest.fixture(scope="module")
def toy(tiny_models):
    adapter = tiny_models["llama"]
    tokens = adapter.to_tokens(PROMPT)[0]
    keep = torch.zeros(tokens.numel(), 1)
    keep[KEY] = 1.0
    only_key = ReplaceActivation(adapter.sites(0).resid_pre, lambda act: act * keep.to(act.dtype))
    return adapter, tokens, only_key


def test_true_importance_is_perfectly_faithful_and_beats_random(toy):
    adapter, tokens, only_key = toy
    scores = torch.zeros(tokens.numel())
    scores[KEY] = 1.0
    with adapter.intervene(only_key):
        target = resolve_target(adapter, tokens)
        truth = AttributionResult(adapter.to_str_tokens(tokens), tokens, scores, "truth", target.label)
        faith = faithfulness(adapter, truth, target)
        randoms = [faithfulness(adapter, random_attribution(adapter, tokens, target).__class__(
            truth.tokens, tokens, torch.rand(tokens.numel(), generator=torch.Generator().manual_seed(s)),
            "random", target.label), target) for s in range(5)]
    # Sufficiency keeps the key token whole and the others do not matter: q == p, Soft-NS = 1.
    assert faith.soft_ns == pytest.approx(1.0, abs=1e-5)
    # Comprehensiveness drops the key token entirely: q == the all-masked q0, Soft-C = 1 - S0.
    assert faith.soft_nc == pytest.approx(1.0, abs=1e-5)
    assert faith.s0 < 0.99
    assert faith.sufficiency[0.1] == pytest.approx(0.0, abs=1e-6)
    assert faith.comprehensiveness[0.1] > 0
    assert all(r.soft_ns < faith.soft_ns for r in randoms)
    assert sum(r.soft_ns for r in randoms) / 5 < 0.9


def test_faithfulness_is_seeded(toy):
    adapter, tokens, _ = toy
    target = resolve_target(adapter, tokens)
    result = random_attribution(adapter, tokens, target)
    a = faithfulness(adapter, result, target, FaithfulnessConfig(seed=3)).to_dict()
    b = faithfulness(adapter, result, target, FaithfulnessConfig(seed=3)).to_dict()
    c = faithfulness(adapter, result, target, FaithfulnessConfig(seed=4)).to_dict()
    assert a == b and a != c
    assert set(a) >= {"soft_ns", "soft_nc", "s0", "comp@0.1", "suff@0.5"}
