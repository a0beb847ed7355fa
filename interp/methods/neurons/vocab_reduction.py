"""Rows against the whole vocabulary, block by block: top/bottom-k and softmax statistics.

The engine of `interp.methods.neurons.decoding` (step 5 there). For n rows ``(n, d_model)`` and
``W_U (d_model, d_vocab)`` it returns, per row, the k largest and k smallest logits with their
token ids, and ``(M, Z, S)`` of ``softmax(l)`` and of ``softmax(-l)``: the max, ``Z = sum
exp(l - M)`` and ``S = sum exp(l - M) (l - M)``, from which max-prob ``1/Z``, entropy
``log Z - S/Z`` and the probabilities of the kept tokens follow.

The rows go in chunks of ``chunk`` and the vocabulary in blocks of ``block`` tokens: one GEMM
per (chunk, block), reduced while it is in cache, so memory holds one block of logits per
thread. Work runs on ``torch.get_num_threads()`` Python threads with single-threaded ops (the
kernel's ctypes calls release the GIL) as tiles of a chunk x one of `SHARES` fixed shares of
the vocabulary. The tiles' partial results of a chunk are merged per row at the end, in share
order (top-k of the kept tokens; the sums re-based on the overall max), and ties between equal
logits go to the lower token id: the result is bitwise the same with any thread count and
any completion order.

Two implementations of the per-block reduction, same results up to float rounding:

- ``kernel``: `interp/methods/neurons/kernels/vocab_reduce.c`, one fused pass for the candidates and
  one for the sums (its header says why it is written by hand);
- ``torch``: torch ops only - a two-stage top-k (the max of each group of 8 tokens, then the
  members of the k best groups) and the softmax sums relative to the block's max, merged
  across blocks: ``Z = sum_b Z_b exp(m_b - m)``, ``S = sum_b exp(m_b - m) (S_b + (m_b - m) Z_b)``.

``auto`` (the default) takes the kernel where it builds and falls back to torch.
"""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import torch

BACKENDS = ("auto", "kernel", "torch")


class VocabReduction(NamedTuple):
    """Per row (n rows, k kept tokens per end)."""

    top_ids: torch.Tensor
    """(n, k) int64, largest logit first."""
    top_logits: torch.Tensor
    """(n, k)."""
    bottom_ids: torch.Tensor
    """(n, k) int64, smallest logit first."""
    bottom_logits: torch.Tensor
    """(n, k)."""
    stats: torch.Tensor
    """(n, 6): M, Z, S of softmax(l), then of softmax(-l) (whose max is -min l)."""


def resolve_backend(backend: str):
    """The kernel library for 'kernel' / 'auto' (None for 'torch', or 'auto' without a compiler)."""
    from interp.methods.neurons import kernels

    if backend not in BACKENDS:
        raise ValueError(f"unknown reduction backend {backend!r}; valid: {', '.join(BACKENDS)}")
    if backend == "torch":
        return None
    if backend == "kernel":
        return kernels.vocab_reduce_lib()  # raises KernelUnavailable with the reason
    return kernels.vocab_reduce()


def reduce_vocab(vectors: torch.Tensor, W_U: torch.Tensor, k: int, chunk: int, block: int,
                 backend: str = "auto") -> VocabReduction:
    """Top/bottom-k and softmax statistics of ``vectors @ W_U`` (module docstring).

    `vectors`: (n, d_model) float32; `W_U`: (d_model, d_vocab) float32 (a transposed view is
    fine: BLAS reads it as is).
    """
    lib = resolve_backend(backend)
    on_cpu = vectors.device.type == "cpu"
    chunk = min(chunk, max(1, vectors.shape[0]))
    block = min(block, W_U.shape[1])
    if lib is not None and on_cpu:  # the kernel reads host memory
        return _reduce_kernel(lib, vectors, W_U, k, chunk, block)
    return _reduce_torch(vectors, W_U, k, min(chunk, TORCH_CHUNK), block, torch.get_num_threads() if on_cpu else 1)


def _parallel(workers: int, fn, items) -> list:
    """`fn` over `items` on `workers` threads running single-threaded torch ops (in order)."""
    if min(workers, len(items)) <= 1:
        return [fn(item) for item in items]
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(min(workers, len(items))) as pool:
            return list(pool.map(fn, items))
    finally:
        torch.set_num_threads(previous)


