"""The logit lens: read every layer's residual stream through the model's own output head.

nostalgebraist, "interpreting GPT: the logit lens" (2020). A residual stream ``h`` (pos,
d_model) at any depth lives in the space the final norm and the unembedding read, so the
model's "current guess" at that depth is ``softmax(N(h) @ W_U + b_U)``.

Algorithm (row vectors, `interp.models.weights` conventions):

1. Rows of the lens (`lens_rows`): the embedding - the residual stream before block 0,
   ``blocks.0.hook_resid_pre`` (token plus any positional embedding) - then the output of
   every block, ``blocks.L.hook_resid_post`` for L = 0..n_layers-1. The last row is the
   stream the final norm reads, so its lens is the model's own output.
2. One forward pass caches all rows (`residual_stack`): ``resid`` (rows, pos, d_model) and the
   model's logits (pos, d_vocab).
3. Each row is optionally translated (a tuned lens, `interp.methods.lenses.tuned_lens`:
   ``h -> h @ A_l + b_l``), then projected (`project`): ``z = g * N(h) @ W_U + b_U`` with
   ``N`` the final norm's normalisation and ``g`` (and a LayerNorm's bias) its weights -
   exactly the model's final norm and head, norms not folded.
4. Per (row, position): the top-k tokens of ``q = softmax(z)`` with their probabilities; the
   probability ``q[y]`` of the model's final prediction ``y = argmax(final logits)`` at that
   position; and ``KL(p || q) = sum_v p_v (log p_v - log q_v)`` with ``p`` the model's final
   distribution (nats), as ``sum p log p - sum p log q`` (`FinalTarget`).
5. Per row, the KL averaged over positions (the BOS position is left out by default: its
   residual is the attention sink's outlier, and it predicts nothing about the prompt).

Rows are projected one at a time, so memory holds one (pos, d_vocab) block of logits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

EMBED_ROW = "embed"
"""Label of the lens row read before block 0."""


@dataclass(frozen=True)
class LensRow:
    """One depth the lens reads."""

    label: str
    """``embed`` or the block index as text (``"0"``, ``"1"``, ...)."""
    site: str
    """The hook name of the residual stream read there."""


@dataclass(frozen=True)
class LensConfig:
    """What `lens_grid` reports."""

    top_k: int = 5
    """Tokens kept per (row, position)."""
    include_bos: bool = False
    """Average the per-row KL over the BOS position too (left out by default, step 5)."""

    def __post_init__(self) -> None:
        if not isinstance(self.top_k, int) or self.top_k < 1:
            raise ValueError(f"top_k must be a positive int, got {self.top_k!r}")


@dataclass(frozen=True)
class ResidualStack:
    """Every lens row's residual stream and the model's logits, from one forward pass."""

    resid: torch.Tensor
    """(rows, batch, pos, d_model) float32."""
    logits: torch.Tensor
    """(batch, pos, d_vocab) float32: the model's own output."""
    rows: tuple[LensRow, ...]


@dataclass(frozen=True)
class LensGrid:
    """A lens read at every (row, position) of one prompt (step 4 of the module docstring)."""

    lens: str
    """``logit`` or ``tuned``."""
    tokens: list[str]
    """(pos,) the prompt's tokens."""
    rows: tuple[LensRow, ...]
    top_ids: np.ndarray
    """(rows, pos, k) int64 the lens's top tokens."""
    top_tokens: np.ndarray
    """(rows, pos, k) object: their strings."""
    top_probs: np.ndarray
    """(rows, pos, k) float32 their probabilities under the lens."""
    final_ids: np.ndarray
    """(pos,) int64 the model's own prediction at each position."""
    final_prob: np.ndarray
    """(rows, pos) float32 the lens's probability of `final_ids`."""
    kl: np.ndarray
    """(rows, pos) float32 KL(final || lens) in nats."""
    kl_mean: np.ndarray
    """(rows,) float32 KL averaged over positions (step 5)."""

    @property
    def labels(self) -> list[str]:
        return [r.label for r in self.rows]


def lens_rows(adapter) -> tuple[LensRow, ...]:
    """The embedding then every block's output (step 1)."""
    rows = [LensRow(EMBED_ROW, adapter.sites(0).resid_pre)]
    rows += [LensRow(str(layer), adapter.sites(layer).resid_post) for layer in range(adapter.info.n_layers)]
    return tuple(rows)


def residual_stack(adapter, tokens) -> ResidualStack:
    """One forward pass caching every lens row (step 2). `tokens`: (batch, pos) ids or text."""
    rows = lens_rows(adapter)
    out = adapter.run(tokens, names=[r.site for r in rows])
    resid = torch.stack([out.cache[r.site].float() for r in rows])  # (rows, batch, pos, d_model)
    return ResidualStack(resid, out.output.float(), rows)


