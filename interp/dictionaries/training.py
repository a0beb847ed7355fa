"""One training loop for transcoders and SAEs (an SAE is a transcoder whose target is its input).

Dunefsky, Chlenski & Nanda (2024), "Transcoders Find Interpretable LLM Feature Circuits";
TopK and its auxiliary loss from Gao et al. (2024), "Scaling and evaluating sparse
autoencoders"; JumpReLU from Rajamanoharan et al. (2024).

SAELens's runner is not used because it trains only SAEs (its loss reconstructs the input
and its data provider yields one activation per token); transcoders need an (input, target)
pair from two sites, so both kinds share this loop instead.

Algorithm
1. Scale inputs and targets by constants so that E||x||^2 = d_in and E||y||^2 = d_out (one
   learning rate fits every site; the factors are folded into the weights at the end, so
   saved decoder rows all have norm 1 / y_scale). Initialise: decoder rows random unit
   vectors, W_enc = W_dec.T (when square) rescaled so the first reconstructions carry 1% of
   the target's variance (close to the mean predictor), ``b_dec`` = the mean or the
   geometric median (Weiszfeld; `b_dec_init`) of the target over a sample; where the input
   is not centred by ``b_dec`` (transcoders), ``b_enc = -mean(x) W_enc`` so that every latent
   starts with centred pre-activations. ``scale`` = mean ||y - mean(y)||^2 over the sample, so the reconstruction
   term below is the FVU.
2. Each step s takes batch s of `ActivationBatches` (a pure function of seed and step) and
   minimises::

       L = ||y_hat - y||^2 / scale
           + l1 * sum_i z_i ||W_dec[i]|| / sqrt(scale)      (relu: L1 on activations)
           + l1 * ||z||_0                                   (jumprelu: straight-through L0)
           + aux_coefficient * ||e_hat - e||^2 / scale      (topk, batchtopk: e = y - y_hat, e_hat
                                                              built from the aux_k best dead latents)

   'batchtopk' keeps the batch * k largest activations of the batch and learns the global
   threshold that the saved JumpReLU dictionary uses; 'matryoshka_batchtopk' adds nested
   prefix reconstruction terms (`interp.dictionaries.batchtopk`).

3. Adam with linear warm-up over `warmup_steps` and linear decay over the last
   `decay_fraction` of steps. W_dec's rows are put back on the unit sphere after each step
   (decoder-norm handling, as Gao et al.; the drift per step is tiny, so no compensation).
4. Dead latents = not fired in the last `dead_after_tokens` tokens. TopK revives them with
   the auxiliary loss (and, with `topk_resample_every`, by resampling those silent since the
   last resampling towards badly reconstructed inputs, at most `topk_resample_max_share` of them
   at once, with the bias `topk_resample_bias`); relu/jumprelu resample them every `resample_every` steps towards
   inputs the dictionary reconstructs worst (Anthropic's resampling, simplified).
5. Several dictionaries train in lockstep (`train_dictionaries`): step s of each, then s + 1,
   so batches that share one activation chunk (`shared_site_batches`) pay for one model pass;
   each run is exactly what it would be alone.
6. Every `checkpoint_every` steps the weights, Adam moments, counters and step go to a
   checkpoint (safetensors, no pickle); a run started with the same config resumes there and
   reproduces the uninterrupted run exactly.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
from tqdm.auto import tqdm

from interp.dictionaries.activations import ActivationBatches
from interp.dictionaries.batchtopk import BATCH_ARCHS, matryoshka_widths, updated_threshold
from interp.dictionaries.checkpoint import restore_training as _restore, save_training as _save
from interp.dictionaries.dictionary import ARCHS as MODULE_ARCHS, KINDS, Dictionary
from interp.dictionaries.finite import BatchGuard
from interp.dictionaries.objective import RESAMPLE_POOL, _encode, _loss, _resample, _resample_topk, _track_firing


ARCHS = (*MODULE_ARCHS, *BATCH_ARCHS)
"""Training architectures; the batch ones train with BatchTopK and are saved as JumpReLU."""
K_ARCHS = ("topk", *BATCH_ARCHS)
"""Architectures whose sparsity is set by k (the others by l1)."""
B_DEC_INITS = ("mean", "geometric_median")
RESAMPLE_BIASES = ("centred", "density")
INIT_VARIANCE_SHARE = 0.01
"""Initial reconstructions carry this share of the target's variance (see `_init_from_data`)."""


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
            raise ValueError(f"topk_resample_bias {self.topk_resample_bias!r} is not valid; choose one of {RESAMPLE_BIASES}")
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


