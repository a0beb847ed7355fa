"""BatchTopK and Matryoshka-BatchTopK: the training-time activation and losses.

Bussmann, Leask & Nanda (2024), "BatchTopK Sparse Autoencoders"; Bussmann, Nabeshima,
Karvonen & Nanda (2025), "Learning Multi-Level Features with Matryoshka Sparse
Autoencoders". The maths follows SAELens's ``BatchTopKTrainingSAE`` and
``MatryoshkaBatchTopKTrainingSAE`` (SAELens 6.x), so a dictionary trained here is the
JumpReLU dictionary SAELens would save.

1. BatchTopK: with ``a = relu(pre)`` (batch, d_sae), keep the ``batch * k`` largest entries
   of the whole batch and zero the rest: k active latents per token *on average*, some
   tokens using more and others fewer. Gradients flow through the kept entries.
2. Threshold: after each step the global threshold moves towards the smallest kept
   activation, ``t <- (1 - lr) t + lr * min(kept > 0)`` (an exponential moving average,
   started at 0). At inference no batch exists, so the dictionary is the JumpReLU
   ``z = relu(pre) * [pre > t]`` with t for every latent: that is the saved dictionary
   (SAELens saves a trained BatchTopK SAE as ``jumprelu`` the same way).
3. Matryoshka: the latents are split at prefix widths ``w_1 < ... < w_M = d_sae``; prefix m
   reconstructs from the first ``w_m`` latents alone,
   ``y_hat_m = b_dec (+ skip) + z[:, :w_m] @ W_dec[:w_m]``, and the reconstruction term of
   the loss is the *sum* over the M levels of ``||y - y_hat_m||^2 / scale`` (the last level
   is the ordinary reconstruction). Early latents must then explain the target on their
   own: general features settle there and later latents refine them (less absorption).
"""

from __future__ import annotations

import torch

BATCH_ARCHS = ("batchtopk", "matryoshka_batchtopk")
"""Training architectures that select latents across the batch and save as JumpReLU."""


def batch_topk(acts: torch.Tensor, k: int) -> torch.Tensor:
    """(batch, d_sae) `acts` (>= 0) with all but the ``batch * k`` largest entries of the
    whole batch set to zero (step 1); differentiable through the kept entries."""
    n_keep = min(acts.numel(), k * acts.shape[0])
    flat = acts.reshape(-1)
    kept = flat.detach().topk(n_keep, sorted=False).indices
    mask = torch.zeros_like(flat, dtype=torch.bool).index_fill_(0, kept, True)
    return (flat * mask).reshape(acts.shape)


def updated_threshold(threshold: float, kept: torch.Tensor, lr: float) -> float:
    """The threshold after one batch (step 2): moves by `lr` towards the smallest positive
    entry of `kept`; unchanged when nothing fired. Kept as a Python float (double precision,
    as SAELens keeps it, so tiny learning rates do not vanish in float32 rounding)."""
    positive = kept[kept > 0]
    if positive.numel() == 0:
        return threshold
    return (1.0 - lr) * threshold + lr * float(positive.min())


def matryoshka_widths(d_sae: int, fractions: tuple[float, ...]) -> tuple[int, ...]:
    """Prefix widths: ``round(f * d_sae)`` for each fraction, then d_sae (step 3)."""
    widths = tuple(int(round(f * d_sae)) for f in fractions) + (d_sae,)
    if widths[0] < 1 or any(a >= b for a, b in zip(widths, widths[1:])):
        raise ValueError(f"matryoshka fractions {fractions} give prefix widths {widths} for d_sae={d_sae}; "
                         "they must be >= 1 and strictly increasing (use fewer or wider prefixes)")
    return widths


def prefix_errors(acts: torch.Tensor, W_dec: torch.Tensor, base: torch.Tensor, y: torch.Tensor,
                  widths: tuple[int, ...]) -> torch.Tensor:
    """(M,) mean over the batch of ``||y - y_hat_m||^2`` for each prefix level (step 3).

    `acts` (batch, d_sae); `W_dec` (d_sae, d_out); `base` (batch, d_out) or (d_out,): what
    every level starts from (b_dec, plus the skip term of a skip transcoder); `y` (batch, d_out).
    """
    errors, recon, start = [], base.expand_as(y), 0
    for width in widths:
        recon = recon + acts[:, start:width] @ W_dec[start:width]  # add this level's latents
        errors.append((y - recon).pow(2).sum(-1).mean())
        start = width
    return torch.stack(errors)
