"""The loss of one training step and dead-latent handling (steps 2 and 4 of
`interp.dictionaries.training`, whose module doc states them).

- `_encode`: latent activations as training sees them (BatchTopK across the batch for the
  batch archs; the straight-through L0 for jumprelu).
- `_loss`: reconstruction over the target's variance, plus the arch's sparsity term (L1,
  L0, or TopK's auxiliary loss on dead latents; Matryoshka adds its nested prefix losses).
- `_track_firing` / `_resample`: tokens since each latent last fired, and Anthropic-style
  resampling of dead latents towards the worst-reconstructed inputs (relu/jumprelu).
- `_resample_topk`: the same for TopK, with the new encoder columns at a multiple of the
  never-resampled alive latents' norm, centred, so that a resampled latent wins the top-k on
  inputs like the one it was pointed at (at 0.2x the scale, as `_resample` does, it never would).
"""

from __future__ import annotations

import math
import torch

from interp.dictionaries.batchtopk import BATCH_ARCHS, batch_topk, matryoshka_widths, prefix_errors
from interp.dictionaries.dictionary import Dictionary, Encoded

# `TrainConfig` / `TrainState` in the annotations are `interp.dictionaries.training`'s; they are
# not imported, as that module imports this one (annotations are not evaluated).


def _encode(model: Dictionary, x: torch.Tensor, config: TrainConfig) -> tuple[Encoded, torch.Tensor | None]:
    """Latent activations, plus the differentiable L0 for jumprelu (one encoder pass)."""
    if config.arch in BATCH_ARCHS:
        return Encoded(batch_topk(model.pre_activations(x).relu(), config.k), None, None), None
    if model.arch != "jumprelu":
        return model.encode_sparse(x), None
    from interp.dictionaries.dictionary import _JumpReLU, _Step

    pre = model.pre_activations(x).relu()
    return Encoded(_JumpReLU.apply(pre, model.threshold), None, None), _Step.apply(pre, model.threshold).sum(-1)


def _aux_loss(model: Dictionary, x: torch.Tensor, err: torch.Tensor, dead: torch.Tensor,
              config: TrainConfig, scale: float) -> torch.Tensor:
    """TopK auxiliary loss: the best `aux_k` dead latents reconstruct the residual error."""
    dead_idx = dead.nonzero().squeeze(-1)
    x_in = model._input(x)
    pre = torch.addmm(model.b_enc[dead_idx], x_in, model.W_enc[:, dead_idx])  # (batch, n_dead)
    values, idx = pre.topk(min(config.aux_k, len(dead_idx)), dim=-1)
    err_hat = torch.nn.functional.embedding_bag(idx, model.W_dec[dead_idx], per_sample_weights=values.relu(),
                                                mode="sum")
    return (err_hat - err).pow(2).sum(-1).mean() / scale


def _loss(model: Dictionary, x: torch.Tensor, y: torch.Tensor, state: TrainState, config: TrainConfig):
    """(loss, metrics dict, Encoded, y_hat) for one batch."""
    enc, l0_soft = _encode(model, x, config)
    y_hat = model.decode_sparse(enc, x)
    err = y - y_hat
    if config.arch == "matryoshka_batchtopk":
        base = model.b_dec + (x @ model.W_skip.T if model.skip else 0)
        widths = matryoshka_widths(model.d_sae, config.matryoshka_fractions)
        # The inner prefixes, then the last level, which is the full reconstruction already made.
        inner = prefix_errors(enc.acts, model.W_dec, base, y, widths[:-1]).sum()
        loss = (inner + err.pow(2).sum(-1).mean()) / state.scale
    else:
        loss = err.pow(2).sum(-1).mean() / state.scale
    if config.arch == "relu":
        # Decoder rows are renormalised to unit norm every step, so sum_i z_i ||W_dec[i]|| = sum_i z_i.
        loss = loss + config.l1 * enc.acts.sum(-1).mean() / math.sqrt(state.scale)
    elif config.arch == "jumprelu":
        loss = loss + config.l1 * l0_soft.mean()
    else:
        dead = state.tokens_since_fired >= config.dead_after_tokens
        if config.aux_coefficient > 0 and bool(dead.any()):
            loss = loss + config.aux_coefficient * _aux_loss(model, x, err.detach(), dead, config, state.scale)
    with torch.no_grad():
        fvu = err.pow(2).sum() / (y - y.mean(0)).pow(2).sum().clamp_min(1e-12)
    return loss, {"loss": float(loss.detach()), "fvu": float(fvu), "l0": float(enc.l0().mean())}, enc, y_hat


@torch.no_grad()
def _track_firing(model: Dictionary, enc: Encoded, state: TrainState, n_tokens: int) -> None:
    fired = torch.zeros(model.d_sae, dtype=torch.bool)
    if enc.acts is not None:
        fired |= (enc.acts > 0).any(0)
    else:
        fired[enc.indices[enc.values > 0]] = True
    state.tokens_since_fired += n_tokens
    state.tokens_since_fired[fired] = 0


