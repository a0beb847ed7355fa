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
4. Specialisation of each end, two scores:

   - ``z`` (the ranking score; the store's ``logit_z``): the z-score of the top logit over
     the whole vocabulary, ``z = (max_t l_t - mean_t l_t) / std_t l_t`` (population std over
     all ``d_vocab`` tokens), and for the bottom end ``z_neg = (mean_t l_t - min_t l_t) /
     std_t l_t``. Its meaning: by how many standard deviations the neuron's best token stands
     out from the spread of its effect on every token - the signal-to-noise ratio of the
     neuron's direct vocabulary effect. It is temperature-free: unchanged by any positive
     scaling or shift of the logits, so the ~35-nat scale that unit-RMS normalisation and the
     final gain give the folded logits (which makes the softmax of nearly any direction
     one-hot, see ``max_prob``) does not enter. Range ``[0, sqrt(d_vocab - 1)]``:
     Samuelson's inequality bounds any value of n numbers by ``sqrt(n - 1)`` population
     standard deviations from their mean, reached by a one-hot row; 0 for a constant row
     (std 0). Values are clamped into that range (float rounding of the top logit). Being
     continuous in the direction, z ties only for directions whose logit rows are positive
     affine images of one another (same top token, same z: a true tie); rankings break such
     ties by ``max_prob``, then by layer and index.
   - ``max_prob = max softmax`` and ``entropy = H(softmax)`` in nats (kept under their
     names; low entropy / high max-prob = a neuron about one token). Clamped into ``[0, 1]``
     and ``[0, log d_vocab]``: the kernel's fast exp can put ``1/Z`` a few 1e-6 above 1.
     Saturates: on the folded scale thousands of SmolLM2 neurons have max-prob > 0.99.

   The mean and std come in closed form from the unembedding's column moments, since each
   logit is linear in the direction: ``mean_t l_t = v . u_bar`` and ``var_t l_t = v^T C v``
   with ``u_bar`` the mean column of ``W_U`` and ``C = (1/d_vocab) sum_t (u_t - u_bar)(u_t -
   u_bar)^T`` (`vocab_moments`: one float64 ``(d_model, d_model)`` matrix per model,
   ``2 d_model^2 d_vocab`` FLOPs, ~0.6 s for SmolLM2, cached per unembedding). Exact, with no
   float32 sum of squares over the vocabulary (whose ``E[l^2] - E[l]^2`` would cancel), and
   the same for both reduction backends, which therefore agree on z up to the rounding of
   the top logit.
5. A whole layer is one product ``(d_mlp, d_model) @ (d_model, d_vocab)``; it is computed in
   blocks (``chunk_size`` neurons x ``vocab_block`` tokens) and each block is reduced while
   it is still in cache, so memory holds one block of logits per thread and no more
   (SmolLM2's full-vocabulary logits of all neurons would be 9 GB): see
   `interp.methods.neurons.vocab_reduction`. Per row it yields the top/bottom-k and, per end, the
   max ``m``, ``Z = sum exp(l - m)`` and ``S = sum exp(l - m) (l - m)``; then
   ``p_i = exp(l_i - m - log Z)``, ``max_prob = 1/Z``, ``entropy = log Z - S/Z`` (every term
   of S has one sign: no cancellation).

FLOPs per direction of a whole model: ``2 n_layers d_mlp d_model d_vocab`` (SmolLM2-135M
2.6e12): the job is GEMM-bound; see ``benchmarks/bench_neuron_map.py``.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, fields
from typing import NamedTuple

import torch

from interp.methods.neurons.vocab_reduction import BACKENDS, reduce_vocab

DIRECTIONS = ("up", "gate", "down")
VARIANTS = ("folded", "raw")


@dataclass(frozen=True)
class DecodeConfig:
    """How to decode neuron directions."""

    top_k: int = 20
    """Tokens kept at each end (top and bottom)."""
    variant: str = "folded"
    """'folded' (final norm incl. gain, the default) or 'raw' (``w @ W_U``); see the module doc."""
    chunk_size: int = 1536
    """Neurons per GEMM (a whole layer of SmolLM2, half of GPT-2's: no remainder chunk, whose
    smaller GEMMs run slower: on SmolLM2, 2048 x 4096 tiles, with a 512-row remainder per three
    layers, decoded 4% slower than 1536 x 3072; `benchmarks/bench_vocab_tiles.py`)."""
    vocab_block: int = 3072
    """Tokens per GEMM. Working set per thread (``torch.get_num_threads()`` of them): one
    ``(min(chunk_size, n), vocab_block)`` fp32 block of logits, ``4 chunk vocab_block`` bytes
    (18 MiB at the defaults), plus the kept tokens and sums of a chunk; the
    torch backend instead holds three (256, vocab_block) blocks per thread (12 MiB)."""
    backend: str = "auto"
    """Block reduction: 'kernel' (fused C, `interp.methods.neurons.kernels`), 'torch', or 'auto' (the
    kernel where a C compiler builds it, else torch); results agree up to float rounding."""

    def __post_init__(self) -> None:
        if not isinstance(self.top_k, int) or self.top_k < 1:
            raise ValueError(f"top_k must be a positive integer, got {self.top_k!r}")
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown decoding variant {self.variant!r}; valid: {', '.join(VARIANTS)}")
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown reduction backend {self.backend!r}; valid: {', '.join(BACKENDS)}")
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
    logit_mean: torch.Tensor
    """(n,) float64 mean of the n-th row of logits over the vocabulary."""
    logit_std: torch.Tensor
    """(n,) float64 population standard deviation of that row."""
    z: torch.Tensor
    """(n,) float64 z-score of the top logit, ``(max - mean) / std`` in ``[0, sqrt(d_vocab - 1)]``."""
    z_neg: torch.Tensor
    """(n,) float64 z-score of the bottom logit, ``(mean - min) / std`` (same range)."""

    def __len__(self) -> int:
        return self.top_ids.shape[0]

    def rows(self, start: int, stop: int) -> "DecodedDirections":
        """The directions start..stop-1 (views)."""
        return DecodedDirections(*(getattr(self, f.name)[start:stop] for f in fields(self)))


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


class VocabMoments(NamedTuple):
    """First and second moments of the unembedding's columns (step 4): per-row logit mean/std."""

    mean: torch.Tensor
    """(d_model,) float64 mean column ``u_bar`` of W_U."""
    cov: torch.Tensor
    """(d_model, d_model) float64 ``C = (1/d_vocab) sum_t (u_t - u_bar)(u_t - u_bar)^T``."""
    d_vocab: int


_MOMENTS_BLOCK = 8192
"""Vocabulary columns per float64 block in `vocab_moments` (38 MiB for SmolLM2's d_model)."""
_MOMENTS: OrderedDict[tuple, tuple[torch.Tensor, VocabMoments]] = OrderedDict()
_MOMENTS_KEPT = 2
"""Unembeddings whose moments are cached (most recently used)."""
_MOMENTS_LOCK = threading.Lock()


def _memory_key(t: torch.Tensor) -> tuple:
    # Views of one weight (``weights.W_U`` is a fresh ``detach()`` each time) share memory and
    # the version counter; the cache holds the tensor, so its memory cannot be reused meanwhile.
    return (t.device, t.dtype, t.data_ptr(), tuple(t.shape), t.stride(), t._version)


def vocab_moments(W_U: torch.Tensor) -> VocabMoments:
    """`VocabMoments` of a (d_model, d_vocab) unembedding, in float64 blocks of columns.

    Cached for the last `_MOMENTS_KEPT` unembeddings (keyed by their memory and version, so
    a weight modified in place is recomputed), so that decoding a model's layers in several
    calls computes it once.
    """
    key = _memory_key(W_U)
    with _MOMENTS_LOCK:
        if key in _MOMENTS:
            _MOMENTS.move_to_end(key)
            return _MOMENTS[key][1]
    d_vocab = W_U.shape[1]
    mean = W_U.sum(1, dtype=torch.float64) / d_vocab
    cov = torch.zeros(W_U.shape[0], W_U.shape[0], dtype=torch.float64, device=W_U.device)
    for b0 in range(0, d_vocab, _MOMENTS_BLOCK):
        centred = W_U[:, b0:b0 + _MOMENTS_BLOCK].double() - mean[:, None]  # (d_model, block)
        cov.addmm_(centred, centred.T)
    moments = VocabMoments(mean, cov / d_vocab, d_vocab)
    with _MOMENTS_LOCK:
        _MOMENTS[key] = (W_U, moments)
        while len(_MOMENTS) > _MOMENTS_KEPT:
            _MOMENTS.popitem(last=False)
    return moments


def logit_z(vectors: torch.Tensor, top: torch.Tensor, bottom: torch.Tensor, moments: VocabMoments
            ) -> tuple[torch.Tensor, ...]:
    """Mean, std and the z-scores of each end (step 4) of the rows ``vectors @ W_U``.

    `vectors`: (n, d_model) prepared directions; `top`, `bottom`: (n,) their largest and
    smallest logit. Returns float64 (mean, std, z, z_neg), z clamped into ``[0, sqrt(d_vocab - 1)]``.
    """
    v = vectors.double()
    mean = v @ moments.mean
    std = ((v @ moments.cov) * v).sum(1).clamp_min(0.0).sqrt()  # v^T C v >= 0 (C is PSD)
    bound = math.sqrt(moments.d_vocab - 1)
    safe = torch.where(std > 0, std, torch.ones_like(std))

    def score(gap: torch.Tensor) -> torch.Tensor:
        return torch.where(std > 0, gap / safe, torch.zeros_like(std)).clamp(0.0, bound)

    return mean, std, score(top.double() - mean), score(mean - bottom.double())


def decode_directions(w: torch.Tensor, W_U: torch.Tensor, final_norm, config: DecodeConfig = DecodeConfig()
                      ) -> DecodedDirections:
    """Decode n directions (n, d_model) through the LM head (steps 2-5), block by block.

    `W_U`: (d_model, d_vocab) (a transposed view is fine: BLAS reads it as is);
    `final_norm`: NormWeights of the final norm (unused for 'raw').
    """
    if w.ndim != 2 or w.shape[1] != W_U.shape[0]:
        raise ValueError(f"directions must be (n, d_model={W_U.shape[0]}), got {tuple(w.shape)}")
    if w.shape[0] == 0:
        raise ValueError("no directions to decode: `w` holds 0 rows (expected (n >= 1, d_model))")
    if config.top_k > W_U.shape[1]:
        raise ValueError(f"top_k {config.top_k} exceeds the vocabulary size {W_U.shape[1]}")
    W_U_given = W_U  # the caller's tensor: the key of the moments cache
    W_U = W_U if W_U.dtype == torch.float32 else W_U.float()
    vectors = prepare_directions(w.float(), final_norm, config.variant).contiguous()
    r = reduce_vocab(vectors, W_U, config.top_k, config.chunk_size, config.vocab_block, config.backend)
    m, z, s, m_neg, z_neg, s_neg = r.stats.unbind(1)
    log_z, log_z_neg = z.log(), z_neg.log()
    max_entropy = math.log(W_U.shape[1])
    prob = lambda x: x.clamp(0.0, 1.0)  # noqa: E731  (fast exp: 1/Z may exceed 1 by ~1e-6)
    ent = lambda x: x.clamp(0.0, max_entropy)  # noqa: E731
    moments = vocab_moments(W_U_given)
    return DecodedDirections(
        r.top_ids, r.top_logits, prob((r.top_logits - (m + log_z)[:, None]).exp()),
        r.bottom_ids, r.bottom_logits, prob((-r.bottom_logits - (m_neg + log_z_neg)[:, None]).exp()),
        prob(1.0 / z), ent(log_z - s / z), prob(1.0 / z_neg), ent(log_z_neg - s_neg / z_neg),
        *logit_z(vectors, r.top_logits[:, 0], r.bottom_logits[:, 0], moments))


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
    """Unchunked float64 decoding via full softmax and the logits' own mean/std: the check for
    `decode_directions` (small n)."""
    vectors = prepare_directions(w.double(), final_norm, variant)
    logits = vectors @ W_U.double()
    p, p_neg = logits.softmax(-1), (-logits).softmax(-1)
    top_logits, top_ids = logits.topk(k, dim=1)
    bottom_logits, bottom_ids = logits.topk(k, dim=1, largest=False)
    ent = lambda q: -(q * q.clamp_min(1e-300).log()).sum(-1)  # noqa: E731
    mean, std = logits.mean(-1), logits.std(-1, correction=0)
    z = lambda gap: torch.where(std > 0, gap / std, torch.zeros_like(std))  # noqa: E731
    return DecodedDirections(top_ids, top_logits, p.gather(1, top_ids), bottom_ids, bottom_logits,
                             p_neg.gather(1, bottom_ids), p.max(-1).values, ent(p), p_neg.max(-1).values, ent(p_neg),
                             mean, std, z(top_logits[:, 0] - mean), z(mean - bottom_logits[:, 0]))

