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

from dataclasses import dataclass, fields

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
    W_U = W_U if W_U.dtype == torch.float32 else W_U.float()
    vectors = prepare_directions(w.float(), final_norm, config.variant).contiguous()
    r = reduce_vocab(vectors, W_U, config.top_k, config.chunk_size, config.vocab_block, config.backend)
    m, z, s, m_neg, z_neg, s_neg = r.stats.unbind(1)
    log_z, log_z_neg = z.log(), z_neg.log()
    return DecodedDirections(
        r.top_ids, r.top_logits, (r.top_logits - (m + log_z)[:, None]).exp(),
        r.bottom_ids, r.bottom_logits, (-r.bottom_logits - (m_neg + log_z_neg)[:, None]).exp(),
        1.0 / z, log_z - s / z, 1.0 / z_neg, log_z_neg - s_neg / z_neg)


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

