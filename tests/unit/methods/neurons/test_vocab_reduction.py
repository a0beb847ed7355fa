"""Block reductions over the vocabulary: the C kernel (AVX-512 and plain C paths) and the torch
path each equal a float64 full-softmax reference; the kernel builds, caches and falls back."""

from __future__ import annotations

import math

import pytest
import torch

from interp.methods.neurons import kernels
from interp.methods.neurons.decoding import DecodeConfig, decode_directions, reference_decode
from interp.methods.neurons.vocab_reduction import reduce_vocab
from interp.models import NormWeights

IMPLEMENTATIONS = ["kernel", "kernel-generic", "torch"]


@pytest.fixture(params=IMPLEMENTATIONS)
def backend(request, monkeypatch):
    """A DecodeConfig backend name; 'kernel-generic' is the kernel built without its SIMD path."""
    if request.param == "kernel-generic":
        generic = kernels.vocab_reduce_lib(generic=True)
        assert generic.vocab_reduce_simd() == 0
        monkeypatch.setattr(kernels, "vocab_reduce_lib", lambda generic_=False: generic)
        return "kernel"
    return request.param


def _norm(d: int) -> NormWeights:
    return NormWeights("rms", torch.ones(d), None, 1e-5)


def _check(got, ref, rtol=1e-4):
    # Ties aside, ids must match exactly. The tolerance is float32's: the logits themselves come
    # from a float32 GEMM (errors ~1e-6 relative to logits of up to ~100).
    assert torch.equal(got.top_ids, ref.top_ids)
    assert torch.equal(got.bottom_ids, ref.bottom_ids)
    for name in ("top_logits", "bottom_logits", "top_probs", "bottom_probs", "max_prob", "entropy", "max_prob_neg",
                 "entropy_neg"):
        assert torch.allclose(getattr(got, name).double(), getattr(ref, name), rtol=rtol, atol=2e-5), name


@pytest.mark.parametrize("k", [1, 7, 20, 70])  # 70 > 64: beyond the kernel's first-block floors
@pytest.mark.parametrize("scale", [1.0, 6.0, 40.0])  # 40: logit spans past the one-exp shortcut
def test_every_implementation_equals_the_float64_reference(backend, k, scale):
    torch.manual_seed(k)
    d, vocab = 24, 1003  # a vocabulary that is no multiple of 16 nor of the block
    W_U, w = torch.randn(d, vocab) * scale / math.sqrt(d), torch.randn(45, d)
    cfg = DecodeConfig(top_k=k, variant="raw", chunk_size=16, vocab_block=160, backend=backend)
    _check(decode_directions(w, W_U, _norm(d), cfg), reference_decode(w, W_U, _norm(d), "raw", k))


def test_threads_chunks_and_blocks_do_not_change_the_result(backend):
    torch.manual_seed(5)
    W_U, w = torch.randn(32, 4096) / 4, torch.randn(130, 32)
    ref = reference_decode(w, W_U, _norm(32), "raw", 20)
    previous = torch.get_num_threads()
    try:
        for threads, chunk, block in ((1, 2048, 4096), (2, 2048, 1024), (2, 50, 512), (3, 7, 4096)):
            torch.set_num_threads(threads)
            cfg = DecodeConfig(top_k=20, variant="raw", chunk_size=chunk, vocab_block=block, backend=backend)
            _check(decode_directions(w, W_U, _norm(32), cfg), ref)
    finally:
        torch.set_num_threads(previous)


def test_a_range_that_grows_block_by_block_is_summed_exactly(backend):
    # Logits that rise steadily across the vocabulary: every block sets a new max (the kernel's
    # shared reference must be re-based each time) and the last blocks leave its safe range.
    W_U = torch.linspace(0, 90, 2048)[None, :].repeat(2, 1)
    w = torch.tensor([[1.0, 0.0], [0.0, -1.0]])
    cfg = DecodeConfig(top_k=5, variant="raw", vocab_block=256, backend=backend)
    _check(decode_directions(w, W_U, _norm(2), cfg), reference_decode(w, W_U, _norm(2), "raw", 5), rtol=1e-5)


@pytest.mark.parametrize("jump", [30.0, -90.0])  # a block far above / below everything before it
def test_a_block_that_jumps_out_of_the_running_range_is_summed_exactly(backend, jump):
    torch.manual_seed(7)
    values = torch.cat([torch.rand(512), torch.rand(512) + jump, torch.rand(512)])
    W_U, w = values[None, :], torch.ones(1, 1)
    cfg = DecodeConfig(top_k=3, variant="raw", vocab_block=512, backend=backend)
    _check(decode_directions(w, W_U, _norm(1), cfg), reference_decode(w, W_U, _norm(1), "raw", 3), rtol=1e-5)


def test_heaps_come_back_sorted_with_their_token_ids(backend):
    W_U = torch.arange(100, dtype=torch.float32)[None, :].flip(1)  # token j has logit 99 - j
    got = reduce_vocab(torch.ones(1, 1), W_U, 4, 8, 32, "torch" if backend == "torch" else "kernel")
    assert got.top_ids[0].tolist() == [0, 1, 2, 3]
    assert got.top_logits[0].tolist() == [99.0, 98.0, 97.0, 96.0]
    assert got.bottom_ids[0].tolist() == [99, 98, 97, 96]
    assert got.bottom_logits[0].tolist() == [0.0, 1.0, 2.0, 3.0]


def test_kernel_builds_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("INTERP_HOME", str(tmp_path))
    first = kernels.build("vocab_reduce")
    assert first.parent == tmp_path / "cache" / "kernels" and first.exists()
    stamp = first.stat().st_mtime_ns
    assert kernels.build("vocab_reduce") == first and first.stat().st_mtime_ns == stamp
    assert kernels.build("vocab_reduce", ("-DINTERP_GENERIC",)) != first  # other flags, other file
    assert not [p for p in first.parent.iterdir() if p.name.startswith(".")]  # no temp files left


def test_without_a_compiler_auto_falls_back_to_torch_and_kernel_says_why(tmp_path, monkeypatch):
    monkeypatch.setenv("INTERP_HOME", str(tmp_path))
    monkeypatch.setenv("CC", "/nonexistent/cc")
    with pytest.raises(kernels.KernelUnavailable, match="/nonexistent/cc"):
        kernels.build("vocab_reduce")
    monkeypatch.setattr(kernels, "vocab_reduce_lib", lambda generic=False: kernels.build("vocab_reduce"))
    kernels.vocab_reduce.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="falls back to torch"):
            assert kernels.vocab_reduce() is None
        torch.manual_seed(0)
        W_U, w = torch.randn(8, 300), torch.randn(5, 8)
        auto = decode_directions(w, W_U, _norm(8), DecodeConfig(top_k=3, variant="raw"))
        _check(auto, reference_decode(w, W_U, _norm(8), "raw", 3))
        with pytest.raises(kernels.KernelUnavailable, match="no C compiler"):
            decode_directions(w, W_U, _norm(8), DecodeConfig(top_k=3, variant="raw", backend="kernel"))
    finally:
        kernels.vocab_reduce.cache_clear()


def test_kernels_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("INTERP_KERNELS", "0")
    with pytest.raises(kernels.KernelUnavailable, match="INTERP_KERNELS=0"):
        kernels.build("vocab_reduce")


def test_unknown_backend_is_refused_with_the_valid_ones():
    with pytest.raises(ValueError, match="'gpu'.*auto, kernel, torch"):
        DecodeConfig(backend="gpu")
