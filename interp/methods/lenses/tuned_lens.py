"""The tuned lens: one learned affine translator per layer in front of the logit lens.

Belrose et al. 2023, "Eliciting Latent Predictions from Transformers with the Tuned Lens".
The logit lens reads an intermediate residual ``h_l`` as if it were the last one; but layers
rotate, shift and rescale the stream, so early rows read badly. The tuned lens learns, per
row ``l``, an affine map into the final layer's basis and reads that instead.

Algorithm (rows as in `interp.methods.lenses.logit_lens.lens_rows`):

1. Translators: ``T_l(h) = h @ A_l + b_l`` with ``A_l`` (d_model, d_model) and ``b_l``
   (d_model,), initialised to the identity and zero, so an untrained tuned lens *is* the
   logit lens. The last row is the stream the final norm reads: its translator stays the
   identity (the paper's last layer has none) and is not trained.
2. Each step takes ``batch_windows`` corpus windows, runs the model once (no gradient) and
   keeps every row's residual and the final logits at every position but column 0 (BOS).
3. Loss of row l: ``KL(p || q_l)`` averaged over the batch's tokens, with ``p = softmax``
   of the model's logits and ``q_l = softmax(g * N(T_l(h_l)) @ W_U + b_U)`` (the model's own
   final norm and unembedding, frozen), computed as the cross-entropy of ``q_l`` against
   ``p`` minus ``p``'s entropy (the same gradient; `FinalTarget`). The rows' losses are independent, so each row's
   backward runs as soon as its loss is known (memory: one (tokens, d_vocab) block).
4. Adam on every translator at once, learning rate ``lr`` decayed linearly to 0 over the
   steps. The paper uses SGD with Nesterov momentum over 250 steps of 2^18 tokens; a CPU
   budget of tens of thousands of tokens needs the per-parameter step sizes of Adam.
5. With ``head_dtype="bfloat16"`` the unembedding product (the bulk of the cost:
   ``2 d_model d_vocab`` FLOPs per token and row, each way) runs in bfloat16 during training;
   log-softmax, KL and the translators stay float32, and every evaluation uses float32.

Hand-written rather than the ``tuned-lens`` package: its release pins transformers and torch
versions older than interp's and loads models itself, bypassing the model adapter.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from interp.methods.lenses.logit_lens import FinalTarget, Head, LensRow, lens_rows, residual_stack

HEAD_DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32}


@dataclass(frozen=True)
class TunedLensConfig:
    """How a tuned lens is trained (`train_tuned_lens`)."""

    tokens: int = 5_000
    """Training tokens (BOS positions excluded); each is seen once, by every translator. On
    SmolLM2 a token costs one forward pass plus 30 unembeddings each way (~0.1 s on one CPU core)."""
    ctx_len: int = 64
    """Tokens per corpus window, BOS included."""
    batch_windows: int = 2
    """Windows per optimiser step: (ctx_len - 1) * batch_windows tokens a step."""
    lr: float = 1e-3
    """Adam's learning rate at step 0, decayed linearly to 0 over the steps (3e-3 overshoots
    SmolLM2's last layers within a few steps; 3e-4 learns the early ones slowly)."""
    head_dtype: str = "bfloat16"
    """dtype of the unembedding product while training: bfloat16 (about 2x faster on CPU) or float32."""
    corpus: str = "imdb"
    """Corpus whose train split the windows come from (see `interp.corpus.CORPORA`)."""
    seed: int = 0
    """Seed of the corpus shuffle."""

    def __post_init__(self) -> None:
        if not isinstance(self.ctx_len, int) or self.ctx_len < 2:
            raise ValueError(f"ctx_len must be an int >= 2 (BOS plus one token), got {self.ctx_len!r}")
        if not isinstance(self.tokens, int) or self.tokens < self.ctx_len - 1:
            raise ValueError(f"tokens must be an int >= ctx_len - 1 ({self.ctx_len - 1}), got {self.tokens!r}")
        if not isinstance(self.batch_windows, int) or self.batch_windows < 1:
            raise ValueError(f"batch_windows must be a positive int, got {self.batch_windows!r}")
        if not (isinstance(self.lr, (int, float)) and 0 < self.lr < 1):
            raise ValueError(f"lr must be in (0, 1), got {self.lr!r}")
        if self.head_dtype not in HEAD_DTYPES:
            raise ValueError(f"head_dtype must be one of {', '.join(HEAD_DTYPES)}, got {self.head_dtype!r}")

    @property
    def n_windows(self) -> int:
        """Windows covering `tokens`, a whole number of batches."""
        return self.steps * self.batch_windows

    @property
    def steps(self) -> int:
        """Optimiser steps: ``ceil(tokens / ((ctx_len - 1) * batch_windows))``."""
        return math.ceil(self.tokens / (self.batch_windows * (self.ctx_len - 1)))

    def to_dict(self) -> dict:
        return {**self.__dict__, "steps": self.steps}


