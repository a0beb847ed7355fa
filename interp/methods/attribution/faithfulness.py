"""Faithfulness of token importances: Soft-NS / Soft-NC and hard comprehensiveness / sufficiency.

Soft metrics: Zhao & Aletras (2023), "Incorporating Attribution Importance for Improving
Faithfulness Metrics" (ACL), as used by ReAGent (Zhao & Shan, 2024) to compare methods. Two
conventions (`FaithfulnessConfig.convention`), computed on the same masks:

``"reagent"`` (default; the ReAGent authors' code, casszhao/ReAGent
``src/evaluation/evaluator/soft_*`` and ``sufficiency.py``, so numbers sit beside the paper's):

1. Weights ``w_i = s_i / sum_j s_j`` over all positions (negative scores count as 0; all-zero
   scores give uniform weights over the attributable tokens). Special tokens score 0, so BOS
   gets ``w = 0`` like any other unimportant token.
2. Soft sufficiency keeps each embedding element of token i with probability ``w_i`` (a
   Bernoulli mask on ``hook_embed``, every position - BOS included); soft comprehensiveness
   keeps it with probability ``1 - w_i``. S0 zeroes every embedding, BOS included.
3. ``d(p, q) = sum_v (sqrt(q_v) - sqrt(p_v))^2 / sqrt(2)`` (= sqrt(2) H^2: no square root, so
   d lies in [0, sqrt(2)]); ``S = 1 - d(p, q_suff)``, ``C = d(p, q_comp)``, ``S0 = 1 - d(p, q_0)``
   in [1 - sqrt(2), 1] (negative when the all-zero input moves p far).
4. Per mask k: ``Soft-NS_k = max(0, S_k - S0) / (1 - S0)``, ``Soft-NC_k = C_k / (1 - S0)``; the
   result is their mean over `n_samples` masks (the authors draw one mask per evaluation and
   average over inputs, so the mean of per-mask scores is the estimator their tables report).
   Since ``1 - S0 = d_0``: Soft-NS_k = max(0, H0^2 - Hs^2) / H0^2 in [0, 1]; Soft-NC_k =
   Hc^2 / H0^2 in [0, inf) - above 1 when masking part of the input moves the distribution
   further from p than masking all of it.

``"interp"`` (this package's earlier variant, kept for comparison):

1. Weights min-max normalised to [0, 1] over the attributable tokens; special tokens (BOS) are
   always kept, in the soft masks and in S0.
2. ``H(p, q) = sqrt(sum_v (sqrt(q_v) - sqrt(p_v))^2) / sqrt(2)`` (Hellinger, in [0, 1]).
3. ``S = mean_k (1 - H(p, q_suff,k))``, ``C = mean_k H(p, q_comp,k)``; ``Soft-NS = max(0, S - S0)
   / (1 - S0)`` in [0, 1] (clipped after averaging), ``Soft-NC = C / (1 - S0) = mean Hc / H0`` in
   [0, 1 / H0]: it passes 1 when a partly masked input lands further from p than the input with
   every attributable token zeroed (BOS kept) - nothing bounds Hc by H0 - e.g. 1.068 on
   "The cat sat on the" (SmolLM2).

Why keep "interp": min-max weights make the masks' strength independent of prompt length,
where the authors' sum-to-1 weights keep each token with probability ~1/T, so on long prompts
Soft-S sits near S0 (Soft-NS near 0) and the comprehensiveness mask removes almost nothing
(Soft-NC near 0) whatever the attribution; and H is a metric on distributions. Its numbers
cannot be set beside the paper's tables; the default can.

Every soft metric comes with ``n_masks`` and a 95% percentile bootstrap interval over the masks
(``*_lo`` / ``*_hi``; `bootstrap_interval`).

Hard metrics (DeYoung et al. 2020, ERASER) at top-k% (k in `hard_fractions`), the same in both
conventions: remove - zero the embeddings of - the top ``ceil(k * A)`` attributable tokens:
comprehensiveness ``v(x) - v(x without top)``; sufficiency ``v(x) - v(x with only top)``. v is the
target value (``p(y)``). Lower sufficiency and higher comprehensiveness are more faithful.

All metric inputs go through one batched forward pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from interp.methods.attribution.targets import AttributionResult, Target, special_mask
from interp.stats import bootstrap_interval
from interp.models.interventions import ReplaceActivation

CONVENTIONS = ("reagent", "interp")
"""Soft-NS / Soft-NC conventions: the ReAGent authors' code (default) and interp's earlier variant."""


@dataclass(frozen=True)
class FaithfulnessConfig:
    """Settings of `faithfulness`."""

    n_samples: int = 8
    """Bernoulli masks drawn per soft metric (averaged)."""
    hard_fractions: tuple[float, ...] = (0.1, 0.2, 0.5)
    """Fractions of the attributable tokens removed / kept for the hard metrics."""
    seed: int = 0
    """Seeds the Bernoulli masks."""
    convention: str = "reagent"
    """'reagent' (the authors' code: sum-to-1 weights, squared distance, BOS masked, per-mask
    clipping) or 'interp' (min-max weights, Hellinger, BOS kept, clipped after averaging)."""

    def __post_init__(self) -> None:
        if self.n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {self.n_samples}")
        for f in self.hard_fractions:
            if not 0 < f <= 1:
                raise ValueError(f"hard_fractions must lie in (0, 1], got {f}")
        if self.convention not in CONVENTIONS:
            raise ValueError(f"unknown convention {self.convention!r}; valid: {', '.join(CONVENTIONS)}")


@dataclass
class FaithfulnessResult:
    """Faithfulness scores of one attribution."""

    soft_ns: float
    soft_nc: float
    soft_s: float
    soft_c: float
    s0: float
    """Sufficiency of the all-masked input (the normaliser)."""
    convention: str = "reagent"
    n_masks: int = 0
    """Masks behind each soft metric (its sample size)."""
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    """'soft_ns' / 'soft_nc' -> 95% bootstrap interval over the masks."""
    comprehensiveness: dict[float, float] = field(default_factory=dict)
    """Top-k fraction -> v(x) - v(x without top-k)."""
    sufficiency: dict[float, float] = field(default_factory=dict)
    """Top-k fraction -> v(x) - v(x with only top-k)."""

    def to_dict(self) -> dict:
        out = {k: getattr(self, k) for k in ("soft_ns", "soft_nc", "soft_s", "soft_c", "s0", "convention", "n_masks")}
        for name, (lo, hi) in self.intervals.items():
            out[f"{name}_lo"], out[f"{name}_hi"] = lo, hi
        out.update({f"comp@{f:g}": v for f, v in self.comprehensiveness.items()})
        out.update({f"suff@{f:g}": v for f, v in self.sufficiency.items()})
        return out


def hellinger(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """(..., vocab) x (..., vocab) -> (...) Hellinger distance in [0, 1]."""
    return ((q.sqrt() - p.sqrt()) ** 2).sum(-1).sqrt() / math.sqrt(2)


def reagent_distance(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """(..., vocab) x (..., vocab) -> (...) the ReAGent code's ``sum (sqrt q - sqrt p)^2 / sqrt 2``, in [0, sqrt 2]."""
    return ((q.sqrt() - p.sqrt()) ** 2).sum(-1) / math.sqrt(2)


