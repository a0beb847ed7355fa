"""The logit z-score of decoded neurons (decoding step 4) on hand-built weights, worked out by
hand; its range, invariances and tie behaviour; the probability score kept inside [0, 1];
the kernel and torch reductions equal."""

from __future__ import annotations

import math

import pytest
import torch

from interp.methods.neurons import kernels
from interp.methods.neurons.decoding import DecodeConfig, decode_directions, reference_decode, vocab_moments
from interp.models import NormWeights

BACKENDS = ["kernel", "kernel-generic", "torch"]

# d_model 3, vocabulary 4. Row 0 gives token 0 alone, row 1 tokens 1 and 2 with opposite signs,
# row 2 the same logit to every token (a shift).
W_U = torch.tensor([[2.0, 0.0, 0.0, 0.0],
                    [0.0, 1.0, -1.0, 0.0],
                    [1.0, 1.0, 1.0, 1.0]])


@pytest.fixture(params=BACKENDS)
def backend(request, monkeypatch):
    """A DecodeConfig backend name; 'kernel-generic' is the kernel built without its SIMD path."""
    if request.param == "kernel-generic":
        generic = kernels.vocab_reduce_lib(generic=True)
        monkeypatch.setattr(kernels, "vocab_reduce_lib", lambda generic_=False: generic)
        return "kernel"
    return request.param


def _rms(gain) -> NormWeights:
    gain = torch.tensor(gain, dtype=torch.float32)
    return NormWeights("rms", gain, None, 1e-5)


def _decode(w, W, norm, variant, backend, k=2):
    return decode_directions(torch.tensor(w, dtype=torch.float32), W, norm,
                             DecodeConfig(top_k=k, variant=variant, backend=backend, chunk_size=4, vocab_block=4))


def test_raw_z_scores_worked_out_by_hand(backend):
    d = _decode([[1, 0, 0],    # logits [2, 0, 0, 0]: mean 1/2, var (9/4 + 3/4)/4 = 3/4
                 [0, 1, 0],    # logits [0, 1, -1, 0]: mean 0, var 2/4
                 [-1, 0, 0],   # logits [-2, 0, 0, 0]: mean -1/2, var 3/4
                 [1, 0, 5],    # logits [7, 5, 5, 5]: row 0 shifted by 5
                 [0, 0, 0]],   # all zero: std 0
                W_U, _rms([1, 1, 1]), "raw", backend)
    s3 = math.sqrt(3) / 2
    expect_mean = [0.5, 0.0, -0.5, 5.5, 0.0]
    expect_std = [s3, math.sqrt(0.5), s3, s3, 0.0]
    expect_z = [1.5 / s3, 1 / math.sqrt(0.5), 0.5 / s3, 1.5 / s3, 0.0]  # = sqrt 3, sqrt 2, 1/sqrt 3, sqrt 3, 0
    expect_z_neg = [0.5 / s3, 1 / math.sqrt(0.5), 1.5 / s3, 0.5 / s3, 0.0]
    for name, expect in (("logit_mean", expect_mean), ("logit_std", expect_std), ("z", expect_z),
                         ("z_neg", expect_z_neg)):
        assert getattr(d, name).dtype == torch.float64
        assert torch.allclose(getattr(d, name), torch.tensor(expect, dtype=torch.float64), atol=1e-6), name
    # The one-hot row reaches Samuelson's bound sqrt(d_vocab - 1); no row exceeds it.
    assert d.z[0].item() == pytest.approx(math.sqrt(3), abs=1e-6)
    assert float(d.z.max()) <= math.sqrt(3)


def test_folded_z_score_reads_the_gain(backend):
    # w = (1, 1, 0): unit RMS is (1, 1, 0) * sqrt(3/2); the gain (2, 1, 1) makes it sqrt(3/2) (2, 1, 0),
    # logits sqrt(3/2) [4, 1, -1, 0]: deviations from the mean 1 are [3, 0, -2, -1], var 14/4.
    # Without the gain (raw, or a gain of ones) the logits are prop. to [2, 1, -1, 0], var 5/4, z 1.5/sqrt(5/4).
    folded = _decode([[1, 1, 0]], W_U, _rms([2, 1, 1]), "folded", backend)
    assert folded.z.item() == pytest.approx(3 / math.sqrt(3.5), abs=1e-6)
    assert folded.z_neg.item() == pytest.approx(2 / math.sqrt(3.5), abs=1e-6)
    assert folded.logit_mean.item() == pytest.approx(math.sqrt(1.5), abs=1e-6)
    plain = _decode([[1, 1, 0]], W_U, _rms([1, 1, 1]), "folded", backend)
    assert plain.z.item() == pytest.approx(1.5 / math.sqrt(1.25), abs=1e-6)


