"""Soft-NS / Soft-NC under both conventions, against numbers worked out by hand.

The toy model: vocabulary of 2, one embedding dimension, every token's embedding 1. The keep
mask m (rows, pos) multiplies the embeddings and the last position's logits are
``(sum_i a_i m_i, 0)``, so p(token 0) = sigmoid(L). With importance all on token 1 the
weights are 0/1 and every Bernoulli mask is deterministic: each convention's numbers follow
by hand from which positions each mask keeps.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from interp.methods.attribution.faithfulness import (
    FaithfulnessConfig, _keep_masks, faithfulness, importance_weights, soft_metrics,
)
from interp.methods.attribution.targets import AttributionResult, TokenTarget

SQRT2 = math.sqrt(2)


def two_way(L: float) -> tuple[float, float]:
    s = 1 / (1 + math.exp(-L))
    return s, 1 - s


def sq(p, q) -> float:
    """sum (sqrt p - sqrt q)^2, by hand."""
    return sum((math.sqrt(a) - math.sqrt(b)) ** 2 for a, b in zip(p, q))


class ToyAdapter:
    """Embeddings all 1; logits (sum_i a_i * embed_i, 0) at every position; BOS is id 0."""

    device = "cpu"
    embed_site = "embed"

    def __init__(self, a):
        self.a = torch.tensor(a, dtype=torch.float32)
        self.info = SimpleNamespace(d_model=1, bos_token_id=0)
        self.tokenizer = SimpleNamespace(all_special_ids=[0])

    def run(self, tokens, names=(), interventions=(), last_position=True):
        emb = torch.ones(tokens.shape[0], tokens.shape[1], 1)
        for iv in interventions:
            emb = iv.apply(emb)
        L = (emb[..., 0] * self.a).sum(-1)  # (rows,)
        logits = torch.stack([L, torch.zeros_like(L)], -1)[:, None, :]  # (rows, 1, 2)
        return SimpleNamespace(output=logits, cache={})


def _run(a, scores, convention):
    adapter = ToyAdapter(a)
    tokens = torch.tensor([0, 1, 2])
    result = AttributionResult(["<s>", "x", "y"], tokens, torch.tensor(scores), "toy", "p(0)")
    config = FaithfulnessConfig(n_samples=4, convention=convention, hard_fractions=(0.5,))
    return faithfulness(adapter, result, TokenTarget(0), config)


A = (math.log(3), math.log(3), 0.0)  # clean L = ln 9: p = (0.9, 0.1)


def test_reagent_convention_by_hand():
    # sum-to-1 weights (0, 1, 0): sufficiency keeps token 1 only (BOS masked): L = ln 3;
    # comprehensiveness keeps BOS and token 2: L = ln 3; S0 zeroes everything: L = 0.
    f = _run(A, [0.0, 2.0, 0.0], "reagent")
    p, q_s, q_0 = (0.9, 0.1), (0.75, 0.25), (0.5, 0.5)
    d_s, d_0 = sq(p, q_s) / SQRT2, sq(p, q_0) / SQRT2  # no square root
    assert d_s == pytest.approx(0.028711, abs=1e-6) and d_0 == pytest.approx(0.149302, abs=1e-6)
    assert f.s0 == pytest.approx(1 - d_0, abs=1e-6)
    assert f.soft_s == pytest.approx(1 - d_s, abs=1e-6)
    assert f.soft_c == pytest.approx(d_s, abs=1e-6)
    assert f.soft_ns == pytest.approx((d_0 - d_s) / d_0, abs=1e-5)  # 0.807694
    assert f.soft_ns == pytest.approx(0.807694, abs=1e-5)
    assert f.soft_nc == pytest.approx(d_s / d_0, abs=1e-5)  # 0.192306
    assert f.convention == "reagent" and f.n_masks == 4
    assert f.intervals["soft_ns"] == (pytest.approx(f.soft_ns), pytest.approx(f.soft_ns))  # identical masks


def test_interp_convention_by_hand():
    # min-max weights (0, 1, 0), BOS always kept: sufficiency keeps BOS + token 1: L = ln 9 = clean;
    # comprehensiveness keeps BOS + token 2: L = ln 3; S0 keeps BOS: L = ln 3.
    f = _run(A, [0.0, 2.0, 0.0], "interp")
    h0 = math.sqrt(sq((0.9, 0.1), (0.75, 0.25))) / SQRT2  # Hellinger, with the square root
    assert f.s0 == pytest.approx(1 - h0, abs=1e-6)
    assert f.soft_ns == pytest.approx(1.0, abs=1e-5)
    assert f.soft_nc == pytest.approx(1.0, abs=1e-5)


def test_soft_nc_passes_one_when_partial_masking_moves_further_than_all():
    # a = (0, 2, -1), weights (0, 1, 0): clean L = 1; comprehensiveness keeps token 2 (and BOS,
    # which adds 0): L = -1; S0: L = 0 in both conventions. |(-1) - 1| > |0 - 1|.
    a = (0.0, 2.0, -1.0)
    p, q_c, q_0 = two_way(1.0), two_way(-1.0), two_way(0.0)
    interp, reagent = _run(a, [0.0, 1.0, 0.0], "interp"), _run(a, [0.0, 1.0, 0.0], "reagent")
    assert interp.soft_nc == pytest.approx(math.sqrt(sq(p, q_c) / sq(p, q_0)), abs=1e-5)
    assert reagent.soft_nc == pytest.approx(sq(p, q_c) / sq(p, q_0), abs=1e-5)  # the square of interp's
    assert interp.soft_nc > 1 and reagent.soft_nc > interp.soft_nc
    # sigmoid(1) = 0.731059: sq(p, q_c) = 2 - 4 sqrt(0.731059 * 0.268941) = 0.226360,
    # sq(p, q_0) = 2 - 2 (sqrt(0.365529) + sqrt(0.134471)) = 0.057414 -> ratio 3.9426
    assert reagent.soft_nc == pytest.approx(3.9426, abs=1e-3)
    assert interp.soft_nc == pytest.approx(math.sqrt(3.9426), abs=1e-3)


def test_per_mask_clipping_versus_clipping_the_mean():
    # Two sufficiency masks: one reproduces p exactly, one lands further than the all-masked q0.
    p, q0, far = torch.tensor([0.9, 0.1]), torch.tensor([0.5, 0.5]), torch.tensor([0.1, 0.9])
    q_suff, q_comp = torch.stack([p, far]), torch.stack([q0, q0])
    r = soft_metrics(p, q0, q_suff, q_comp, "reagent")
    d0, dfar = sq((0.9, 0.1), (0.5, 0.5)), sq((0.9, 0.1), (0.1, 0.9))  # the sqrt(2) cancels in ratios
    # per mask: max(0, d0 - 0)/d0 = 1 and max(0, d0 - dfar)/d0 = 0 -> mean 0.5
    assert dfar > d0 and r["soft_ns"] == pytest.approx(0.5, abs=1e-6)
    assert r["soft_nc"] == pytest.approx(1.0, abs=1e-6) and r["n_masks"] == 2
    i = soft_metrics(p, q0, q_suff, q_comp, "interp")
    h0, hfar = math.sqrt(d0 / 2), math.sqrt(dfar / 2)
    # interp clips the mean: max(0, (1 - 0 + 1 - hfar)/2 - (1 - h0)) / h0
    assert i["soft_ns"] == pytest.approx(max(0.0, h0 - hfar / 2) / h0, abs=1e-6)


def test_weights_and_bos_handling_of_each_convention():
    scores = torch.tensor([5.0, 1.0, 3.0, -2.0])
    attributable = torch.tensor([False, True, True, True])
    assert importance_weights(scores, attributable, "reagent").tolist() == pytest.approx([0.0, 0.25, 0.75, 0.0])
    assert importance_weights(scores, attributable, "interp").tolist() == pytest.approx([0.0, 0.6, 1.0, 0.0])
    gen = torch.Generator().manual_seed(0)
    w = torch.tensor([0.0, 1.0, 0.0, 0.0])
    keep = _keep_masks(w, attributable, (0.5,), 2, 3, gen, "reagent")
    assert keep[1].sum() == 0  # S0: BOS zeroed too
    assert (keep[2:4, 0] == 0).all() and (keep[4:6, 0] == 1).all()  # BOS (w = 0): masked in suff, kept in comp
    keep = _keep_masks(w, attributable, (0.5,), 2, 3, gen, "interp")
    assert (keep[1:6, 0] == 1).all()  # BOS always kept


def test_unknown_convention_is_one_clear_line():
    with pytest.raises(ValueError, match="unknown convention 'paper'; valid: reagent, interp"):
        FaithfulnessConfig(convention="paper")
