"""How one dictionary trains: `TrainConfig`, the documented fields every training entry point takes
(`interp train`, `interp sweep`, the main job's recipe), checked when made."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from interp.dictionaries.batchtopk import BATCH_ARCHS
from interp.dictionaries.dictionary import ARCHS as MODULE_ARCHS, KINDS


ARCHS = (*MODULE_ARCHS, *BATCH_ARCHS)
"""Training architectures; the batch ones train with BatchTopK and are saved as JumpReLU."""
K_ARCHS = ("topk", *BATCH_ARCHS)
"""Architectures whose sparsity is set by k (the others by l1)."""
B_DEC_INITS = ("mean", "geometric_median")
RESAMPLE_BIASES = ("centred", "density")


@dataclass(frozen=True)
class TrainConfig:
    """How to train one dictionary."""

    kind: str = "transcoder"
    """'transcoder' (target = the MLP output) or 'sae' (target = input)."""
    arch: str = "topk"
    """'relu' (L1 penalty), 'topk' (k active latents per token), 'jumprelu' (L0 penalty), 'batchtopk'
    (k active per token on average over the batch; saved as JumpReLU with the learned threshold) or
    'matryoshka_batchtopk' (batchtopk plus nested prefix losses)."""
    expansion: int = 8
    """d_sae = expansion * d_in."""
    k: int = 32
    """Active latents per token (topk; the batch average for batchtopk)."""
    l1: float = 0.05
    """Sparsity coefficient: L1 weight (relu) or L0 weight (jumprelu); unused by topk."""
    skip: bool = False
    """Add a linear skip term W_skip (transcoders only)."""
    lr: float = 1e-3
    """Adam learning rate (on activations scaled to E||x||^2 = d; the paper's 4e-4 suits long runs)."""
    batch_size: int = 1024
    """Tokens per step."""
    train_tokens: int = 200_000
    """Training tokens seen in total (steps = train_tokens // batch_size)."""
    warmup_steps: int = 20
    """Linear learning-rate warm-up."""
    decay_fraction: float = 0.2
    """Share of the final steps over which the learning rate decays linearly to 0."""
    dead_after_tokens: int = 50_000
    """A latent that did not fire in this many tokens counts as dead."""
    aux_k: int = 256
    """Dead latents used by the TopK auxiliary loss."""
    aux_coefficient: float = 1 / 32
    """Weight of the TopK auxiliary loss."""
    resample_every: int = 100
    """Steps between dead-latent resamplings (relu/jumprelu; 0 = never)."""
    topk_resample_every: int = 0
    """TopK/BatchTopK: every this many steps (0 = never; AuxK alone), latents that did not fire
    since the last resampling are pointed at badly reconstructed recent inputs
    (`interp.dictionaries.objective._resample_topk`); none in the final decay phase."""
    topk_resample_scale: float = 1.0
    """A resampled latent's encoder norm, as a multiple of the mean norm of the alive latents
    never resampled."""
    topk_resample_bias: str = "centred"
    """A resampled latent's encoder bias: 'centred' (pre-activation 0 at the mean input) or
    'density' (0 at the pool's (1 - k / d_sae) quantile, so it fires on about as many tokens as
    an average latent)."""
    topk_resample_max_share: float = 1.0
    """At most this share of d_sae is resampled at once (those silent longest first; the rest
    wait for the next resampling). 1 = every silent latent."""
    checkpoint_every: int = 0
    """Steps between checkpoints (0 = none)."""
    b_dec_init: str = "mean"
    """Decoder bias start: 'mean' or 'geometric_median' of the targets (Gao et al. 2024)."""
    seed: int = 0
    """Seed of the initialisation and of the batch order."""
    threshold_lr: float = 0.01
    """Step of the batchtopk threshold's moving average towards the batch's smallest kept activation
    (SAELens's default; it settles within a few times 1 / threshold_lr steps, so raise it for runs
    of only a few hundred steps)."""
    matryoshka_fractions: tuple[float, ...] = (0.0625, 0.25)
    """Matryoshka prefix ends as shares of d_sae (d_sae itself is always the last level)."""
    max_bad_batches: int = 10
    """Batches with a NaN/Inf input, target, loss or resulting weight are skipped (the weights
    before the step kept) and counted; one more than this stops training with an error."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind {self.kind!r} is not valid; choose one of {KINDS}")
        if self.arch not in ARCHS:
            raise ValueError(f"arch {self.arch!r} is not valid; choose one of {ARCHS}")
        for name in ("expansion", "k", "batch_size", "train_tokens", "aux_k", "dead_after_tokens"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive int, got {getattr(self, name)!r}")
        if not isinstance(self.topk_resample_every, int) or self.topk_resample_every < 0 \
                or not self.topk_resample_scale > 0 or not 0 < self.topk_resample_max_share <= 1:
            raise ValueError(f"need topk_resample_every an int >= 0, topk_resample_scale > 0 and "
                             f"0 < topk_resample_max_share <= 1, got {self.topk_resample_every!r}, "
                             f"{self.topk_resample_scale!r}, {self.topk_resample_max_share!r}")
        if self.topk_resample_bias not in RESAMPLE_BIASES:
            raise ValueError(f"topk_resample_bias {self.topk_resample_bias!r} is not valid; "
                             f"choose one of {RESAMPLE_BIASES}")
        if self.train_tokens < self.batch_size:
            raise ValueError(f"train_tokens ({self.train_tokens}) must be at least one batch ({self.batch_size})")
        if not (self.lr > 0 and self.l1 >= 0 and 0 <= self.decay_fraction < 1 and self.aux_coefficient >= 0):
            raise ValueError(f"need lr > 0, l1 >= 0, 0 <= decay_fraction < 1, aux_coefficient >= 0; got lr={self.lr}, "
                             f"l1={self.l1}, decay_fraction={self.decay_fraction}, aux={self.aux_coefficient}")
        if self.b_dec_init not in B_DEC_INITS:
            raise ValueError(f"b_dec_init {self.b_dec_init!r} is not valid; choose one of {B_DEC_INITS}")
        if not isinstance(self.max_bad_batches, int) or self.max_bad_batches < 0:
            raise ValueError(f"max_bad_batches must be an int >= 0, got {self.max_bad_batches!r}")
        if not 0 < self.threshold_lr <= 1:
            raise ValueError(f"threshold_lr must be in (0, 1], got {self.threshold_lr!r}")
        fr = tuple(self.matryoshka_fractions)
        object.__setattr__(self, "matryoshka_fractions", fr)
        if self.arch == "matryoshka_batchtopk" and (not fr or any(not 0 < f < 1 for f in fr)
                                                    or any(a >= b for a, b in zip(fr, fr[1:]))):
            raise ValueError(f"matryoshka_fractions must be strictly increasing shares of d_sae in (0, 1), "
                             f"got {self.matryoshka_fractions!r}")
        if self.skip and self.kind != "transcoder":
            raise ValueError("skip=True is only valid for kind='transcoder'")

    @property
    def n_steps(self) -> int:
        return self.train_tokens // self.batch_size

    def to_dict(self) -> dict:
        """The fields as JSON values (tuples as lists, so a stored copy compares equal)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