@dataclass
class TrainState:
    """Everything a checkpoint must restore besides the weights and Adam moments."""

    step: int = 0
    scale: float = 1.0
    x_scale: float = 1.0
    """Inputs are trained at x * x_scale, so that E||x||^2 = d_in (scale-free learning rates)."""
    y_scale: float = 1.0
    """Targets likewise at y * y_scale (= x_scale for an SAE); folded into the weights at the end."""
    tokens_since_fired: torch.Tensor | None = None
    history: list[dict] = field(default_factory=list)
    skipped_batches: int = 0
    """Batches skipped for non-finite values (`interp.dictionaries.finite`)."""
    threshold: float = 0.0
    """The batchtopk threshold (moving average of the smallest kept activation)."""
    first_bad_batch: int | None = None
    resampled: torch.Tensor | None = None
    """(d_sae,) bool: latents TopK resampling has moved (left out of its reference norm)."""


@dataclass
class TrainResult:
    """A trained dictionary and how training went."""

    dictionary: Dictionary
    history: list[dict]
    """Per logged step: step, loss, fvu, l0, dead_fraction, lr."""
    config: TrainConfig
    dead_fraction: float
    """Share of latents not fired in the last `dead_after_tokens` training tokens."""
    skipped_batches: int = 0
    """Batches skipped for a NaN/Inf input, target, loss or resulting weight."""


def make_dictionary(config: TrainConfig, d_in: int, d_out: int) -> Dictionary:
    """A freshly initialised dictionary for `config` (seeded)."""
    batch = config.arch in BATCH_ARCHS  # trained with BatchTopK, used (and saved) as JumpReLU
    model = Dictionary(d_in, config.expansion * d_in, d_out, kind=config.kind,
                       arch="jumprelu" if batch else config.arch,
                       k=config.k if config.arch == "topk" else None, skip=config.skip)
    model.init_weights(torch.Generator().manual_seed(config.seed))
    if batch:
        if config.k > model.d_sae:
            raise ValueError(f"{config.arch} needs k in 1..d_sae={model.d_sae}, got {config.k}")
        with torch.no_grad():
            model.threshold.zero_()
        model.threshold.requires_grad_(False)  # set by the moving average, not by gradients
        if config.arch == "matryoshka_batchtopk":
            matryoshka_widths(model.d_sae, config.matryoshka_fractions)  # refused now, not at step 1
    return model


def geometric_median(points: torch.Tensor, iterations: int = 50, tol: float = 1e-6) -> torch.Tensor:
    """(d,) point minimising the summed Euclidean distance to `points` (n, d) (Weiszfeld's algorithm,
    started at the mean; SAELens initialises an SAE's b_dec the same way)."""
    median = points.mean(0)
    for _ in range(iterations):
        w = 1.0 / (points - median).norm(dim=-1).clamp_min(1e-8)  # (n,)
        new = (w[:, None] * points).sum(0) / w.sum()
        if (new - median).norm() <= tol * median.norm().clamp_min(1e-12):
            return new
        median = new
    return median


