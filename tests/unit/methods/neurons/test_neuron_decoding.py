"""LM-head neuron decoding: hand-built cases with known answers, blocked vs reference, real models."""

from __future__ import annotations

import math

import pytest
import torch

from interp.methods.neurons.decoding import DecodeConfig, decode_directions, prepare_directions, reference_decode
from interp.models import NormWeights


def _norm(kind: str, gain) -> NormWeights:
    return NormWeights(kind, torch.as_tensor(gain, dtype=torch.float32), None, 1e-5)


def test_gain_folding_changes_the_winner_as_computed_by_hand():
    W_U = torch.eye(3)  # token j = residual dimension j
    w = torch.tensor([[1.0, 0.9, 0.0]])
    norm = _norm("rms", [1.0, 2.0, 1.0])
    raw = decode_directions(w, W_U, norm, DecodeConfig(top_k=3, variant="raw"))
    folded = decode_directions(w, W_U, norm, DecodeConfig(top_k=3, variant="folded"))
    assert raw.top_ids[0].tolist() == [0, 1, 2]
    assert folded.top_ids[0].tolist() == [1, 0, 2]  # the gain doubles dimension 1: 1.8 > 1.0
    rms = math.sqrt((1 + 0.81) / 3)
    logits = torch.tensor([1.0, 1.8, 0.0]) / rms
    assert torch.allclose(folded.top_logits[0], logits[[1, 0, 2]], atol=1e-5)
    p = logits.softmax(-1)
    assert torch.allclose(folded.top_probs[0], p[[1, 0, 2]], atol=1e-6)
    assert folded.max_prob[0].item() == pytest.approx(p.max().item(), abs=1e-6)
    assert folded.entropy[0].item() == pytest.approx(-(p * p.log()).sum().item(), abs=1e-5)


def test_uniform_logits_have_maximal_entropy():
    V = 50
    out = decode_directions(torch.randn(4, 8), torch.zeros(8, V), _norm("rms", torch.ones(8)),
                            DecodeConfig(top_k=5, vocab_block=7, chunk_size=3))
    assert torch.allclose(out.entropy, torch.full((4,), math.log(V)), atol=1e-5)
    assert torch.allclose(out.max_prob, torch.full((4,), 1 / V), atol=1e-7)
    assert torch.allclose(out.entropy_neg, torch.full((4,), math.log(V)), atol=1e-5)


def test_layernorm_folding_ignores_the_mean_direction():
    torch.manual_seed(0)
    W_U, w = torch.randn(6, 40), torch.randn(5, 6)
    norm = _norm("layer", torch.rand(6) + 0.5)
    a = decode_directions(w, W_U, norm, DecodeConfig(top_k=4))
    b = decode_directions(w + 3.0, W_U, norm, DecodeConfig(top_k=4))  # + 3 * (1, ..., 1)
    assert torch.equal(a.top_ids, b.top_ids)
    assert torch.allclose(a.top_logits, b.top_logits, atol=1e-4)
    centred = w - w.mean(-1, keepdim=True)
    expected = (centred / centred.pow(2).mean(-1, keepdim=True).sqrt() * norm.gain) @ W_U
    assert torch.allclose(a.top_logits, expected.topk(4, dim=1).values, atol=1e-4)


@pytest.mark.parametrize("kind", ["rms", "layer"])
@pytest.mark.parametrize("variant", ["folded", "raw"])
def test_blocked_decoding_equals_the_unchunked_float64_reference(kind, variant):
    torch.manual_seed(1)
    W_U, w = torch.randn(16, 301) * 0.5, torch.randn(37, 16)
    norm = _norm(kind, torch.rand(16) + 0.5)
    got = decode_directions(w, W_U, norm, DecodeConfig(top_k=6, variant=variant, chunk_size=8, vocab_block=50))
    ref = reference_decode(w, W_U, norm, variant, 6)
    for name in ("top_ids", "bottom_ids"):
        assert torch.equal(getattr(got, name), getattr(ref, name))
    for name in ("top_logits", "top_probs", "bottom_logits", "bottom_probs", "max_prob", "entropy",
                 "max_prob_neg", "entropy_neg"):
        assert torch.allclose(getattr(got, name).double(), getattr(ref, name), rtol=1e-4, atol=1e-6), name


@pytest.mark.parametrize("scale", [1.0, 40.0])  # 40: logit ranges beyond the one-exp shortcut
def test_grouped_top_k_and_both_stat_paths_equal_the_reference(scale):
    torch.manual_seed(3)
    W_U, w = torch.randn(16, 1024) * scale, torch.randn(50, 16)
    norm = _norm("rms", torch.ones(16))
    got = decode_directions(w, W_U, norm, DecodeConfig(top_k=7, variant="raw", chunk_size=16, vocab_block=256))
    ref = reference_decode(w, W_U, norm, "raw", 7)
    assert torch.equal(got.top_ids, ref.top_ids) and torch.equal(got.bottom_ids, ref.bottom_ids)
    for name in ("top_probs", "bottom_probs", "max_prob", "entropy", "max_prob_neg", "entropy_neg"):
        assert torch.allclose(getattr(got, name).double(), getattr(ref, name), rtol=1e-4, atol=1e-6), name


def test_bottom_end_is_the_top_end_of_the_negated_direction():
    torch.manual_seed(2)
    W_U, w = torch.randn(8, 90), torch.randn(10, 8)
    norm = _norm("rms", torch.rand(8) + 0.5)
    pos = decode_directions(w, W_U, norm, DecodeConfig(top_k=5))
    neg = decode_directions(-w, W_U, norm, DecodeConfig(top_k=5))
    assert torch.equal(pos.bottom_ids, neg.top_ids)
    assert torch.allclose(pos.bottom_probs, neg.top_probs, atol=1e-6)
    assert torch.allclose(pos.entropy_neg, neg.entropy, atol=1e-5)


def test_config_and_input_errors_name_the_bad_value():
    with pytest.raises(ValueError, match="'sideways'.*folded, raw"):
        DecodeConfig(variant="sideways")
    with pytest.raises(ValueError, match="top_k"):
        DecodeConfig(top_k=0)
    with pytest.raises(ValueError, match="vocab_block"):
        DecodeConfig(vocab_block=-1)
    with pytest.raises(ValueError, match=r"\(n, d_model=4\)"):
        decode_directions(torch.randn(2, 5), torch.randn(4, 10), _norm("rms", torch.ones(4)))
    with pytest.raises(ValueError, match="exceeds the vocabulary"):
        decode_directions(torch.randn(2, 4), torch.randn(4, 10), _norm("rms", torch.ones(4)), DecodeConfig(top_k=11))


def test_prepare_directions_rejects_unknown_variant():
    with pytest.raises(ValueError, match="valid: folded, raw"):
        prepare_directions(torch.randn(2, 3), _norm("rms", torch.ones(3)), "cooked")