class Head:
    """The model's final norm and unembedding as a function of a residual (step 3)."""

    def __init__(self, adapter, dtype: torch.dtype = torch.float32) -> None:
        weights = adapter.weights
        self.norm = weights.final_norm
        self.W_U = weights.W_U.to(dtype)
        self.b_U = weights.b_U.to(dtype)
        self.dtype = dtype

    def __call__(self, resid: torch.Tensor) -> torch.Tensor:
        """(..., d_model) -> (..., d_vocab) float32 logits."""
        normed = self.norm(resid.float())
        return (normed.to(self.dtype) @ self.W_U + self.b_U).float()


def project(adapter, resid: torch.Tensor, translate: Callable[[int, torch.Tensor], torch.Tensor] | None = None,
            row: int = 0, head: Head | None = None) -> torch.Tensor:
    """Lens logits (..., d_vocab) of residuals (..., d_model) at lens row `row` (step 3)."""
    head = head or Head(adapter)
    return head(resid if translate is None else translate(row, resid))


class FinalTarget:
    """The model's final distribution ``p`` at some tokens, against which many lenses are measured.

    ``KL(p || q) = sum p log p - sum p log q``: ``p`` and its first sum are computed once and
    shared by every row and lens; each lens then costs one log-softmax and one dot product
    per token (no (tokens, d_vocab) temporary of the product). A lens equal to the output
    gives exactly 0 (both sums are the same float operations).
    """

    def __init__(self, final_logits: torch.Tensor) -> None:
        self.log_p = torch.log_softmax(final_logits.float(), -1)
        self.p = self.log_p.exp()
        self.neg_entropy = _dot(self.p, self.log_p)

    def kl(self, lens_logits: torch.Tensor) -> torch.Tensor:
        """(..., d_vocab) lens logits -> (...) KL(p || softmax(lens)) in nats."""
        return (self.neg_entropy - _dot(self.p, torch.log_softmax(lens_logits.float(), -1))).clamp(min=0.0)


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(..., n) . (..., n) -> (...) as a batched matrix product (no elementwise temporary)."""
    return torch.matmul(a.unsqueeze(-2), b.unsqueeze(-1))[..., 0, 0]


def kl_to_final(final_logits: torch.Tensor, lens_logits: torch.Tensor) -> torch.Tensor:
    """KL(softmax(final) || softmax(lens)) in nats over the last axis: (..., d_vocab) -> (...)."""
    return FinalTarget(final_logits).kl(lens_logits)


@torch.no_grad()
def lens_grid(adapter, prompt, config: LensConfig = LensConfig(), translate=None, stack: ResidualStack | None = None,
              lens: str = "logit") -> LensGrid:
    """The lens at every (row, position) of one prompt (steps 1-5).

    `prompt`: text or a (1, pos) token tensor. `translate(row, resid) -> resid`: a tuned lens's
    translators (None: the logit lens). `stack`: a `residual_stack` of this prompt already
    computed (the forward pass is then not repeated).
    """
    tokens = adapter.to_tokens(prompt) if isinstance(prompt, str) else torch.as_tensor(prompt)
    stack = stack if stack is not None else residual_stack(adapter, tokens)
    final = stack.logits[0]  # (pos, d_vocab)
    final_ids = final.argmax(-1)
    target = FinalTarget(final)
    head = Head(adapter)
    k = min(config.top_k, final.shape[-1])
    n_rows, pos = stack.resid.shape[0], final.shape[0]
    top_ids = np.zeros((n_rows, pos, k), np.int64)
    top_probs = np.zeros((n_rows, pos, k), np.float32)
    final_prob = np.zeros((n_rows, pos), np.float32)
    kl = np.zeros((n_rows, pos), np.float32)
    for r in range(n_rows):
        z = project(adapter, stack.resid[r, 0], translate, r, head)  # (pos, d_vocab)
        probs = torch.softmax(z, -1)
        top = probs.topk(k, -1)
        top_ids[r], top_probs[r] = top.indices.numpy(), top.values.numpy()
        final_prob[r] = probs.gather(-1, final_ids[:, None])[:, 0].numpy()
        kl[r] = target.kl(z).numpy()
    vocab = adapter.vocab_strings()
    start = 0 if config.include_bos or not _starts_with_bos(adapter, tokens) else 1
    kl_mean = kl[:, start:].mean(1) if pos > start else np.full(n_rows, np.nan, np.float32)
    return LensGrid(lens, adapter.to_str_tokens(tokens[0]), stack.rows, top_ids, vocab[top_ids], top_probs,
                    final_ids.numpy(), final_prob, kl, kl_mean)


def _starts_with_bos(adapter, tokens: torch.Tensor) -> bool:
    bos = adapter.info.bos_token_id
    return bos is not None and tokens.shape[-1] > 0 and int(tokens[0, 0]) == bos
