"""LM-head neuron decoding: what each MLP neuron reads and writes, in vocabulary space.

Davies et al., "Decoding specialised feature neurons in LLMs with the final projection
layer" (building on the TARS knowledge-removal method): weights that act directly on the
residual stream can be read through the unembedding, so an MLP neuron's weight vectors
decode into token probabilities without running the model on any data.

Algorithm (row-vector convention of `interp.models.weights`, ``y = x @ W``):

1. Directions of neuron i of layer l, each a vector in d_model:
   - ``up``   = ``W_in[:, i]``   the direction the neuron reads (the linear/up projection);
   - ``gate`` = ``W_gate[:, i]`` the gate it reads (gated MLPs only: Llama, SmolLM2);
   - ``down`` = ``W_out[i]``     the direction it writes into the residual stream.
2. Decode ``w`` through the final norm and the unembedding:
   - ``folded`` (the default): ``logits = (g (.) N(w)) @ W_U`` where ``N`` is the final
     norm's normalisation (LayerNorm: centre, i.e. the mean projection ``P = I - 11^T/d``,
     then scale to unit RMS; RMSNorm: scale to unit RMS) and ``g`` its gain. This is exactly
     what the model does to a residual stream that equals ``w`` (the norm's bias and
     ``b_U`` are left out: they are the same for every neuron). It is the default because
     the gain re-weights residual dimensions by up to an order of magnitude (outlier
     dimensions), so ignoring it decodes a direction the model never reads that way; and
     because ``N`` makes the logits independent of the weight's scale, probabilities and
     specialisation scores are comparable across neurons and layers.
   - ``raw``: ``logits = w @ W_U``, the paper's formula on the bare weight (no gain, no
     normalisation): its ranking ignores the gain and its softmax temperature is the
     weight's norm.
3. Keep, per neuron, the top-k tokens (largest logits) with ``p = softmax(logits)`` and the
   bottom-k tokens (smallest logits) with ``p = softmax(-logits)``. The bottom end matters:
   in a gated MLP ``act(x W_gate) * (x W_in)`` the up factor has either sign, so a neuron
   fires negatively about as often as positively and then writes ``-w``; since ``N`` is
   odd, ``-w`` decodes to ``-logits`` and its tokens are the bottom end.
4. Specialisation of each end: ``max_prob = max softmax`` and ``entropy = H(softmax)`` in
   nats (low entropy / high max-prob = a neuron about one token or concept).
5. A whole layer is one product ``(d_mlp, d_model) @ (d_model, d_vocab)``; it is computed in
   blocks (``chunk_size`` neurons x ``vocab_block`` tokens) and each block is reduced while
   it is still in cache, so memory holds one block of logits and no more (SmolLM2's
   full-vocabulary logits of all neurons would be 9 GB). Per block b and end, with the
   block maximum ``m_b`` (from its top-k): ``e = exp(l - m_b)``, ``Z_b = sum e``,
   ``S_b = e . (l - m_b)``, plus the block's top-k candidates. Merging the blocks:
   ``m = max_b m_b``, ``Z = sum_b Z_b exp(m_b - m)``,
   ``S = sum_b exp(m_b - m) (S_b + (m_b - m) Z_b)``; ``lse = m + log Z``,
   ``max_prob = 1/Z``, ``entropy = log Z - S/Z`` (every term of S has one sign: no
   cancellation); the top-k of the candidates is the top-k.

FLOPs per direction of a whole model: ``2 n_layers d_mlp d_model d_vocab`` (SmolLM2-135M
2.6e12): the job is GEMM-bound; see ``benchmarks/bench_neuron_map.py``.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch

DIRECTIONS = ("up", "gate", "down")
VARIANTS = ("folded", "raw")


@dataclass(frozen=True)
class DecodeConfig:
    """How to decode neuron directions."""

    top_k: int = 20
    """Tokens kept at each end (top and bottom)."""
    variant: str = "folded"
    """'folded' (final norm incl. gain, the default) or 'raw' (``w @ W_U``); see the module doc."""
    chunk_size: int = 256
    """Neurons decoded per GEMM."""
    vocab_block: int = 4096
    """Tokens per GEMM. Working set per thread (chunks run on ``torch.get_num_threads()``
    threads): three (chunk_size, vocab_block) fp32 buffers plus the top/bottom-k candidates,
    ``12 chunk vocab_block + 96 chunk (d_vocab / vocab_block) top_k 8`` bytes (~36 MB)."""

    def __post_init__(self) -> None:
        if not isinstance(self.top_k, int) or self.top_k < 1:
            raise ValueError(f"top_k must be a positive integer, got {self.top_k!r}")
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown decoding variant {self.variant!r}; valid: {', '.join(VARIANTS)}")
        for name in ("chunk_size", "vocab_block"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class DecodedDirections:
    """Top/bottom tokens and specialisation of n decoded directions."""

    top_ids: torch.Tensor
    """(n, k) int64 token ids, largest logit first."""
    top_logits: torch.Tensor
    """(n, k) their logits."""
    top_probs: torch.Tensor
    """(n, k) their softmax(logits) probabilities."""
    bottom_ids: torch.Tensor
    """(n, k) token ids, smallest logit first."""
    bottom_logits: torch.Tensor
    """(n, k) their logits (negative end: what ``-w`` promotes)."""
    bottom_probs: torch.Tensor
    """(n, k) their softmax(-logits) probabilities."""
    max_prob: torch.Tensor
    """(n,) max softmax(logits) probability."""
    entropy: torch.Tensor
    """(n,) entropy of softmax(logits), nats."""
    max_prob_neg: torch.Tensor
    """(n,) max softmax(-logits) probability."""
    entropy_neg: torch.Tensor
    """(n,) entropy of softmax(-logits), nats."""

    def __len__(self) -> int:
        return self.top_ids.shape[0]


def neuron_directions(weights, layer: int, direction: str) -> torch.Tensor:
    """(d_mlp, d_model) row i = the `direction` vector of neuron i (`weights`: ModelWeights)."""
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown neuron direction {direction!r}; valid: {', '.join(DIRECTIONS)}")
    mlp = weights.layer(layer).mlp
    if direction == "down":
        return mlp.W_out.float().contiguous()
    if direction == "gate":
        if mlp.W_gate is None:
            raise ValueError("direction 'gate' needs a gated MLP (Llama-style); this model's MLP has no gate; "
                             "valid here: up, down")
        return mlp.W_gate.T.float().contiguous()
    return mlp.W_in.T.float().contiguous()


def available_directions(gated: bool) -> tuple[str, ...]:
    """The directions a model has: all three for gated MLPs, up and down otherwise."""
    return DIRECTIONS if gated else ("up", "down")


def prepare_directions(w: torch.Tensor, final_norm, variant: str) -> torch.Tensor:
    """(n, d_model) vectors whose product with W_U gives the decoded logits (step 2)."""
    if variant == "raw":
        return w
    if variant != "folded":
        raise ValueError(f"unknown decoding variant {variant!r}; valid: {', '.join(VARIANTS)}")
    # The norm's eps is left out: it is negligible against a weight vector's RMS, and it
    # would make the decoding depend on the weight's scale.
    if final_norm.kind == "layer":
        w = w - w.mean(-1, keepdim=True)
    rms = w.pow(2).mean(-1, keepdim=True).sqrt().clamp_min(1e-30)
    return w / rms * final_norm.gain.to(w.dtype)


def decode_directions(w: torch.Tensor, W_U: torch.Tensor, final_norm, config: DecodeConfig = DecodeConfig()
                      ) -> DecodedDirections:
    """Decode n directions (n, d_model) through the LM head (steps 2-5), block by block.

    `W_U`: (d_model, d_vocab) (a transposed view is fine: BLAS reads it as is);
    `final_norm`: NormWeights of the final norm (unused for 'raw').
    """
    if w.ndim != 2 or w.shape[1] != W_U.shape[0]:
        raise ValueError(f"directions must be (n, d_model={W_U.shape[0]}), got {tuple(w.shape)}")
    if config.top_k > W_U.shape[1]:
        raise ValueError(f"top_k {config.top_k} exceeds the vocabulary size {W_U.shape[1]}")
    W_U = W_U if W_U.dtype == torch.float32 else W_U.float()
    vectors = prepare_directions(w.float(), final_norm, config.variant)
    chunk = min(config.chunk_size, max(1, vectors.shape[0]))
    block = min(config.vocab_block, W_U.shape[1])
    starts = range(0, vectors.shape[0], chunk)
    workers = min(torch.get_num_threads(), len(starts))
    local = threading.local()

    def run(start: int) -> tuple[torch.Tensor, ...]:
        if not hasattr(local, "bufs"):  # three (chunk, block) buffers per worker: logits and scratch
            local.bufs = tuple(torch.empty(chunk, block, device=vectors.device) for _ in range(3))
        return _decode_chunk(vectors[start:start + chunk], W_U, config.top_k, local.bufs)

    if workers <= 1 or vectors.device.type != "cpu":
        parts = [run(start) for start in starts]
    else:
        # Chunks run concurrently on single-threaded ops: the many small reductions then need
        # no barrier between intra-op threads, which costs dearly on a loaded machine.
        previous = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with ThreadPoolExecutor(workers) as pool:
                parts = list(pool.map(run, starts))
        finally:
            torch.set_num_threads(previous)
    return DecodedDirections(*(torch.cat(cols) for cols in zip(*parts)))


def _decode_chunk(rows: torch.Tensor, W_U: torch.Tensor, k: int, bufs) -> tuple[torch.Tensor, ...]:
    """Top/bottom-k and softmax statistics of (c, d_model) rows against the whole vocabulary.

    The vocabulary is walked in blocks small enough to stay in cache; each block leaves
    top/bottom-k candidates and (max, Z, S) per end, merged once at the end (step 5).
    """
    c, block = rows.shape[0], bufs[0].shape[1]
    cands, stats = [], []
    for v0 in range(0, W_U.shape[1], block):
        cols = W_U[:, v0:v0 + block]
        logits = torch.matmul(rows, cols, out=bufs[0][:c, :cols.shape[1]])
        top, bottom, mx, mn = _block_candidates(logits, min(k, cols.shape[1]), v0)
        cands.append((*top, *bottom))
        stats.append(_block_stats(logits, bufs[1][:c, :cols.shape[1]], bufs[2][:c, :cols.shape[1]], mx, mn))
    top_v, top_i, bot_v, bot_i = (torch.cat(x, dim=1) for x in zip(*cands))
    top_logits, pick = top_v.topk(k, dim=1)
    top_ids = top_i.gather(1, pick)
    bottom_logits, pick = bot_v.topk(k, dim=1, largest=False)
    bottom_ids = bot_i.gather(1, pick)
    mx, z, s, mn, z_neg, s_neg = (torch.stack(x, dim=1) for x in zip(*stats))  # each (c, n_blocks)
    z, s = _merge(mx - top_logits[:, :1], z, s)
    z_neg, s_neg = _merge(bottom_logits[:, :1] - mn, z_neg, s_neg)
    log_z, log_z_neg = z.log(), z_neg.log()
    return (top_ids, top_logits, (top_logits - top_logits[:, :1] - log_z[:, None]).exp(),
            bottom_ids, bottom_logits, (bottom_logits[:, :1] - bottom_logits - log_z_neg[:, None]).exp(),
            1.0 / z, log_z - s / z, 1.0 / z_neg, log_z_neg - s_neg / z_neg)


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
    group whose max is at least the k-th largest value, and at most k groups have that.
    """
    c, w = logits.shape
    if w % _GROUP or w // _GROUP < k:
        top_v, top_i = logits.topk(k, dim=1)
        bot_v, bot_i = logits.topk(k, dim=1, largest=False)
        return (top_v, top_i + offset), (bot_v, bot_i + offset), top_v[:, 0], bot_v[:, 0]
    groups = logits.view(c, w // _GROUP, _GROUP)  # (c, n_groups, group)
    ends = []
    for largest, group_best in ((True, groups.amax(-1)), (False, groups.amin(-1))):
        best, gi = group_best.topk(k, dim=1, largest=largest)  # (c, k) groups
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


def decode_neurons(adapter, layer: int, direction: str = "down", config: DecodeConfig = DecodeConfig()
                   ) -> DecodedDirections:
    """Decode every neuron of `layer` of a loaded model (`adapter`: ModelAdapter)."""
    layer = adapter.check_layer(layer)
    w = neuron_directions(adapter.weights, layer, direction)
    return decode_directions(w, adapter.weights.W_U, adapter.weights.final_norm, config)


def decode_one(adapter, layer: int, index: int, direction: str = "down",
               config: DecodeConfig = DecodeConfig()) -> DecodedDirections:
    """Decode a single neuron (a length-1 result): for notebooks and per-neuron checks."""
    layer = adapter.check_layer(layer)
    adapter.check_index(adapter.sites(layer).mlp_hidden, index)
    w = neuron_directions(adapter.weights, layer, direction)[index:index + 1]
    return decode_directions(w, adapter.weights.W_U, adapter.weights.final_norm, config)


def reference_decode(w: torch.Tensor, W_U: torch.Tensor, final_norm, variant: str, k: int
                     ) -> DecodedDirections:
    """Unchunked float64 decoding via full softmax: the check for `decode_directions` (small n)."""
    vectors = prepare_directions(w.double(), final_norm, variant)
    logits = vectors @ W_U.double()
    p, p_neg = logits.softmax(-1), (-logits).softmax(-1)
    top_logits, top_ids = logits.topk(k, dim=1)
    bottom_logits, bottom_ids = logits.topk(k, dim=1, largest=False)
    ent = lambda q: -(q * q.clamp_min(1e-300).log()).sum(-1)  # noqa: E731
    return DecodedDirections(top_ids, top_logits, p.gather(1, top_ids), bottom_ids, bottom_logits,
                             p_neg.gather(1, bottom_ids), p.max(-1).values, ent(p), p_neg.max(-1).values, ent(p_neg))