@torch.no_grad()
def _init_from_data(model: Dictionary, batches: ActivationBatches, state: "TrainState",
                    config: "TrainConfig") -> None:
    """Fix the input/target scale factors, set b_dec to the (scaled) target mean or geometric
    median and scale W_enc so the first reconstructions have the target's spread; `state.scale` =
    the scaled target's mean squared distance to its mean."""
    x, y = batches.sample(8192)
    state.x_scale = math.sqrt(x.shape[1] / float(x.pow(2).sum(-1).mean().clamp_min(1e-12)))
    state.y_scale = state.x_scale if model.kind == "sae" else \
        math.sqrt(y.shape[1] / float(y.pow(2).sum(-1).mean().clamp_min(1e-12)))
    x, y = x * state.x_scale, y * state.y_scale
    mean = y.mean(0)
    model.b_dec.copy_(mean if config.b_dec_init == "mean" else geometric_median(y))
    state.scale = float((y - mean).pow(2).sum(-1).mean().clamp_min(1e-12))
    centre = not model.apply_b_dec_to_input
    if centre:
        # A transcoder's input is not centred by b_dec (b_dec lives in the output space), and the
        # normalised residual has a large mean: uncentred, the latents whose random directions
        # point along it win the top-k on every token and the rest start dead (measured on
        # SmolLM2 layer 15: 53% dead on held-out tokens vs 49% with this start).
        model.b_enc.copy_(-(x.mean(0) @ model.W_enc))
    enc, _ = _encode(model, x, config)  # the training-time activation (BatchTopK selects across the sample)
    spread = float((model.decode_sparse(enc, x) - model.b_dec).pow(2).sum(-1).mean())
    if spread > 0:
        # Random decoder directions add their variance to the error: start at 1% of the target's
        # variance, so the first reconstructions are close to the mean predictor (FVU ~ 1).
        factor = math.sqrt(INIT_VARIANCE_SHARE * state.scale / spread)
        model.W_enc.mul_(factor)
        if centre:
            model.b_enc.mul_(factor)  # -mean @ W_enc scales with W_enc


@torch.no_grad()
def _fold_scales(model: Dictionary, state: "TrainState") -> None:
    """Turn the dictionary trained on (x * x_scale -> y * y_scale) into one on raw activations."""
    sx, sy = state.x_scale, state.y_scale
    # An SAE's pre = (sx x - b_dec) W_enc = (x - b_dec / sx) (sx W_enc), and sx == sy there.
    model.W_enc.mul_(sx)
    model.W_dec.div_(sy)
    model.b_dec.div_(sy)
    if model.skip:
        model.W_skip.mul_(sx / sy)


def _lr_factor(step: int, config: TrainConfig) -> float:
    warm = min(1.0, (step + 1) / max(1, config.warmup_steps))
    decay_start = int(config.n_steps * (1 - config.decay_fraction))
    if step < decay_start or config.decay_fraction == 0:
        return warm
    return warm * max(0.0, (config.n_steps - step) / max(1, config.n_steps - decay_start))


