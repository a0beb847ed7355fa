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
   at once, with the bias `topk_resample_bias`); relu/jumprelu resample them every
   `resample_every` steps towards inputs the dictionary reconstructs worst (Anthropic's
   resampling, simplified).
5. Several dictionaries train in lockstep (`train_dictionaries`): step s of each, then s + 1,
   so batches that share one activation chunk (`shared_site_batches`) pay for one model pass;
   each run is exactly what it would be alone.
6. Every `checkpoint_every` steps the weights, Adam moments, counters and step go to a
   checkpoint (safetensors, no pickle); a run started with the same config resumes there and
   reproduces the uninterrupted run exactly.

`TrainConfig` lives in `interp.dictionaries.train_config`; step 1's start and the final fold
of the scale factors into the weights in `interp.dictionaries.initialisation`; the loss and
the resamplings of steps 2-4 in `interp.dictionaries.objective`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from interp.dictionaries.activations import ActivationBatches
from interp.dictionaries.batchtopk import BATCH_ARCHS, updated_threshold
from interp.dictionaries.checkpoint import restore_training as _restore, save_training as _save
from interp.dictionaries.dictionary import Dictionary
from interp.dictionaries.finite import BatchGuard
from interp.dictionaries.initialisation import fold_scales, init_from_data, make_dictionary
from interp.dictionaries.objective import RESAMPLE_POOL, _loss, _resample, _resample_topk, _track_firing
from interp.dictionaries.train_config import K_ARCHS, TrainConfig


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
            s = self.state
            s.x_scale, s.y_scale, s.scale = init_from_data(self.model, batches, config)
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
            dead = _to_resample(state.tokens_since_fired, silent, config.topk_resample_max_share)
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
        fold_scales(self.model, self.state.x_scale, self.state.y_scale)
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


def _to_resample(tokens_since_fired: torch.Tensor, silent: torch.Tensor, max_share: float) -> torch.Tensor:
    """(d_sae,) bool: of the `silent` latents (bool, d_sae), at most ``floor(max_share * d_sae)``
    (at least 1), those silent longest first (ties: the lower index)."""
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
