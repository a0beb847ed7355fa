"""Meta-structure: are a dictionary's decoder directions sparse combinations of fewer, shared ones?

Bussmann, Nabeshima, Karvonen & Nanda (2024), "Showing SAE Latents Are Not Atomic Using
Meta-SAEs": a small BatchTopK SAE trained on the decoder rows of a large SAE reconstructs
them from a few meta-latents each (on GPT-2, 2,304 meta-latents with k = 4 explain about
55% of the variance of 49k decoder rows), so many latents share components ("Einstein" =
scientist + German + famous person ...). High explained variance means the dictionary's
latents are compositions of coarser directions rather than atomic ones.

1. Rows: the dictionary's decoder rows ``W_dec`` (d_sae, d_out), each scaled to unit norm (the
   meta-dictionary describes directions, not the latents' scales); rows of norm 0 are dropped.
2. Train a BatchTopK meta-dictionary (an SAE on the rows) with interp's own training loop on
   the rows in memory (`interp.dictionaries.activations.in_memory_batches`,
   `interp.dictionaries.training.train_dictionary`): width ``m ≈ width_fraction * d_sae``
   (rounded to a multiple of d_out, as the training config sets widths by expansion), ``k``
   meta-latents per row on average, `epochs` passes over the shuffled rows. It is saved, as
   every BatchTopK dictionary, as the JumpReLU with the learned threshold.
3. Encode every row with the trained meta-dictionary: ``r_hat = meta(r)`` and its meta-latents.
4. Scores (on the rows it was trained on: the meta-dictionary is a description of this set):
   explained variance ``1 - FVU``, ``FVU = sum ||r - r_hat||^2 / sum ||r - mean(r)||^2``
   (`interp.dictionaries.evaluation.fvu`); mean L0 (meta-latents active per row); the share
   of meta-latents active on at least one row.
5. Reference (`baseline`): steps 2-4 on as many random Gaussian directions (unit norm, same
   shape, seeded), which share no structure: what a meta-dictionary of this size explains
   by fitting alone. The gap to it is the dictionary's meta-structure.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from interp.dictionaries.dictionary import Dictionary


@dataclass(frozen=True)
class MetaStructureConfig:
    """Settings of `meta_structure` (the meta-dictionary and how it trains)."""

    width_fraction: float = 0.25
    """Meta-dictionary width as a share of d_sae (rounded to a multiple of d_out, at least d_out)."""
    k: int = 4
    """Meta-latents per decoder row (the BatchTopK average)."""
    epochs: int = 50
    """Passes over the decoder rows."""
    batch_size: int = 256
    """Rows per training step (fewer when the dictionary has fewer rows)."""
    lr: float = 5e-3
    """Adam learning rate (on rows scaled to E||r||^2 = d; higher than a token run's: a meta run has few steps)."""
    threshold_lr: float = 0.05
    """Step of the BatchTopK threshold's moving average (higher than a token run's: a meta run is short)."""
    baseline: bool = True
    """Also fit random Gaussian directions of the same shape (step 5)."""
    seed: int = 0
    """Seed of the initialisation, the row order and the random baseline."""

    def __post_init__(self) -> None:
        if not 0 < self.width_fraction <= 1:
            raise ValueError(f"width_fraction must be in (0, 1], got {self.width_fraction!r}")
        for name in ("k", "epochs", "batch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive int, got {getattr(self, name)!r}")
        if not self.lr > 0 or not 0 < self.threshold_lr <= 1:
            raise ValueError(f"need lr > 0 and threshold_lr in (0, 1], got lr={self.lr!r}, "
                             f"threshold_lr={self.threshold_lr!r}")


@dataclass(frozen=True)
class MetaScores:
    """How well one meta-dictionary reconstructs one set of rows (step 4)."""

    explained_variance: float
    """1 - FVU of the rows."""
    l0: float
    """Mean meta-latents active per row."""
    used_fraction: float
    """Share of meta-latents active on at least one row."""


@dataclass(frozen=True)
class MetaStructureResult:
    """The meta-structure eval of one dictionary."""

    n_rows: int
    """Decoder rows fitted (d_sae less rows of norm 0)."""
    d: int
    """Their dimension (the dictionary's d_out)."""
    width: int
    """Meta-latents."""
    k: int
    scores: MetaScores
    baseline: MetaScores | None
    """The same meta-dictionary size on random directions (None when not asked for)."""
    steps: int
    """Training steps of the meta-dictionary."""

    def to_dict(self) -> dict:
        return {"n_rows": self.n_rows, "d": self.d, "width": self.width, "k": self.k, "steps": self.steps,
                **{k: v for k, v in vars(self.scores).items()},
                **{f"baseline_{k}": v for k, v in (vars(self.baseline) if self.baseline else {}).items()}}


def unit_rows(W_dec: torch.Tensor) -> torch.Tensor:
    """(n, d) float32 decoder rows of (d_sae, d) `W_dec` scaled to unit norm, zero rows dropped (step 1)."""
    if W_dec.ndim != 2 or W_dec.shape[0] < 2:
        raise ValueError(f"W_dec must be (d_sae >= 2, d), got shape {tuple(W_dec.shape)}")
    rows = W_dec.detach().float()
    norms = rows.norm(dim=-1, keepdim=True)
    keep = norms[:, 0] > 0
    return rows[keep] / norms[keep]


def meta_width(d_sae: int, d: int, fraction: float) -> int:
    """Meta-dictionary width: ``fraction * d_sae`` rounded to a multiple of `d`, at least `d`."""
    return max(1, round(fraction * d_sae / d)) * d


@torch.no_grad()
def score_meta_dictionary(meta: Dictionary, rows: torch.Tensor) -> MetaScores:
    """Step 3-4: explained variance, mean L0 and used share of `meta` on `rows` (n, d)."""
    from interp.dictionaries.evaluation import fvu

    z = meta.encode(rows)  # (n, width)
    active = z > 0
    return MetaScores(1.0 - fvu(meta(rows), rows), float(active.sum(-1).float().mean()),
                      float(active.any(0).float().mean()))


def train_meta_dictionary(rows: torch.Tensor, width: int, config: MetaStructureConfig) -> tuple[Dictionary, int]:
    """Step 2: a BatchTopK SAE of `width` latents trained on `rows` (n, d); (dictionary, steps)."""
    from interp.dictionaries.activations import in_memory_batches
    from interp.dictionaries.train_config import TrainConfig
    from interp.dictionaries.training import train_dictionary

    n, d = rows.shape
    if width % d or config.k > width:
        raise ValueError(f"meta width must be a multiple of d={d} and at least k={config.k}, got {width}")
    batch = min(config.batch_size, n)
    steps = max(1, config.epochs * n // batch)
    train = TrainConfig(kind="sae", arch="batchtopk", expansion=width // d, k=config.k, lr=config.lr,
                        batch_size=batch, train_tokens=steps * batch, warmup_steps=min(20, steps),
                        dead_after_tokens=n, aux_k=min(256, width), threshold_lr=config.threshold_lr,
                        b_dec_init="mean", seed=config.seed)
    result = train_dictionary(in_memory_batches(rows, None, batch, seed=config.seed), train, d, d, progress=False,
                              log_every=max(1, steps))
    return result.dictionary, steps


def meta_structure(W_dec: torch.Tensor, config: MetaStructureConfig = MetaStructureConfig()) -> MetaStructureResult:
    """Steps 1-5 for decoder `W_dec` (d_sae, d_out)."""
    rows = unit_rows(W_dec)
    n, d = rows.shape
    width = meta_width(W_dec.shape[0], d, config.width_fraction)
    if config.k > width:
        raise ValueError(f"k={config.k} exceeds the meta width {width}")
    meta, steps = train_meta_dictionary(rows, width, config)
    scores = score_meta_dictionary(meta, rows)
    reference = None
    if config.baseline:
        g = torch.Generator().manual_seed(config.seed + 1)
        noise = unit_rows(torch.randn(n, d, generator=g))
        reference = score_meta_dictionary(train_meta_dictionary(noise, width, config)[0], noise)
    return MetaStructureResult(n, d, width, config.k, scores, reference, steps)
