"""Baseline token attributions that ReAGent is compared against, behind ReAGent's interface.

Each is ``method(adapter, tokens, target=None, config) -> AttributionResult`` (see
`interp.methods.attribution.targets` for targets). Special tokens always score 0.

1. ``random_attribution``  - i.i.d. Uniform(0, 1) scores: the floor of every faithfulness metric.
2. ``attention_last``      - last layer's attention from the last position, mean over heads.
3. ``attention_rollout``   - Abnar & Zuidema (2020): per layer ``A~ = (mean_h A + I) / 2``,
   rows renormalised, multiplied from the first to the last layer; the last position's row.
4. ``gradient_norm``       - ``||d v / d e_i||_2`` over the embedding e_i of token i (Li et al. 2016).
5. ``input_x_gradient``    - ``sum_d e_id * d v / d e_id`` (Shrikumar et al. 2016).
6. ``integrated_gradients``- ``sum_d (e_id - e'_id) * mean_a d v / d e_id (e' + a (e - e'))``
   with the zero baseline e' at attributable positions (Sundararajan et al. 2017), Riemann
   (Gauss-Legendre, Captum's default) over `n_steps` points.
7. ``occlusion``           - ``v(x) - v(x with e_i = 0)``, one forward pass for all i (the
   leave-one-out / LIME-style occlusion the ReAGent paper lists).

v is the target value (``p(y)`` by default). Gradients are taken with respect to the output of
``hook_embed`` (token embeddings, before positional embeddings for absolute-position models).
Gradient methods use Captum (`Saliency`, `InputXGradient`, `IntegratedGradients`) on a forward
function that splices the embeddings in through the adapter's embed site.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from interp.methods.attribution.targets import AttributionResult, Target, check_tokens, evaluate, resolve_target, special_mask
from interp.models.interventions import ReplaceActivation


@dataclass(frozen=True)
class BaselineConfig:
    """Settings shared by the baseline attributions."""

    n_steps: int = 50
    """Integrated gradients: interpolation points along the path."""
    internal_batch_size: int = 25
    """Integrated gradients: path points per forward/backward pass."""
    seed: int = 0
    """Random attribution: seed of the scores."""

    def __post_init__(self) -> None:
        if self.n_steps < 1:
            raise ValueError(f"n_steps must be >= 1, got {self.n_steps}")
        if self.internal_batch_size < 1:
            raise ValueError(f"internal_batch_size must be >= 1, got {self.internal_batch_size}")


def _result(adapter, tokens, target: Target, scores: torch.Tensor, method: str, **extra) -> AttributionResult:
    scores = scores.detach().float().cpu().masked_fill(special_mask(adapter, tokens).cpu(), 0.0)
    return AttributionResult(adapter.to_str_tokens(tokens), tokens.cpu(), scores, method, target.label, dict(extra))


def _setup(adapter, tokens, target):
    tokens = check_tokens(adapter, tokens)
    return tokens, resolve_target(adapter, tokens, target)


def random_attribution(adapter, tokens, target=None, config: BaselineConfig = BaselineConfig()) -> AttributionResult:
    """Uniform(0, 1) scores, seeded: the floor."""
    tokens, target = _setup(adapter, tokens, target)
    gen = torch.Generator().manual_seed(config.seed)
    return _result(adapter, tokens, target, torch.rand(tokens.numel(), generator=gen), "random", seed=config.seed)


def _patterns(adapter, tokens) -> list[torch.Tensor]:
    names = [adapter.sites(layer).attn_pattern for layer in range(adapter.info.n_layers)]
    cache = adapter.run(tokens[None], names=names).cache
    return [cache[n][0].float().mean(0) for n in names]  # per layer (query, key), mean over heads


def attention_last(adapter, tokens, target=None, config: BaselineConfig = BaselineConfig()) -> AttributionResult:
    """Mean-over-heads attention of the last position in the last layer (target-independent)."""
    tokens, target = _setup(adapter, tokens, target)
    site = adapter.sites(adapter.info.n_layers - 1).attn_pattern
    pattern = adapter.run(tokens[None], names=[site]).cache[site][0].float()  # (head, query, key)
    return _result(adapter, tokens, target, pattern.mean(0)[-1], "attention_last")


def attention_rollout(adapter, tokens, target=None, config: BaselineConfig = BaselineConfig()) -> AttributionResult:
    """Attention rollout (Abnar & Zuidema, 2020) to the last position (target-independent)."""
    tokens, target = _setup(adapter, tokens, target)
    eye = torch.eye(tokens.numel())
    rollout = eye
    for attn in _patterns(adapter, tokens):
        mixed = 0.5 * attn.cpu() + 0.5 * eye  # the residual connection carries half of each position
        mixed = mixed / mixed.sum(-1, keepdim=True)
        rollout = mixed @ rollout
    return _result(adapter, tokens, target, rollout[-1], "attention_rollout")


def _embed_forward(adapter, tokens: torch.Tensor, target: Target) -> tuple[Callable, torch.Tensor]:
    """A Captum forward ``f(embeds (batch, pos, d_model)) -> (batch,)`` and the clean embeddings (1, pos, d)."""
    site = adapter.embed_site
    clean = adapter.run(tokens[None], names=[site]).cache[site]

    def forward(embeds: torch.Tensor) -> torch.Tensor:
        batch = tokens.expand(embeds.shape[0], -1)
        splice = ReplaceActivation(site, lambda act: embeds.to(act.dtype))
        value, _, _ = evaluate(adapter, target, batch, interventions=[splice], keep_grad=True)
        return value

    return forward, clean


def gradient_norm(adapter, tokens, target=None, config: BaselineConfig = BaselineConfig()) -> AttributionResult:
    """L2 norm of the target's gradient w.r.t. each token embedding (Captum `Saliency`)."""
    from captum.attr import Saliency

    tokens, target = _setup(adapter, tokens, target)
    forward, clean = _embed_forward(adapter, tokens, target)
    grads = Saliency(forward).attribute(clean.clone().requires_grad_(), abs=False)  # (1, pos, d_model)
    return _result(adapter, tokens, target, grads[0].norm(dim=-1), "gradient_norm")