class Trainer:
    """The state of one dictionary's training run, advanced one batch at a time (steps 1-5).

    `train_dictionary` drives one; `train_dictionaries` drives several in lockstep on batches
    that share one activation pass (SAELens's multi-SAE runner does the same for SAEs).
    """

    def __init__(self, batches: ActivationBatches, config: TrainConfig, d_in: int, d_out: int, *,
                 checkpoint=None, device: str | torch.device | None = None) -> None:
        on_device = device is not None and torch.device(device).type != "cpu"
        if on_device:  # activations arrive on the CPU; each batch moves on its own
            batches = _OnDevice(batches, torch.device(device))
        self.batches, self.config, self.checkpoint = batches, config, checkpoint
        self.model = make_dictionary(config, d_in, d_out)
        if on_device:
            self.model.to(device)
        # fused: one kernel per parameter instead of ~6 elementwise passes (they dominate a TopK step).
        self.opt = torch.optim.Adam(self.model.parameters(), lr=config.lr, betas=(0.9, 0.999), fused=True)
        self.state = TrainState(tokens_since_fired=torch.zeros(self.model.d_sae, dtype=torch.long,
                                                               device=self.model.W_enc.device))
        resumed = checkpoint is not None and _restore(checkpoint, self.model, self.opt, self.state, config)
        if not resumed:
            _init_from_data(self.model, batches, self.state, config)
        self.guard = BatchGuard(config.max_bad_batches, self.state.skipped_batches, self.state.first_bad_batch)

    @property
    def done(self) -> bool:
        return self.state.step >= self.config.n_steps

    def step(self, log_every: int = 10) -> dict | None:
        """One optimisation step on batch ``state.step``; the logged metrics when logged."""
        model, opt, state, config = self.model, self.opt, self.state, self.config
        x, y = self.batches.batch(state.step)
        x, y = x * state.x_scale, y * state.y_scale
        for group in opt.param_groups:
            group["lr"] = config.lr * _lr_factor(state.step, config)
        if _guarded_step(self.guard, model, opt, x, y, state, config):  # a NaN/Inf batch: skipped
            state.skipped_batches, state.first_bad_batch = self.guard.skipped, self.guard.first_bad
            state.step += 1
            return None
        loss, metrics, enc, y_hat = self.guard.last
        _track_firing(model, enc, state, x.shape[0])
        if config.arch in BATCH_ARCHS:
            state.threshold = updated_threshold(state.threshold, enc.acts.detach(), config.threshold_lr)
            with torch.no_grad():
                model.threshold.fill_(state.threshold)
        if config.arch not in K_ARCHS and config.resample_every and (state.step + 1) % config.resample_every == 0 \
                and state.step + 1 < int(config.n_steps * (1 - config.decay_fraction)):
            _resample(model, opt, x, y, y_hat.detach(), state, config)
        every = config.topk_resample_every
        if config.arch in K_ARCHS and every and (state.step + 1) % every == 0 \
                and state.step + 1 < int(config.n_steps * (1 - config.decay_fraction)):
            silent = state.tokens_since_fired >= every * config.batch_size
            dead = _to_resample(state.tokens_since_fired, every * config.batch_size,
                                config.topk_resample_max_share)
            if bool(dead.any()):
                px, py = self.batches.pool(state.step, RESAMPLE_POOL)
                px, py = px * state.x_scale, (px * state.x_scale if py is px else py * state.y_scale)
                if state.resampled is None:
                    state.resampled = torch.zeros_like(dead)
                _resample_topk(model, opt, px, py, dead, state.resampled, state.step, config.seed,
                               config.topk_resample_scale, silent=silent,
                               density=config.k / model.d_sae if config.topk_resample_bias == "density" else None)
                state.tokens_since_fired[dead] = 0
        state.step += 1
        logged = None
        if state.step % log_every == 0 or state.step == config.n_steps:
            metrics.update(step=state.step, lr=opt.param_groups[0]["lr"], dead_fraction=_dead(state, config))
            state.history.append(metrics)
            logged = metrics
        if self.checkpoint is not None and config.checkpoint_every and state.step % config.checkpoint_every == 0:
            _save(self.checkpoint, model, opt, state, config)
        return logged

    def finish(self) -> TrainResult:
        """Fold the activation scales into the weights and return the trained dictionary."""
        if self.checkpoint is not None and self.config.checkpoint_every and \
                self.state.step % self.config.checkpoint_every:
            _save(self.checkpoint, self.model, self.opt, self.state, self.config)  # the finished state
        _fold_scales(self.model, self.state)
        self.model.eval()
        return TrainResult(self.model, self.state.history, self.config, _dead(self.state, self.config),
                           self.state.skipped_batches)


def _guarded_step(guard: BatchGuard, model: Dictionary, opt: torch.optim.Optimizer, x: torch.Tensor,
                  y: torch.Tensor, state: TrainState, config: TrainConfig) -> bool:
    """One optimiser step unless a NaN/Inf shows (then True: the batch is skipped, weights unchanged)."""
    if guard.bad_inputs(state.step, x, y):
        return True
    guard.last = loss, _, _, _ = _loss(model, x, y, state, config)
    if guard.bad_loss(state.step, loss):
        return True
    guard.keep(model, opt)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    model.renormalize_decoder()
    if config.arch == "jumprelu":
        with torch.no_grad():
            model.threshold.clamp_(min=1e-6)
    return guard.bad_weights(state.step, model, opt)