def normalise_importance(scores: torch.Tensor, attributable: torch.Tensor) -> torch.Tensor:
    """(pos,) min-max to [0, 1] over attributable tokens; 0 elsewhere (all 1 if constant)."""
    s = scores.float()
    lo, hi = s[attributable].min(), s[attributable].max()
    w = torch.ones_like(s) if hi <= lo else (s - lo) / (hi - lo)
    return w * attributable


def sum_to_one(scores: torch.Tensor, attributable: torch.Tensor) -> torch.Tensor:
    """(pos,) scores clipped at 0 and divided by their sum (uniform over attributable tokens if all are <= 0)."""
    s = scores.float().clamp_min(0) * attributable
    total = s.sum()
    return s / total if total > 0 else attributable.float() / attributable.sum().clamp_min(1)


def importance_weights(scores: torch.Tensor, attributable: torch.Tensor, convention: str) -> torch.Tensor:
    """(pos,) the soft masks' keep probabilities under `convention` (see the module doc)."""
    if convention == "reagent":
        return sum_to_one(scores, attributable)
    if convention == "interp":
        return normalise_importance(scores, attributable)
    raise ValueError(f"unknown convention {convention!r}; valid: {', '.join(CONVENTIONS)}")


def _keep_masks(weights: torch.Tensor, attributable: torch.Tensor, fractions, n_samples: int, d_model: int,
                gen: torch.Generator, convention: str = "interp") -> torch.Tensor:
    """(rows, pos, d_model) keep-masks: [clean, all-masked, suff x n, comp x n, hard-comp.., hard-suff..].

    "interp" always keeps special tokens in the soft and all-masked rows; "reagent" masks every
    position by its weight and zeroes all of them (BOS too) in the all-masked row.
    """
    pos = weights.numel()
    special = (~attributable).float()[:, None].expand(pos, d_model)
    if convention == "reagent":
        special = torch.zeros(pos, d_model)
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