def test_z_discriminates_where_max_prob_saturates(backend):
    # Logits [40, 20, 0, 0] and [40, 0, 0, 0]: softmax max-prob 1 - 2e-9 and 1 - 6e-18, equal in
    # float32; the z-scores, 25 / sqrt(275) and sqrt(3), are not, and favour the one-token row.
    W = torch.eye(4)
    d = _decode([[40, 20, 0, 0], [40, 0, 0, 0]], W, _rms([1, 1, 1, 1]), "raw", backend)
    assert d.max_prob[0].item() == d.max_prob[1].item() == 1.0
    assert d.z[0].item() == pytest.approx(25 / math.sqrt(275), abs=1e-6)
    assert d.z[1].item() == pytest.approx(math.sqrt(3), abs=1e-6)
    # Scaling the direction changes the softmax temperature but not z.
    cool = _decode([[4, 2, 0, 0], [4, 0, 0, 0]], W, _rms([1, 1, 1, 1]), "raw", backend)
    assert torch.allclose(cool.z, d.z, atol=1e-6)
    assert cool.max_prob[0].item() < 0.9


def test_z_stays_in_range_and_equals_the_full_logit_statistics(backend):
    torch.manual_seed(3)
    d_model, vocab = 24, 1003
    W = torch.randn(d_model, vocab) / math.sqrt(d_model)
    w = torch.randn(64, d_model) * torch.logspace(-2, 2, 64)[:, None]  # temperatures from cold to hot
    w[5] = 0.0
    norm = _rms(torch.rand(d_model).add(0.5).tolist())
    for variant in ("folded", "raw"):
        got = decode_directions(w, W, norm, DecodeConfig(top_k=3, variant=variant, backend=backend,
                                                         chunk_size=16, vocab_block=160))
        ref = reference_decode(w, W, norm, variant, 3)  # mean/std of the float64 logits themselves
        for name in ("logit_mean", "logit_std", "z", "z_neg"):
            assert torch.allclose(getattr(got, name), getattr(ref, name), rtol=1e-5, atol=1e-5), (variant, name)
        assert bool(((got.z >= 0) & (got.z <= math.sqrt(vocab - 1))).all())
        assert got.z[5].item() == 0.0 and got.z_neg[5].item() == 0.0


def test_kernel_and_torch_paths_give_the_same_scores():
    torch.manual_seed(4)
    W, w = torch.randn(32, 2000) / 4, torch.randn(100, 32) * 3
    norm = _rms([1.0] * 32)
    cfg = dict(top_k=5, variant="folded", chunk_size=32, vocab_block=512)
    a = decode_directions(w, W, norm, DecodeConfig(backend="kernel", **cfg))
    b = decode_directions(w, W, norm, DecodeConfig(backend="torch", **cfg))
    assert torch.equal(a.top_ids, b.top_ids)
    assert torch.equal(a.logit_mean, b.logit_mean) and torch.equal(a.logit_std, b.logit_std)  # one closed form
    for name in ("z", "z_neg", "max_prob", "max_prob_neg"):
        assert torch.allclose(getattr(a, name).double(), getattr(b, name).double(), rtol=1e-6, atol=1e-6), name


def test_max_prob_stays_in_the_unit_interval_where_the_fast_exp_overshoots(backend):
    # One row of logits, blocks of 32: block 0 spans [-20, 0], block 1 holds the max 17.4. The
    # kernel's fused pass sums exp(l - 0) by its polynomial exp and re-bases on 17.4 with expf:
    # unclamped, 1/Z comes out ~1 + 9e-7 on the AVX-512 path.
    row = torch.full((64,), -20.0)
    row[0], row[40] = 0.0, 17.4
    d = decode_directions(torch.ones(1, 1), row[None], _rms([1.0]),
                          DecodeConfig(top_k=3, variant="raw", backend=backend, chunk_size=8, vocab_block=32))
    expect = 1 / (1 + math.exp(-17.4) + 62 * math.exp(-37.4))
    assert 0.0 <= d.max_prob.item() <= 1.0 and d.max_prob.item() == pytest.approx(expect, abs=2e-6)
    assert 0.0 <= d.top_probs[0, 0].item() <= 1.0
    assert 0.0 <= d.entropy.item() <= math.log(64)


def test_vocab_moments_closed_form_and_cache():
    # u_bar = mean column; C = mean of (u_t - u_bar)(u_t - u_bar)^T, by hand for W_U above.
    m = vocab_moments(W_U)
    assert torch.allclose(m.mean, torch.tensor([0.5, 0.0, 1.0], dtype=torch.float64))
    expect = torch.tensor([[0.75, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    assert torch.allclose(m.cov, expect) and m.d_vocab == 4
    W = W_U.clone()
    assert vocab_moments(W.detach()) is vocab_moments(W.detach())  # views of one weight share the entry
    W[0, 0] = 4.0  # modified in place: recomputed
    assert vocab_moments(W).mean[0].item() == pytest.approx(1.0)
