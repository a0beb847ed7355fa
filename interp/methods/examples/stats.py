"""Per-feature corpus statistics of one layer's activations, vectorised over features.

Input: the activations of every feature of one site over a corpus sample,
``acts`` (n_windows, pos, n_features), the first positions of each window already dropped
(`ExampleConfig` does not know about them; the caller passes `offset`, the number dropped,
so that reported positions count from the window's first token). Every step below is one
batched torch call over all features at once - a top-k or a bincount over the token axis -
never a Python loop over features.

1. Summary: density = share of tokens with activation > 0 (the same rule for neurons and
   dictionary latents), max, min and mean activation.
2. Top examples: each window's peak (max over positions, with its position), then the
   `n_top` windows with the highest peak per feature (``topk`` over the window axis). Picks
   with a peak <= 0 are dropped (a feature never positive has no top examples).
3. Quantile examples: the range (0, max] of each feature is split into `n_quantiles` equal
   bins, (max q / n, max (q + 1) / n]; every token gets a uniform random key (one
   generator, seeded) and, per bin, the `per_quantile` tokens of that bin with the largest
   keys are taken (``topk`` over the token axis of the keys masked to the bin) - a uniform
   sample without replacement of the bin's tokens, the rule of
   `interp.dictionaries.dashboards` step 4.
4. Histogram: `n_bins` equal bins per feature over [min, max] of all its tokens
   (``positive_only``: over (0, max] of its positive tokens, the view that suits sparse
   dictionary latents, whose zeros would be one spike). A token's bin is
   ``floor((a - lo) / (hi - lo) * n_bins)``, clamped to the last bin (the edges are uniform
   per feature, so this arithmetic is what ``torch.bucketize`` against each feature's edges
   would return, without a search per feature); counts by one ``torch.bincount`` over
   ``feature * n_bins + bin``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch


@dataclass(frozen=True)
class ExampleConfig:
    """What to keep per feature."""

    n_top: int = 10
    """Top-activating windows per feature."""
    n_quantiles: int = 4
    """Equal bins of (0, max] to sample quantile examples from."""
    per_quantile: int = 2
    """Examples sampled from each quantile bin."""
    left: int = 16
    """Context tokens kept before the example's token."""
    right: int = 4
    """Context tokens kept after it."""
    n_bins: int = 40
    """Bins of the corpus activation histogram."""
    seed: int = 0
    """Seed of the quantile sampling."""

    def __post_init__(self) -> None:
        for name in ("n_top", "n_quantiles", "n_bins"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        for name in ("per_quantile", "left", "right"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an int >= 0, got {value!r}")


class Picks(NamedTuple):
    """Chosen tokens, one column per feature: each field (..., n_features)."""

    values: torch.Tensor
    """Activation at the chosen token (float32)."""
    windows: torch.Tensor
    """Window index (int64)."""
    positions: torch.Tensor
    """Position in the window, counting every token of the window (int64)."""
    valid: torch.Tensor
    """Whether the pick exists (bool); valid picks come first along the rank axis."""


class Histogram(NamedTuple):
    counts: torch.Tensor
    """(n_features, n_bins) int64 token counts."""
    edges: torch.Tensor
    """(n_features, n_bins + 1) float32 bin edges."""


class FeatureStats(NamedTuple):
    """Everything `summarise` computes for one site's features."""

    density: torch.Tensor
    """(n_features,) share of tokens with activation > 0."""
    max_act: torch.Tensor
    min_act: torch.Tensor
    mean_act: torch.Tensor
    top: Picks
    """Fields (n_top, n_features), best first."""
    quantiles: Picks
    """Fields (n_quantiles, per_quantile, n_features)."""
    histogram: Histogram
    n_tokens: int


def _check(acts: torch.Tensor) -> None:
    if acts.ndim != 3 or 0 in acts.shape:
        raise ValueError(f"acts must be a non-empty (n_windows, pos, n_features) tensor, got {tuple(acts.shape)}")


def top_windows(acts: torch.Tensor, k: int, offset: int = 0) -> Picks:
    """Step 2: the `k` windows with the highest peak per feature; fields (min(k, n_windows), n_features)."""
    _check(acts)
    peak, where = acts.max(dim=1)  # (n_windows, n_features) each
    values, windows = peak.topk(min(k, acts.shape[0]), dim=0)  # (k, n_features)
    positions = where.gather(0, windows) + offset
    return Picks(values.float(), windows, positions, values > 0)


def quantile_picks(acts: torch.Tensor, n_quantiles: int, per_quantile: int, generator: torch.Generator,
                   offset: int = 0) -> Picks:
    """Step 3: fields (n_quantiles, min(per_quantile, tokens), n_features)."""
    _check(acts)
    n_windows, pos, n_features = acts.shape
    flat = acts.reshape(-1, n_features)  # (tokens, n_features), window-major
    top = flat.amax(0).float()
    scaled = flat.float() * n_quantiles / torch.where(top > 0, top, torch.ones_like(top))  # exact on bin edges
    bins = torch.where(flat > 0, scaled.ceil().long() - 1, -1).clamp_(max=n_quantiles - 1)  # -1: not positive
    keys = torch.rand(flat.shape, generator=generator)
    m = min(per_quantile, flat.shape[0])
    out = []
    for q in range(n_quantiles):  # a handful of bins; each is one topk over every feature
        masked = torch.where(bins == q, keys, -1.0)
        chosen_keys, tokens = masked.topk(m, dim=0)  # (m, n_features)
        out.append((flat.gather(0, tokens).float(), tokens, chosen_keys >= 0))
    values, tokens, valid = (torch.stack(parts) for parts in zip(*out))
    return Picks(values, tokens // pos, tokens % pos + offset, valid)


def histogram(flat: torch.Tensor, n_bins: int, positive_only: bool = False) -> Histogram:
    """Step 4 over (tokens, n_features) activations."""
    if flat.ndim != 2 or 0 in flat.shape:
        raise ValueError(f"histogram needs a non-empty (tokens, n_features) tensor, got {tuple(flat.shape)}")
    n_features = flat.shape[1]
    flat = flat.float()
    hi = flat.amax(0)
    lo = torch.zeros_like(hi) if positive_only else flat.amin(0)
    width = torch.where(hi > lo, hi - lo, torch.ones_like(hi))  # a constant feature: one unit-wide range
    bins = ((flat - lo) / width * n_bins).long().clamp_(0, n_bins - 1)
    index = torch.arange(n_features) * n_bins + bins  # (tokens, n_features)
    if positive_only:  # non-positive tokens go to one extra slot, dropped below
        index = torch.where(flat > 0, index, n_features * n_bins)
    counts = torch.bincount(index.reshape(-1), minlength=n_features * n_bins + 1)[: n_features * n_bins]
    edges = lo[:, None] + width[:, None] * torch.linspace(0, 1, n_bins + 1)[None]
    return Histogram(counts.reshape(n_features, n_bins), edges)


@torch.no_grad()
def summarise(acts: torch.Tensor, config: ExampleConfig = ExampleConfig(), offset: int = 0,
              positive_only: bool = False) -> FeatureStats:
    """Steps 1-4 for ``acts`` (n_windows, pos, n_features); `offset` positions were dropped
    from the front of every window."""
    _check(acts)
    flat = acts.reshape(-1, acts.shape[-1])
    generator = torch.Generator().manual_seed(config.seed)
    return FeatureStats(
        density=(flat > 0).float().mean(0), max_act=flat.amax(0).float(), min_act=flat.amin(0).float(),
        mean_act=flat.float().mean(0),
        top=top_windows(acts, config.n_top, offset),
        quantiles=quantile_picks(acts, config.n_quantiles, config.per_quantile, generator, offset),
        histogram=histogram(flat, config.n_bins, positive_only), n_tokens=flat.shape[0])