class _OnDevice:
    """`ActivationBatches` whose batches and samples are moved to `device` (an SAE's target stays
    the same tensor as its input)."""

    def __init__(self, batches: ActivationBatches, device: torch.device) -> None:
        self.inner, self.device = batches, device

    def _move(self, xy: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = xy
        moved = x.to(self.device, non_blocking=True)
        return moved, (moved if y is x else y.to(self.device, non_blocking=True))

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self._move(self.inner.batch(step))

    def sample(self, n_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self._move(self.inner.sample(n_tokens))

    def pool(self, step: int, n_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self._move(self.inner.pool(step, n_tokens))


def train_dictionary(batches: ActivationBatches, config: TrainConfig, d_in: int, d_out: int, *,
                     checkpoint=None, progress: bool = True, log_every: int = 10) -> TrainResult:
    """Train one dictionary on `batches` ((batch, d_in) inputs, (batch, d_out) targets).

    `checkpoint`: an object with ``save(tensors, meta)`` and ``load() -> (tensors, meta) | None``
    (`interp.dictionaries.checkpoint.StoreCheckpoint`); training resumes from it when it holds
    a checkpoint of the same config.
    """
    return train_dictionaries([batches], [config], [(d_in, d_out)],
                              checkpoints=[checkpoint], progress=progress, log_every=log_every)[0]


def train_dictionaries(batches: list[ActivationBatches], configs: list[TrainConfig], dims: list[tuple[int, int]],
                       *, checkpoints: list | None = None, progress: bool = True,
                       log_every: int = 10, device: str | torch.device | None = None) -> list[TrainResult]:
    """Train several dictionaries in lockstep: step s of every run, then step s + 1.

    When the `batches` share one fetch (`interp.dictionaries.activations.shared_site_batches`),
    each activation chunk is computed once for all of them. Run i is exactly what
    ``train_dictionary(batches[i], configs[i], *dims[i])`` gives on its own (same seeds, same
    data, same checkpoint behaviour). `device`: where the dictionaries train (None: the CPU,
    where the activations are; a GPU gets each batch as it is drawn).
    """
    if not len(batches) == len(configs) == len(dims) or not configs:
        raise ValueError(f"need one batches, config and (d_in, d_out) per dictionary, got "
                         f"{len(batches)}, {len(configs)}, {len(dims)}")
    checkpoints = checkpoints or [None] * len(configs)
    trainers = [Trainer(b, c, d_in, d_out, checkpoint=ck, device=device)
                for b, c, (d_in, d_out), ck in zip(batches, configs, dims, checkpoints)]
    total = sum(c.n_steps for c in configs)
    name = f"train {configs[0].kind} {configs[0].arch}" + (f" x{len(configs)}" if len(configs) > 1 else "")
    bar = tqdm(total=total, initial=sum(t.state.step for t in trainers), desc=name, disable=not progress)
    while not all(t.done for t in trainers):
        step = min(t.state.step for t in trainers if not t.done)
        for t in trainers:
            if t.state.step == step and not t.done:
                logged = t.step(log_every)
                bar.update(1)
                if logged is not None and t is trainers[0]:
                    bar.set_postfix(loss=f"{logged['loss']:.3f}", L0=f"{logged['l0']:.1f}",
                                    FVU=f"{logged['fvu']:.3f}", dead=f"{logged['dead_fraction']:.0%}")
    bar.close()
    return [t.finish() for t in trainers]


def _to_resample(tokens_since_fired: torch.Tensor, silent_for: int, max_share: float) -> torch.Tensor:
    """(d_sae,) bool: the latents silent for `silent_for` tokens, at most ``floor(max_share *
    d_sae)`` (at least 1) of them, those silent longest first (ties: the lower index)."""
    silent = tokens_since_fired >= silent_for
    cap = max(1, int(max_share * len(silent)))
    if int(silent.sum()) <= cap:
        return silent
    # Stable sort on -tokens: longest silent first, ties by index.
    order = torch.sort(-tokens_since_fired, stable=True).indices[:cap]
    picked = torch.zeros_like(silent)
    picked[order] = True
    return picked


def _dead(state: TrainState, config: TrainConfig) -> float:
    return float((state.tokens_since_fired >= config.dead_after_tokens).float().mean())
