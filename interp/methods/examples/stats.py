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
   bins, (max q / n, max (q + 1) / n]; the tokens get random ranks (one seeded permutation,
   shared by all features) and, per bin, the `per_quantile` tokens of that bin with the
   highest ranks are taken (``topk`` over the token axis of the ranks masked to the bin).
   For each feature the ranks of a bin's tokens come in uniformly random order, so this is
   a uniform sample without replacement of the bin's tokens, the rule of
   `interp.dictionaries.dashboards` step 4 (the features' samples are merely correlated).
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
    return _quantiles(_by_feature(acts), acts.shape[1], n_quantiles, per_quantile, generator, offset)


def _by_feature(acts: torch.Tensor) -> torch.Tensor:
    """(n_features, tokens) float32 copy of (n_windows, pos, n_features): reductions along rows."""
    return acts.reshape(-1, acts.shape[-1]).T.float().contiguous()


def _quantiles(ft: torch.Tensor, pos: int, n_quantiles: int, per_quantile: int, generator: torch.Generator,
               offset: int) -> Picks:
    top = ft.amax(1, keepdim=True)
    # bin q + 1 for tokens in (top q / n, top (q + 1) / n]; <= 0 for tokens that are not positive
    bins = (ft * (n_quantiles / torch.where(top > 0, top, torch.ones_like(top)))).ceil_()
    bins = bins.clamp_(-1, n_quantiles).to(torch.int8)  # one byte per token: the masks below stay cheap
    small = ft.shape[1] < 2 ** 15
    ranks = torch.randperm(ft.shape[1], generator=generator).to(torch.int16 if small else torch.int32)
    none = torch.tensor(-1, dtype=ranks.dtype)
    m = min(per_quantile, ft.shape[1])
    out = []
    for q in range(n_quantiles):  # a handful of bins; each is one masked topk over every feature
        chosen, tokens = torch.where(bins == q + 1, ranks, none).topk(m, dim=1)  # (n_features, m)
        out.append((ft.gather(1, tokens).T, tokens.T, chosen.T >= 0))
    values, tokens, valid = (torch.stack(parts) for parts in zip(*out))
    return Picks(values, tokens // pos, tokens % pos + offset, valid)


def histogram(flat: torch.Tensor, n_bins: int, positive_only: bool = False) -> Histogram:
    """Step 4 over (tokens, n_features) activations."""
    if flat.ndim != 2 or 0 in flat.shape:
        raise ValueError(f"histogram needs a non-empty (tokens, n_features) tensor, got {tuple(flat.shape)}")
    return _histogram(flat.T.float().contiguous(), n_bins, positive_only)


def _histogram(ft: torch.Tensor, n_bins: int, positive_only: bool) -> Histogram:
    n_features = ft.shape[0]  # ft: (n_features, tokens)
    hi = ft.amax(1, keepdim=True)
    lo = torch.zeros_like(hi) if positive_only else ft.amin(1, keepdim=True)
    width = torch.where(hi > lo, hi - lo, torch.ones_like(hi))  # a constant feature: one unit-wide range
    # in [0, n_bins - 1/2] (the max lands in the last bin), floored by the integer cast
    bins = (ft - lo).mul_(n_bins / width).clamp_(max=n_bins - 0.5).to(torch.int32)
    bins += (torch.arange(n_features, dtype=torch.int32) * n_bins)[:, None]  # the flat (feature, bin) slot
    if positive_only:  # non-positive tokens go to one extra slot, dropped below
        bins = torch.where(ft > 0, bins, n_features * n_bins)
    counts = torch.bincount(bins.reshape(-1), minlength=n_features * n_bins + 1)[: n_features * n_bins].long()
    edges = lo + width * torch.linspace(0, 1, n_bins + 1)[None]
    return Histogram(counts.reshape(n_features, n_bins), edges)


@torch.no_grad()
def summarise(acts: torch.Tensor, config: ExampleConfig = ExampleConfig(), offset: int = 0,
              positive_only: bool = False) -> FeatureStats:
    """Steps 1-4 for ``acts`` (n_windows, pos, n_features); `offset` positions were dropped
    from the front of every window."""
    _check(acts)
    ft = _by_feature(acts)  # one (n_features, tokens) copy feeds steps 1, 3 and 4
    generator = torch.Generator().manual_seed(config.seed)
    return FeatureStats(
        density=(ft > 0).sum(1) / ft.shape[1], max_act=ft.amax(1), min_act=ft.amin(1), mean_act=ft.mean(1),
        top=top_windows(acts, config.n_top, offset),
        quantiles=_quantiles(ft, acts.shape[1], config.n_quantiles, config.per_quantile, generator, offset),
        histogram=_histogram(ft, config.n_bins, positive_only), n_tokens=ft.shape[1])