@torch.no_grad()
def _resample(model: Dictionary, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
              y_hat: torch.Tensor, state: TrainState, config: TrainConfig) -> int:
    """Point dead latents at the worst-reconstructed inputs of this batch; returns how many."""
    dead = (state.tokens_since_fired >= config.dead_after_tokens).nonzero().squeeze(-1)
    if len(dead) == 0:
        return 0
    err = y - y_hat
    g = torch.Generator().manual_seed(config.seed * 7919 + state.step)
    pick = torch.multinomial(err.pow(2).sum(-1) + 1e-12, len(dead), replacement=True, generator=g)
    alive = torch.ones(model.d_sae, dtype=torch.bool)
    alive[dead] = False
    enc_norm = model.W_enc[:, alive].norm(dim=0).mean() if alive.any() else torch.tensor(1.0)
    x_in = model._input(x)[pick]
    model.W_dec[dead] = err[pick] / err[pick].norm(dim=-1, keepdim=True).clamp_min(1e-8)
    model.W_enc[:, dead] = (x_in / x_in.norm(dim=-1, keepdim=True).clamp_min(1e-8)).T * 0.2 * enc_norm
    model.b_enc[dead] = 0.0
    for p, rows in ((model.W_dec, (dead,)), (model.W_enc, (slice(None), dead)), (model.b_enc, (dead,))):
        for moment in ("exp_avg", "exp_avg_sq"):
            if p in opt.state and moment in opt.state[p]:
                opt.state[p][moment][rows] = 0.0
    state.tokens_since_fired[dead] = 0
    return len(dead)


RESAMPLE_POOL = 4096
"""Tokens drawn (from the whole training stream) as candidates for `_resample_topk`."""


@torch.no_grad()
def _resample_topk(model: Dictionary, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                   dead: torch.Tensor, resampled: torch.Tensor, step: int, seed: int, enc_scale: float = 1.0,
                   silent: torch.Tensor | None = None, density: float | None = None) -> int:
    """Point the `dead` latents (bool, d_sae) of a TopK dictionary at badly reconstructed inputs
    of the pool (x, y), already scaled as training sees them; marks them in `resampled` (bool,
    d_sae, updated in place) and returns how many moved. `silent` (bool, d_sae; default `dead`):
    every latent that counts as not alive for the reference norm, when only some are moved.

    Latent i, pointed at pool token j (drawn without replacement, with probability proportional
    to its squared error): decoder row = unit(y_j - y_hat_j); encoder column =
    unit(x_j - mean x) times `enc_scale` x the mean norm of the alive latents never resampled;
    ``b_enc[i] = -(mean x) . column`` (centred as at initialisation). The reference leaves
    resampled latents out: with them in, a multiple > 1 ratchets the mean norm up at every
    resampling (measured on SmolLM2 layer 15, every 25 steps at 1.5x: norms grew 40x and
    training diverged). For the same reason, once no alive latent is left unresampled the new
    columns get the alive latents' mean norm without the multiple: with it, every resampling
    multiplied the norms by `enc_scale` (SmolLM2 layer 15, k 8, 2M tokens at 1.5x: encoder
    norms ~18x the k-16 transcoder's, held-out FVU 4,783). That run's rerun keeps its norms at
    6.9-11.6 but still diverges (held-out FVU 13.9), in loss spikes after resamplings that move
    most of the dictionary at once: at k 8 the recipe's 1.5x is not stable over 2M tokens.
    Tying the norm instead to each token's k-th largest pre-activation revived too few
    (held-out dead share 0.30-0.35 against 0.05). With `density`, each new latent's bias is
    lowered further, to the pool's (1 - density) quantile of its pre-activation: centred, the
    new latents took 98-99.7% of the top-8 slots on every token right after a resampling
    (`interp.jobs.recipe.RECIPE_RESAMPLE_SCALE` has the figures). Adam's moments of the
    moved rows are zeroed.
    """
    idx = dead.nonzero().squeeze(-1)
    if len(idx) == 0:
        return 0
    err = y - model(x)
    g = torch.Generator().manual_seed(seed * 7919 + step)
    pick = torch.multinomial(err.pow(2).sum(-1) + 1e-12, len(idx), replacement=len(idx) > len(x), generator=g)
    x_in = model._input(x)
    mean = x_in.mean(0)
    norms = model.W_enc.norm(dim=0)  # (d_sae,)
    # The multiple applies to never-resampled alive latents only. Once every alive latent has
    # been resampled, new ones get the alive mean itself (x1): a multiple of a mean that
    # already holds resampled latents compounds at every resampling.
    out = dead if silent is None else silent | dead
    for reference, scale in ((~out & ~resampled, enc_scale), (~out, 1.0), (torch.ones_like(dead), 1.0)):
        if reference.any():
            norm = scale * norms[reference].mean()
            break
    direction = x_in[pick] - mean  # (n_dead, d_in)
    direction = direction / direction.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    model.W_dec[idx] = err[pick] / err[pick].norm(dim=-1, keepdim=True).clamp_min(1e-8)
    model.W_enc[:, idx] = direction.T * norm
    model.b_enc[idx] = -(mean @ model.W_enc[:, idx])
    if density is not None:
        # Shift each new latent's threshold to the pool's (1 - density) quantile of its
        # pre-activation, so that it is positive on about `density` of tokens (those most like
        # its token) instead of on every token on its side of the mean.
        pre = torch.addmm(model.b_enc[idx], x_in, model.W_enc[:, idx])  # (pool, n_moved)
        model.b_enc[idx] -= torch.quantile(pre, 1 - density, dim=0).clamp_min(0)
    for p, rows in ((model.W_dec, (idx,)), (model.W_enc, (slice(None), idx)), (model.b_enc, (idx,))):
        for moment in ("exp_avg", "exp_avg_sq"):
            if p in opt.state and moment in opt.state[p]:
                opt.state[p][moment][rows] = 0.0
    resampled[idx] = True
    return len(idx)