def input_x_gradient(adapter, tokens, target=None, config: BaselineConfig = BaselineConfig()) -> AttributionResult:
    """``sum_d e * dv/de`` per token (Captum `InputXGradient`)."""
    from captum.attr import InputXGradient

    tokens, target = _setup(adapter, tokens, target)
    forward, clean = _embed_forward(adapter, tokens, target)
    attr = InputXGradient(forward).attribute(clean.clone().requires_grad_())
    return _result(adapter, tokens, target, attr[0].sum(-1), "input_x_gradient")


def integrated_gradients(adapter, tokens, target=None, config: BaselineConfig = BaselineConfig()) -> AttributionResult:
    """Integrated gradients from the zero embedding (Captum `IntegratedGradients`), summed over d_model."""
    from captum.attr import IntegratedGradients

    tokens, target = _setup(adapter, tokens, target)
    forward, clean = _embed_forward(adapter, tokens, target)
    # Special tokens keep their embedding on the whole path: BOS is never "removed".
    baseline = clean * special_mask(adapter, tokens)[None, :, None]
    attr, delta = IntegratedGradients(forward).attribute(
        clean.clone(), baselines=baseline, n_steps=config.n_steps,
        internal_batch_size=config.internal_batch_size, return_convergence_delta=True)
    return _result(adapter, tokens, target, attr[0].sum(-1), "integrated_gradients",
                   n_steps=config.n_steps, convergence_delta=float(delta.abs().max()))


def occlusion(adapter, tokens, target=None, config: BaselineConfig = BaselineConfig()) -> AttributionResult:
    """Drop in the target when one token's embedding is zeroed; all tokens in one batch.

    Hand-written rather than Captum `Occlusion`: it slides over the input tensor one forward
    per window, while zeroing row i of copy i lets one batched pass cover every token.
    """
    tokens, target = _setup(adapter, tokens, target)
    n = tokens.numel()
    keep = 1.0 - torch.eye(n, device=tokens.device)  # (copy, pos): copy i zeroes token i
    keep = torch.cat([torch.ones(1, n, device=tokens.device), keep])
    splice = ReplaceActivation(adapter.embed_site, lambda act: act * keep[:, :, None].to(act.dtype))
    values, _, _ = evaluate(adapter, target, tokens.expand(n + 1, -1), interventions=[splice])
    return _result(adapter, tokens, target, values[0] - values[1:], "occlusion")


BASELINES: dict[str, Callable[..., AttributionResult]] = {
    "random": random_attribution,
    "attention_last": attention_last,
    "attention_rollout": attention_rollout,
    "gradient_norm": gradient_norm,
    "input_x_gradient": input_x_gradient,
    "integrated_gradients": integrated_gradients,
    "occlusion": occlusion,
}
