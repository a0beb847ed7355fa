"""Faithfulness of token importances: Soft-NS / Soft-NC and hard comprehensiveness / sufficiency.

Soft metrics: Zhao & Aletras (2023), "Incorporating Attribution Importance for Improving
Faithfulness Metrics" (ACL), as used by ReAGent (Zhao & Shan, 2024) to compare methods.

For an input x (pos tokens, embeddings e_i), importances normalised to [0, 1] (min-max over
the attributable tokens: ``w_i``), the original next-token distribution p and a masked one q:

1. Soft sufficiency masks each embedding *element* of token i independently, keeping it with
   probability ``w_i`` (Bernoulli mask on ``hook_embed``); soft comprehensiveness keeps it with
   probability ``1 - w_i``. Special tokens (BOS) are always kept.
2. ``H(p, q) = sqrt(sum_v (sqrt(q_v) - sqrt(p_v))^2) / sqrt(2)`` (Hellinger, in [0, 1]);
   ``Soft-S = 1 - H(p, q_suff)``, ``Soft-C = H(p, q_comp)``.
3. ``S0 = 1 - H(p, q_0)`` with every attributable embedding zeroed (the all-masked baseline);
   ``Soft-NS = max(0, Soft-S - S0) / (1 - S0)``, ``Soft-NC = Soft-C / (1 - S0)``.
   Higher is more faithful for both. Each is averaged over `n_samples` seeded masks.

Hard metrics (DeYoung et al. 2020, ERASER) at top-k% (k in `hard_fractions`): remove - zero the
embeddings of - the top ``ceil(k * A)`` attributable tokens: comprehensiveness
``v(x) - v(x without top)``; sufficiency ``v(x) - v(x with only top)``. v is the target value
(``p(y)``). Lower sufficiency and higher comprehensiveness are more faithful.

All metric inputs go through one batched forward pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from interp.methods.attribution.targets import AttributionResult, Target, special_mask
from interp.models.interventions import ReplaceActivation


@dataclass(frozen=True)
class FaithfulnessConfig:
    """Settings of `faithfulness`."""

    n_samples: int = 8
    """Bernoulli masks drawn per soft metric (averaged)."""
    hard_fractions: tuple[float, ...] = (0.1, 0.2, 0.5)
    """Fractions of the attributable tokens removed / kept for the hard metrics."""
    seed: int = 0
    """Seeds the Bernoulli masks."""

    def __post_init__(self) -> None:
        if self.n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {self.n_samples}")
        for f in self.hard_fractions:
            if not 0 < f <= 1:
                raise ValueError(f"hard_fractions must lie in (0, 1], got {f}")


@dataclass
class FaithfulnessResult:
    """Faithfulness scores of one attribution."""

    soft_ns: float
    soft_nc: float
    soft_s: float
    soft_c: float
    s0: float
    """Sufficiency of the all-masked input (the normaliser)."""
    comprehensiveness: dict[float, float] = field(default_factory=dict)
    """Top-k fraction -> v(x) - v(x without top-k)."""
    sufficiency: dict[float, float] = field(default_factory=dict)
    """Top-k fraction -> v(x) - v(x with only top-k)."""

    def to_dict(self) -> dict:
        out = {k: getattr(self, k) for k in ("soft_ns", "soft_nc", "soft_s", "soft_c", "s0")}
        out.update({f"comp@{f:g}": v for f, v in self.comprehensiveness.items()})
        out.update({f"suff@{f:g}": v for f, v in self.sufficiency.items()})
        return out


def hellinger(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """(..., vocab) x (..., vocab) -> (...) Hellinger distance in [0, 1]."""
    return ((q.sqrt() - p.sqrt()) ** 2).sum(-1).sqrt() / math.sqrt(2)


def normalise_importance(scores: torch.Tensor, attributable: torch.Tensor) -> torch.Tensor:
    """(pos,) min-max to [0, 1] over attributable tokens; 0 elsewhere (all 1 if constant)."""
    s = scores.float()
    lo, hi = s[attributable].min(), s[attributable].max()
    w = torch.ones_like(s) if hi <= lo else (s - lo) / (hi - lo)
    return w * attributable


def _keep_masks(weights: torch.Tensor, attributable: torch.Tensor, fractions, n_samples: int, d_model: int,
                gen: torch.Generator) -> torch.Tensor:
    """(rows, pos, d_model) keep-masks: [clean, all-masked, suff x n, comp x n, hard-comp.., hard-suff..]."""
    pos = weights.numel()
    special = (~attributable).float()[:, None].expand(pos, d_model)
    w = weights[:, None].expand(pos, d_model)
    u = torch.rand(2 * n_samples, pos, d_model, generator=gen)
    suff = (u[:n_samples] < w).float().maximum(special)
    comp = (u[n_samples:] < 1 - w).float().maximum(special)
    n_attr = int(attributable.sum())
    order = weights.masked_fill(~attributable, -1.0).argsort(descending=True)
    hard_comp, hard_suff = [], []
    for f in fractions:
        top = torch.zeros(pos, dtype=torch.bool)
        top[order[: math.ceil(f * n_attr)]] = True
        hard_comp.append((~top).float()[:, None].expand(pos, d_model))
        hard_suff.append((top | ~attributable).float()[:, None].expand(pos, d_model))
    rows = [torch.ones(1, pos, d_model), special[None], suff, comp, torch.stack(hard_comp), torch.stack(hard_suff)]
    return torch.cat(rows)


def _masked_run(adapter, tokens: torch.Tensor, target: Target, keep: torch.Tensor):
    # keep: (rows, pos, d_model) multiplies the token embeddings of each row
    splice = ReplaceActivation(adapter.embed_site, lambda act: act * keep.to(act.device, act.dtype))
    out = adapter.run(tokens.expand(keep.shape[0], -1), names=target.sites, interventions=[splice],
                      last_position=True)
    probs = torch.softmax(out.output[:, -1].float(), dim=-1)  # (rows, vocab)
    return probs, target.value(out.output, out.cache)


def faithfulness(adapter, result: AttributionResult, target: Target,
                 config: FaithfulnessConfig = FaithfulnessConfig()) -> FaithfulnessResult:
    """Soft-NS / Soft-NC and hard comprehensiveness / sufficiency of `result` for `target`.

    `target` must be the Target the attribution explains (for p / Hellinger the metric uses the
    full next-token distribution; the hard metrics use ``target.value``).
    """
    tokens = result.token_ids.to(adapter.device)
    attributable = ~special_mask(adapter, tokens).cpu()
    if result.scores.shape != tokens.shape:
        raise ValueError(f"scores have shape {tuple(result.scores.shape)}, tokens {tuple(tokens.shape)}")
    weights = normalise_importance(result.scores.cpu(), attributable)
    gen = torch.Generator().manual_seed(config.seed)
    keep = _keep_masks(weights, attributable, config.hard_fractions, config.n_samples, adapter.info.d_model, gen)
    probs, values = _masked_run(adapter, tokens, target, keep)
    p, n, m = probs[0], config.n_samples, len(config.hard_fractions)
    s0 = 1 - float(hellinger(p, probs[1]))
    soft_s = float((1 - hellinger(p[None], probs[2 : 2 + n])).mean())
    soft_c = float(hellinger(p[None], probs[2 + n : 2 + 2 * n]).mean())
    denom = max(1 - s0, 1e-9)
    v0, hard = float(values[0]), values[2 + 2 * n :].tolist()
    return FaithfulnessResult(
        soft_ns=max(0.0, soft_s - s0) / denom, soft_nc=soft_c / denom, soft_s=soft_s, soft_c=soft_c, s0=s0,
        comprehensiveness={f: v0 - hard[i] for i, f in enumerate(config.hard_fractions)},
        sufficiency={f: v0 - hard[m + i] for i, f in enumerate(config.hard_fractions)},
    )