def _select(values: torch.Tensor, ids: torch.Tensor, k: int, largest: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The k best (values, ids) per row, ties broken by token id (lower id first at both ends).

    Two stable sorts - by id, then by value - so the order never depends on where a candidate
    sat in the concatenation (which tile, which thread)."""
    ids_sorted, order = ids.sort(dim=1, stable=True)
    vals = values.gather(1, order)
    vals, pick = vals.sort(dim=1, descending=largest, stable=True)
    return vals[:, :k], ids_sorted.gather(1, pick)[:, :k]


def _merge_parts(parts: list[VocabReduction], k: int) -> VocabReduction:
    """One chunk's results over its vocabulary shares -> the chunk's result (kept tokens sorted).

    `parts` come in share order (by vocabulary position, never by completion), so the re-based
    sums add up in one fixed order and the result is bitwise the same on every run."""
    top_logits, top_ids = _select(torch.cat([p.top_logits for p in parts], 1),
                                  torch.cat([p.top_ids for p in parts], 1), k, True)
    bottom_logits, bottom_ids = _select(torch.cat([p.bottom_logits for p in parts], 1),
                                        torch.cat([p.bottom_ids for p in parts], 1), k, False)
    st = torch.stack([p.stats for p in parts], dim=2)  # (c, 6, shares)
    ends = []
    for o in (0, 3):  # re-base each share's (Z, S) on the overall max
        m = st[:, o].amax(1)
        ends += [m, *_merge(st[:, o] - m[:, None], st[:, o + 1], st[:, o + 2])]
    return VocabReduction(top_ids, top_logits, bottom_ids, bottom_logits, torch.stack(ends, dim=1))


SHARES = 8
"""Vocabulary shares per chunk of rows (a fixed number, not the thread count, so that the
summation order - and so every bit of the result - is the same with any number of threads)."""


def _share_edges(d_vocab: int, block: int) -> list[int]:
    """Token boundaries of the chunk's vocabulary shares (whole blocks each)."""
    n_blocks = -(-d_vocab // block)
    shares = min(SHARES, n_blocks)
    return [min(d_vocab, (n_blocks * i // shares) * block) for i in range(shares + 1)]


# ----------------------------------------------------------------------------- kernel
_POOLS: dict[int, ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()
_BUFFERS = threading.local()


def _pool(workers: int) -> ThreadPoolExecutor:
    """A long-lived pool of `workers` threads whose BLAS calls are single-threaded.

    torch.set_num_threads is per thread for BLAS (OpenMP/MKL thread settings): each worker sets
    its own, or every GEMM it runs would start a team of all cores. Kept across calls, with
    `_block_buffer`, so that a layer does not pay for new threads and fresh pages of memory.
    """
    with _POOLS_LOCK:
        if workers not in _POOLS:
            _POOLS[workers] = ThreadPoolExecutor(workers, thread_name_prefix="vocab-reduce",
                                                 initializer=torch.set_num_threads, initargs=(1,))
        return _POOLS[workers]


def _block_buffer(rows: int, cols: int) -> torch.Tensor:
    """This thread's (rows, cols) fp32 buffer for a block of logits (reused; one per thread)."""
    buf = getattr(_BUFFERS, "block", None)
    if buf is None or buf.shape[0] < rows or buf.shape[1] != cols:
        buf = _BUFFERS.block = torch.empty(rows, cols)
    return buf


def _reduce_kernel(lib, vectors: torch.Tensor, W_U: torch.Tensor, k: int, chunk: int, block: int
                   ) -> VocabReduction:
    """Tiles - a chunk of rows x one fixed share of the vocabulary, its blocks in order: a
    single-threaded GEMM per block, then the kernel on it - taken by ``torch.get_num_threads()``
    threads as they free up. Each tile keeps its own heaps and sums; a chunk's tiles are merged
    in share order (not in the order they finish), so the result is bitwise reproducible."""
    workers = torch.get_num_threads()
    n = vectors.shape[0]
    edges = _share_edges(W_U.shape[1], block)
    tiles = [(r0, v0, v1) for r0 in range(0, n, chunk) for v0, v1 in zip(edges, edges[1:])]

    def run(tile: tuple[int, int, int]) -> VocabReduction:
        r0, v0, v1 = tile
        rows = vectors[r0:r0 + chunk]
        c = rows.shape[0]
        buf = _block_buffer(chunk, block)
        top = torch.full((c, k), -math.inf)  # min-heaps, filled by the kernel
        top_id = torch.full((c, k), -1, dtype=torch.int64)
        bot, bot_id = top.clone(), top_id.clone()  # bottom end: a heap of -l
        stats = torch.tensor([-math.inf, 0.0, 0.0, -math.inf, 0.0, 0.0]).repeat(c, 1)
        for b0 in range(v0, v1, block):
            cols = W_U[:, b0:min(b0 + block, v1)]
            logits = torch.matmul(rows, cols, out=buf[:c, :cols.shape[1]])  # (c, width), row stride = block
            lib.reduce_block(logits.data_ptr(), c, logits.shape[1], logits.stride(0), b0, k, top.data_ptr(),
                             top_id.data_ptr(), bot.data_ptr(), bot_id.data_ptr(), stats.data_ptr())
        return VocabReduction(top_id, top, bot_id, -bot, stats)

    parts = [run(t) for t in tiles] if workers <= 1 else list(_pool(workers).map(run, tiles))
    shares = len(edges) - 1
    merged = [_merge_parts(parts[i:i + shares], k) for i in range(0, len(parts), shares)]  # tile order
    return VocabReduction(*(torch.cat(cols) for cols in zip(*merged)))


# ----------------------------------------------------------------------------- torch
TORCH_CHUNK = 256
"""Rows per tile on the torch path (it holds three blocks of logits per thread)."""


def _reduce_torch(vectors: torch.Tensor, W_U: torch.Tensor, k: int, chunk: int, block: int, workers: int
                  ) -> VocabReduction:
    """Tiles - a chunk of rows x one thread's share of the vocabulary (whole blocks) - on
    `workers` threads of single-threaded ops (no barrier between intra-op threads for each of
    the many small ops, which costs dearly on a loaded machine), merged per chunk."""
    edges = _share_edges(W_U.shape[1], block)
    shares = len(edges) - 1
    tiles = [(r0, v0, v1) for r0 in range(0, vectors.shape[0], chunk) for v0, v1 in zip(edges, edges[1:])]
    local = threading.local()

    def run(tile: tuple[int, int, int]) -> VocabReduction:
        r0, v0, v1 = tile
        if not hasattr(local, "bufs"):  # per worker: the logits block and two scratch blocks
            local.bufs = tuple(torch.empty(chunk, block, device=vectors.device) for _ in range(3))
        return _tile_torch(vectors[r0:r0 + chunk], W_U, v0, v1, k, local.bufs)

    parts = _parallel(workers, run, tiles)
    merged = [_merge_parts(parts[i:i + shares], k) for i in range(0, len(parts), shares)]  # per chunk of rows
    return VocabReduction(*(torch.cat(cols) for cols in zip(*merged)))


def _tile_torch(rows: torch.Tensor, W_U: torch.Tensor, v0: int, v1: int, k: int, bufs) -> VocabReduction:
    c, block = rows.shape[0], bufs[0].shape[1]
    k = min(k, v1 - v0)
    cands, stats = [], []
    for b0 in range(v0, v1, block):
        cols = W_U[:, b0:min(b0 + block, v1)]
        logits = torch.matmul(rows, cols, out=bufs[0][:c, :cols.shape[1]])
        top, bottom, mx, mn = _block_candidates(logits, min(k, cols.shape[1]), b0)
        cands.append((*top, *bottom))
        stats.append(_block_stats(logits, bufs[1][:c, :cols.shape[1]], bufs[2][:c, :cols.shape[1]], mx, mn))
    top_v, top_i, bot_v, bot_i = (torch.cat(x, dim=1) for x in zip(*cands))
    top_logits, top_ids = _select(top_v, top_i, k, True)
    bottom_logits, bottom_ids = _select(bot_v, bot_i, k, False)
    mx, z, s, mn, z_neg, s_neg = (torch.stack(x, dim=1) for x in zip(*stats))  # each (c, n_blocks)
    z, s = _merge(mx - top_logits[:, :1], z, s)
    z_neg, s_neg = _merge(bottom_logits[:, :1] - mn, z_neg, s_neg)
    merged = torch.stack([top_logits[:, 0], z, s, -bottom_logits[:, 0], z_neg, s_neg], dim=1)
    return VocabReduction(top_ids, top_logits, bottom_ids, bottom_logits, merged)


def _merge(shift: torch.Tensor, z: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Blocks' (Z_b, S_b), each relative to its own max, re-based on the row max (shift_b <= 0)."""
    w = shift.exp()
    return (w * z).sum(1), (w * (s + shift * z)).sum(1)


_GROUP = 8
"""Tokens per group in the two-stage top-k (see `_block_candidates`)."""


def _block_candidates(logits: torch.Tensor, k: int, offset: int):
    """Top-k and bottom-k candidates of one (c, w) block, and its row max and min.

    Two stages instead of a top-k over every logit (torch's CPU top-k costs ~25 us a row):
    the max of each group of `_GROUP` consecutive tokens (one vectorised pass), then the
    elements of the k groups with the largest maxima. Exact: a token in the top-k lies in a
    group whose max is at least the k-th largest value, and at most k groups have that; at a
    tie between group maxima the lower group wins, so the lower token ids are the ones kept.
    """
    c, w = logits.shape
    if w % _GROUP or w // _GROUP < k:
        ids = torch.arange(offset, offset + w, device=logits.device).expand(c, w)
        top_v, top_i = _select(logits, ids, k, True)
        bot_v, bot_i = _select(logits, ids, k, False)
        return (top_v, top_i), (bot_v, bot_i), top_v[:, 0], bot_v[:, 0]
    groups = logits.view(c, w // _GROUP, _GROUP)  # (c, n_groups, group)
    group_ids = torch.arange(w // _GROUP, device=logits.device).expand(c, -1)
    ends = []
    for largest, group_best in ((True, groups.amax(-1)), (False, groups.amin(-1))):
        best, gi = _select(group_best, group_ids, k, largest)  # (c, k) groups; ties: lower group first
        values = groups.gather(1, gi[:, :, None].expand(-1, -1, _GROUP)).view(c, k * _GROUP)
        ids = (gi[:, :, None] * _GROUP + torch.arange(_GROUP, device=gi.device)).view(c, k * _GROUP) + offset
        ends.append(((values, ids), best[:, 0]))
    (top, mx), (bottom, mn) = ends
    return top, bottom, mx, mn


_RANGE = 30.0
"""Row logit range below which exp(min - l) is taken as exp(min - max) / exp(l - max) (no overflow)."""


def _block_stats(logits: torch.Tensor, x: torch.Tensor, e: torch.Tensor, mx: torch.Tensor, mn: torch.Tensor
                 ) -> tuple[torch.Tensor, ...]:
    """Per row of one block: max, Z, S of softmax(l) and min, Z, S of softmax(-l).

    ``Z = sum exp(l - max)`` and ``S = sum exp(l - max) (l - max)`` (S <= 0, relative to the
    max so that the entropy ``log Z - S/Z`` does not cancel); likewise for -l with the min.
    `logits` is overwritten (its candidates are taken already); `x`, `e` are scratch buffers.
    """
    torch.sub(logits, mx[:, None], out=x)
    torch.exp(x, out=e)
    z = e.sum(1)
    if float((mx - mn).max()) < _RANGE:
        # One exp pass for both ends: exp(mn - l) = exp(mn - mx) / exp(l - mx), all finite here.
        e_neg = torch.reciprocal(e, out=logits)
        scale = (mn - mx).exp()
        s = e.mul_(x).sum(1)
        z_neg = e_neg.sum(1) * scale
        s_neg = (mn - mx) * z_neg - e_neg.mul_(x).sum(1) * scale  # (mn - l) = (mn - mx) - x
        return mx, z, s, mn, z_neg, s_neg
    s = e.mul_(x).sum(1)
    torch.sub(mn[:, None], logits, out=x)  # mn - l <= 0
    torch.exp(x, out=e)
    z_neg = e.sum(1)
    s_neg = e.mul_(x).sum(1)
    return mx, z, s, mn, z_neg, s_neg
