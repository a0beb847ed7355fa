"""Soft-NS / Soft-NC and hard metrics, checked against values worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from interp.methods.attribution.faithfulness import FaithfulnessConfig, _keep_masks, hellinger, normalise_importance


def test_hellinger_by_hand():
    p = torch.tensor([1.0, 0.0])
    assert float(hellinger(p, p)) == pytest.approx(0.0)
    assert float(hellinger(p, torch.tensor([0.0, 1.0]))) == pytest.approx(1.0)
    # sqrt((sqrt(.5) - 1)^2 + .5) / sqrt(2)
    expected = math.sqrt((math.sqrt(0.5) - 1) ** 2 + 0.5) / math.sqrt(2)
    assert float(hellinger(p, torch.tensor([0.5, 0.5]))) == pytest.approx(expected, abs=1e-6)


def test_normalise_importance_is_min_max_over_attributable():
    scores = torch.tensor([9.0, 1.0, 3.0, 2.0])
    attributable = torch.tensor([False, True, True, True])
    assert normalise_importance(scores, attributable).tolist() == pytest.approx([0.0, 0.0, 1.0, 0.5])
    assert normalise_importance(torch.ones(4), attributable).tolist() == [0.0, 1.0, 1.0, 1.0]


def test_masks_are_bernoulli_per_embedding_element():
    weights = torch.tensor([0.0, 0.25, 1.0, 0.0])
    attributable = torch.tensor([False, True, True, True])
    keep = _keep_masks(weights, attributable, (0.5,), 64, 200, torch.Generator().manual_seed(0))
    # rows: clean, all-masked, 64 sufficiency, 64 comprehensiveness, 1 hard-comp, 1 hard-suff
    assert keep.shape == (2 + 128 + 2, 4, 200)
    suff, comp = keep[2:66], keep[66:130]
    assert (keep[:, 0] == 1).all()  # BOS always kept
    assert keep[1, 1:].sum() == 0  # all-masked baseline
    assert float(suff[:, 1].mean()) == pytest.approx(0.25, abs=0.02)
    assert float(comp[:, 1].mean()) == pytest.approx(0.75, abs=0.02)
    assert (suff[:, 2] == 1).all() and (comp[:, 2] == 0).all() and (suff[:, 3] == 0).all()
    assert 0 < float(suff[0, 1].mean()) < 1  # elements of one token differ, not one coin per token
    # hard metrics at 50% of 3 tokens = top 2 (positions 2 and 1)
    assert keep[-2, :, 0].tolist() == [1, 0, 0, 1] and keep[-1, :, 0].tolist() == [1, 1, 1, 0]


def test_bad_config_and_shapes():
    with pytest.raises(ValueError, match="n_samples"):
        FaithfulnessConfig(n_samples=0)
    with pytest.raises(ValueError, match="hard_fractions"):
        FaithfulnessConfig(hard_fractions=(0.0,))