class TunedLens:
    """Per-row affine translators (step 1); ``lens(row, h)`` translates (..., d_model) residuals."""

    def __init__(self, rows: tuple[LensRow, ...], weight: torch.Tensor, bias: torch.Tensor) -> None:
        n, d = len(rows), weight.shape[-1]
        if weight.shape != (n, d, d) or bias.shape != (n, d):
            raise ValueError(f"a tuned lens of {n} rows needs weight ({n}, d, d) and bias ({n}, d), "
                             f"got {tuple(weight.shape)} and {tuple(bias.shape)}")
        self.rows = tuple(rows)
        self.weight = weight
        """(rows, d_model, d_model)"""
        self.bias = bias
        """(rows, d_model)"""

    @classmethod
    def identity(cls, adapter) -> "TunedLens":
        """The untrained lens: identity maps and zero biases (equal to the logit lens)."""
        rows, d = lens_rows(adapter), adapter.info.d_model
        return cls(rows, torch.eye(d).repeat(len(rows), 1, 1), torch.zeros(len(rows), d))

    @property
    def d_model(self) -> int:
        return self.weight.shape[-1]

    def __call__(self, row: int, resid: torch.Tensor) -> torch.Tensor:
        return resid.float() @ self.weight[row] + self.bias[row]

    def check(self, adapter) -> "TunedLens":
        """Return self if it was trained for `adapter`'s rows and width; else a clear ValueError."""
        expected = lens_rows(adapter)
        if self.d_model != adapter.info.d_model or self.rows != expected:
            raise ValueError(f"this tuned lens has {len(self.rows)} rows of width {self.d_model}, but "
                             f"{adapter.name} needs {len(expected)} rows of width {adapter.info.d_model}; "
                             "train one for this model with `interp lens train`")
        return self


@dataclass(frozen=True)
class TunedLensTraining:
    """A trained lens and how training went."""

    lens: TunedLens
    config: TunedLensConfig
    losses: list[float]
    """Per step, the KL (nats) averaged over tokens and trained rows, before the update."""
    n_tokens: int
    """Training tokens seen (BOS excluded)."""
    seconds: float
    """Wall time of the training loop, model passes included."""


def _batches(windows: torch.Tensor, batch_windows: int):
    for start in range(0, windows.shape[0], batch_windows):
        yield windows[start:start + batch_windows]


def _step(adapter, head: Head, batch: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> tuple[float, int]:
    """Steps 2-3 on one batch: gradients accumulated into `weight` / `bias`; (mean KL, tokens)."""
    with torch.no_grad():
        stack = residual_stack(adapter, batch)
        resid = stack.resid[:, :, 1:].flatten(1, 2)  # (rows, tokens, d_model), BOS column dropped
        target = FinalTarget(stack.logits[:, 1:].flatten(0, 1))  # (tokens, d_vocab)
        neg_entropy = float(target.neg_entropy.mean())
    n_trained = weight.shape[0]
    total = 0.0
    for row in range(n_trained):
        z = head(resid[row] @ weight[row] + bias[row])
        loss = F.cross_entropy(z, target.p)  # KL(p || q) up to the constant -H(p): the same gradient
        loss.backward()
        total += float(loss.detach()) + neg_entropy
    return total / n_trained, resid.shape[1]


def train_tuned_lens(adapter, windows: torch.Tensor, config: TunedLensConfig = TunedLensConfig(),
                     progress: bool = False) -> TunedLensTraining:
    """Train the translators on `windows` (n, ctx_len) BOS-prefixed token windows (steps 1-5)."""
    if windows.ndim != 2 or windows.shape[1] < 2:
        raise ValueError(f"windows must be (n_windows, ctx_len >= 2) token ids, got shape {tuple(windows.shape)}")
    start = time.perf_counter()
    lens = TunedLens.identity(adapter)
    n_trained = len(lens.rows) - 1  # the last row reads the final stream: identity, not trained (step 1)
    weight = lens.weight[:n_trained].clone().requires_grad_(True)
    bias = lens.bias[:n_trained].clone().requires_grad_(True)
    steps = math.ceil(windows.shape[0] / config.batch_windows)
    optimiser = torch.optim.Adam([weight, bias], lr=config.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: max(0.0, 1.0 - s / steps))
    head = Head(adapter, HEAD_DTYPES[config.head_dtype])
    losses, n_tokens = [], 0
    batches = _batches(windows.to(adapter.device), config.batch_windows)
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, total=steps, desc="tuned lens", unit="step")
    for batch in batches:
        optimiser.zero_grad(set_to_none=True)
        loss, n = _step(adapter, head, batch, weight, bias)
        optimiser.step()
        schedule.step()
        losses.append(loss)
        n_tokens += n
    with torch.no_grad():
        lens.weight[:n_trained] = weight.detach()
        lens.bias[:n_trained] = bias.detach()
    return TunedLensTraining(lens, config, losses, n_tokens, time.perf_counter() - start)
