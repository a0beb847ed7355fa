"""The vocabulary reduction is bitwise reproducible: exact ties go to the lower token id, and
the result does not depend on the thread count or on the order in which tiles finish."""

import random
import time

import pytest
import torch

from interp.methods.neurons import vocab_reduction as vr
from interp.methods.neurons.kernels import KernelUnavailable, vocab_reduce_lib


def _backends():
    out = ["torch"]
    try:
        vocab_reduce_lib()
        out.append("kernel")
    except KernelUnavailable as exc:
        out.append(pytest.param("kernel", marks=pytest.mark.skip(reason=f"no kernel: {exc}")))
    return out


def _tied_case():
    """W_U = identity (d = vocab = 64): the logits are the rows themselves, with exact ties."""
    d = 64
    rows = torch.zeros(2, d)
    rows[0, [5, 17, 40, 63]] = 3.0  # four-way tie at the top
    rows[0, [2, 9, 33]] = -2.0  # three-way tie at the bottom
    rows[1] = torch.arange(d, dtype=torch.float32) % 4  # every value 16 times
    return rows, torch.eye(d)


@pytest.mark.parametrize("backend", _backends())
def test_ties_go_to_the_lower_token_id(backend):
    rows, W = _tied_case()
    for block in (8, 16, 64):
        out = vr.reduce_vocab(rows, W, k=3, chunk=2, block=block, backend=backend)
        assert out.top_ids[0].tolist() == [5, 17, 40]
        assert out.top_logits[0].tolist() == [3.0, 3.0, 3.0]
        assert out.bottom_ids[0].tolist() == [2, 9, 33]
        assert out.top_ids[1].tolist() == [3, 7, 11]  # value 3 at ids 3, 7, 11, ...
        # the bottom: value 0 at ids 0, 4, 8 (row 0's zeros: 0, 1, 3 after the -2s)
        assert out.bottom_ids[1].tolist() == [0, 4, 8]


def _random_case():
    g = torch.Generator().manual_seed(0)
    rows = torch.randn(37, 32, generator=g)
    W = torch.randn(32, 1000, generator=g)
    W[:, 700] = W[:, 12]  # exact duplicate columns: tied logits in every row
    W[:, 999] = W[:, 3]
    return rows, W


def _equal(a: vr.VocabReduction, b: vr.VocabReduction) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("backend", _backends())
def test_bitwise_equal_across_threads_and_completion_order(backend, monkeypatch):
    rows, W = _random_case()
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        ref = vr.reduce_vocab(rows, W, k=5, chunk=8, block=64, backend=backend)
        torch.set_num_threads(3)
        assert _equal(ref, vr.reduce_vocab(rows, W, k=5, chunk=8, block=64, backend=backend))
        # shuffled completion: each tile sleeps a random time before it runs
        rng = random.Random(1)
        real = torch.matmul

        def slow_matmul(*args, **kwargs):
            time.sleep(rng.random() * 0.004)
            return real(*args, **kwargs)

        monkeypatch.setattr(vr.torch, "matmul", slow_matmul)
        for workers in (2, 4):
            torch.set_num_threads(workers)
            assert _equal(ref, vr.reduce_vocab(rows, W, k=5, chunk=8, block=64, backend=backend))
    finally:
        torch.set_num_threads(previous)
    # the duplicated token: its twin with the lower id comes first wherever both are kept
    for r in range(rows.shape[0]):
        ids = ref.top_ids[r].tolist()
        if 12 in ids and 700 in ids:
            assert ids.index(12) < ids.index(700)


@pytest.mark.parametrize("backend", _backends())
def test_chunk_of_rows_does_not_change_a_bit(backend):
    rows, W = _random_case()
    a = vr.reduce_vocab(rows, W, k=5, chunk=8, block=64, backend=backend)
    b = vr.reduce_vocab(rows, W, k=5, chunk=37, block=64, backend=backend)
    assert torch.equal(a.top_ids, b.top_ids) and torch.equal(a.bottom_ids, b.bottom_ids)
