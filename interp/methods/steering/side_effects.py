"""The side effect of steering: how far it moves the model away from text about anything else.

1. A few fixed neutral prompts (`interp.methods.neurons.clamping.NEUTRAL_PROMPTS`, the ones
   the clamping check uses) run as one right-padded batch, unsteered: ``log p_clean`` of the
   next token at each prompt's last position.
2. The same batch runs with the steering edits (attention frozen to the batch's own clean
   patterns, or live): ``log p_steered``.
3. ``KL(p_clean || p_steered)`` per prompt in nats (`clamping.kl_divergence`), and its mean.
   Zero exactly when the steering leaves the distributions unchanged (e.g. strength 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from interp.methods.neurons.clamping import NEUTRAL_PROMPTS, kl_divergence, last_log_probs
from interp.methods.steering.attention import attention
from interp.methods.steering.steering import Edit, steered_edits


@dataclass(frozen=True)
class SideEffect:
    """Mean and per-prompt KL of the steered vs unsteered next-token distributions."""

    attention: str
    """'frozen' or 'live'."""
    prompts: tuple[str, ...]
    per_prompt: tuple[float, ...]
    """(n_prompts,) KL(p_clean || p_steered), nats."""

    @property
    def mean(self) -> float:
        return float(sum(self.per_prompt) / len(self.per_prompt))


def neutral_kl(adapter, edits: Sequence[Edit], mode: str = "live",
               prompts: Sequence[str] = NEUTRAL_PROMPTS) -> SideEffect:
    """Steps 1-3 (see the module docstring)."""
    prompts = tuple(prompts)
    if not prompts or not all(isinstance(p, str) and p.strip() for p in prompts):
        raise ValueError(f"neutral prompts must be non-empty strings, got {prompts!r}")
    batch = adapter.tokenize(list(prompts))
    clean = last_log_probs(adapter, batch)
    with attention(adapter, mode, batch.tokens), steered_edits(adapter, edits):
        steered = last_log_probs(adapter, batch)
    kl = kl_divergence(clean, steered).clamp_min(0.0)  # float rounding can dip below 0 at s = 0
    return SideEffect(mode, prompts, tuple(float(k) for k in kl))