def soft_metrics(p: torch.Tensor, q0: torch.Tensor, q_suff: torch.Tensor, q_comp: torch.Tensor,
                 convention: str = "reagent") -> dict:
    """Soft-NS / Soft-NC from the original distribution p (vocab,), the all-masked one q0 (vocab,)
    and n sufficiency / comprehensiveness-masked ones (n, vocab) under `convention`.

    Returns soft_ns, soft_nc, soft_s, soft_c, s0, n_masks and the 95% bootstrap intervals over
    the masks (``soft_ns_lo`` ... ``soft_nc_hi``).
    """
    n = q_suff.shape[0]
    if convention == "reagent":
        d0 = float(reagent_distance(p, q0))
        s, c = 1 - reagent_distance(p[None], q_suff).double().numpy(), reagent_distance(p[None], q_comp).double().numpy()
        s0, denom = 1 - d0, max(d0, 1e-9)
        ns, nc = np.maximum(0.0, s - s0) / denom, c / denom  # per mask, clipped one by one
        out = {"soft_ns": float(ns.mean()), "soft_nc": float(nc.mean())}
        ns_ci, nc_ci = bootstrap_interval(ns), bootstrap_interval(nc)
    elif convention == "interp":
        s0 = 1 - float(hellinger(p, q0))
        s, c = 1 - hellinger(p[None], q_suff).double().numpy(), hellinger(p[None], q_comp).double().numpy()
        denom = max(1 - s0, 1e-9)
        ns_of = lambda x, axis=None: np.maximum(0.0, np.mean(x, axis=axis) - s0) / denom  # noqa: E731 - clip the mean
        out = {"soft_ns": float(ns_of(s)), "soft_nc": float(c.mean() / denom)}
        ns_ci, nc_ci = bootstrap_interval(s, stat=ns_of), bootstrap_interval(c / denom)
    else:
        raise ValueError(f"unknown convention {convention!r}; valid: {', '.join(CONVENTIONS)}")
    return {**out, "soft_s": float(s.mean()), "soft_c": float(c.mean()), "s0": s0, "n_masks": n,
            "soft_ns_lo": ns_ci[0], "soft_ns_hi": ns_ci[1], "soft_nc_lo": nc_ci[0], "soft_nc_hi": nc_ci[1]}


def _masked_run(adapter, tokens: torch.Tensor, target: Target, keep: torch.Tensor):
    # keep: (rows, pos, d_model) multiplies the token embeddings of each row
    splice = ReplaceActivation(adapter.embed_site, lambda act: act * keep.to(act.device, act.dtype))
    out = adapter.run(tokens.expand(keep.shape[0], -1), names=target.sites, interventions=[splice],
                      last_position=True)
    probs = torch.softmax(out.output[:, -1].float(), dim=-1)  # (rows, vocab)
    return probs, target.value(out.output, out.cache)


def faithfulness(adapter, result: AttributionResult, target: Target,
                 config: FaithfulnessConfig = FaithfulnessConfig()) -> FaithfulnessResult:
    """Soft-NS / Soft-NC (under ``config.convention``) and hard comprehensiveness / sufficiency of
    `result` for `target`.

    `target` must be the Target the attribution explains (the soft metrics use the full
    next-token distribution; the hard metrics use ``target.value``).
    """
    tokens = result.token_ids.to(adapter.device)
    attributable = ~special_mask(adapter, tokens).cpu()
    if result.scores.shape != tokens.shape:
        raise ValueError(f"scores have shape {tuple(result.scores.shape)}, tokens {tuple(tokens.shape)}")
    weights = importance_weights(result.scores.cpu(), attributable, config.convention)
    gen = torch.Generator().manual_seed(config.seed)
    keep = _keep_masks(weights, attributable, config.hard_fractions, config.n_samples, adapter.info.d_model, gen,
                       config.convention)
    probs, values = _masked_run(adapter, tokens, target, keep)
    p, n, m = probs[0], config.n_samples, len(config.hard_fractions)
    soft = soft_metrics(p, probs[1], probs[2 : 2 + n], probs[2 + n : 2 + 2 * n], config.convention)
    v0, hard = float(values[0]), values[2 + 2 * n :].tolist()
    return FaithfulnessResult(
        soft_ns=soft["soft_ns"], soft_nc=soft["soft_nc"], soft_s=soft["soft_s"], soft_c=soft["soft_c"], s0=soft["s0"],
        convention=config.convention, n_masks=n,
        intervals={k: (soft[f"{k}_lo"], soft[f"{k}_hi"]) for k in ("soft_ns", "soft_nc")},
        comprehensiveness={f: v0 - hard[i] for i, f in enumerate(config.hard_fractions)},
        sufficiency={f: v0 - hard[m + i] for i, f in enumerate(config.hard_fractions)},
    )
