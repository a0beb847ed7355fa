"""What an input attribution explains, and the result every attribution method returns.

Every token-attribution method (`interp.methods.attribution.reagent`, `interp.methods.attribution.baselines`)
is a function ``(adapter, tokens, target, config) -> AttributionResult`` and scores the input
tokens by how much they drive one scalar read off the model at the last position:

1. ``TokenTarget``     - ``p(y | x)``, y the model's own next token (default) or one the user names.
2. ``ContrastTarget``  - ``p(y | x) - p(y' | x)`` (e.g. " she" vs " he").
3. ``SiteTarget``      - any scalar function of one site's activation at the last position:
   a neuron (``neuron_target``: ``mlp.hook_post[..., i]``), a dictionary latent
   (``feature_target``: ``relu(x @ W_enc[:, i] + b_enc[i])`` on the dictionary's input site),
   or a function the user writes. This is feature-level attribution: which input tokens make
   the feature fire.

A target exposes ``value`` (the scalar per batch row, differentiable when the run keeps the
graph) and ``retained`` (does a perturbed input still "produce" the target - ReAGent's
stopping condition): for a token, y is still among the model's top-k predictions; for a
contrast, additionally ``p(y) > p(y')``; for an activation, it keeps at least
``retain_fraction`` of the original value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Union

import torch

from interp.features import FeatureId, FeatureKind


@dataclass
class AttributionResult:
    """Per-token importances of one input towards one target."""

    tokens: list[str]
    """The input tokens as strings (BOS included)."""
    token_ids: torch.Tensor
    """(pos,) input token ids."""
    scores: torch.Tensor
    """(pos,) importance per token; exactly 0 at special tokens (BOS, padding)."""
    method: str
    target: str
    """Human-readable label of the target (e.g. "p(' Paris')")."""
    extra: dict = field(default_factory=dict)
    """Method-specific diagnostics (probe steps, convergence, settings)."""

    def top(self, n: int = 5) -> list[tuple[str, float]]:
        """The `n` highest-scoring tokens as (token, score)."""
        order = torch.argsort(self.scores, descending=True)[:n]
        return [(self.tokens[i], float(self.scores[i])) for i in order.tolist()]


def _last_probs(logits: torch.Tensor) -> torch.Tensor:
    # logits: (batch, pos, vocab) -> (batch, vocab) next-token distribution at the last position
    return torch.softmax(logits[:, -1].float(), dim=-1)


def _in_top_k(logits: torch.Tensor, token_id: int, k: int) -> torch.Tensor:
    last = logits[:, -1]
    # Rank = number of tokens with a strictly larger logit; ties count in favour of y.
    rank = (last > last[:, token_id : token_id + 1]).sum(-1)
    return rank < k


@dataclass(frozen=True)
class TokenTarget:
    """``p(y | x)`` at the last position."""

    token_id: int
    label: str = ""
    sites: tuple[str, ...] = ()
    bounded: bool = True
    """Values lie in [0, 1], so differences lie in [-1, 1]."""

    def value(self, logits: torch.Tensor, cache: dict) -> torch.Tensor:
        """(batch,) probability of y."""
        return _last_probs(logits)[:, self.token_id]

    def retained(self, logits: torch.Tensor, cache: dict, reference: torch.Tensor, top_k: int) -> torch.Tensor:
        """(batch,) bool: y still among the top-k next tokens."""
        return _in_top_k(logits, self.token_id, top_k)


@dataclass(frozen=True)
class ContrastTarget:
    """``p(y | x) - p(y' | x)`` at the last position."""

    token_id: int
    foil_id: int
    label: str = ""
    sites: tuple[str, ...] = ()
    bounded: bool = True

    def __post_init__(self) -> None:
        if self.token_id == self.foil_id:
            raise ValueError(f"contrast target and foil are the same token ({self.token_id}); pick two tokens")

    def value(self, logits: torch.Tensor, cache: dict) -> torch.Tensor:
        probs = _last_probs(logits)
        # Halved so the value lies in [-1/2, 1/2] and differences stay in [-1, 1].
        return (probs[:, self.token_id] - probs[:, self.foil_id]) / 2

    def retained(self, logits: torch.Tensor, cache: dict, reference: torch.Tensor, top_k: int) -> torch.Tensor:
        last = logits[:, -1]
        return _in_top_k(logits, self.token_id, top_k) & (last[:, self.token_id] > last[:, self.foil_id])


@dataclass(frozen=True)
class SiteTarget:
    """A scalar function of one site's activation at the last position."""

    site: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    """(batch, d_site) activation at the last position -> (batch,) value."""
    label: str = ""
    retain_fraction: float = 0.5
    """Stopping condition: the perturbed value keeps at least this fraction of the original."""
    bounded: bool = False

    @property
    def sites(self) -> tuple[str, ...]:
        return (self.site,)

    def value(self, logits: torch.Tensor | None, cache: dict) -> torch.Tensor:
        act = cache[self.site]
        if act.ndim != 3:
            raise ValueError(f"site target needs a (batch, pos, d) site, {self.site} has shape {tuple(act.shape)}")
        return self.fn(act[:, -1].float())

    def retained(self, logits, cache: dict, reference: torch.Tensor, top_k: int) -> torch.Tensor:
        value = self.value(logits, cache)
        ref = reference.to(value.device)
        # For a negative reference, "retained" means staying at least as negative.
        return torch.where(ref >= 0, value >= self.retain_fraction * ref, value <= self.retain_fraction * ref)


Target = Union[TokenTarget, ContrastTarget, SiteTarget]


def neuron_target(adapter, layer: int, index: int) -> SiteTarget:
    """The activation of MLP neuron `index` of block `layer` (``mlp.hook_post``)."""
    site = adapter.sites(layer).mlp_hidden
    adapter.check_index(site, index)
    return SiteTarget(site, lambda act: act[:, index], label=f"{site}[{index}]")


def feature_target(adapter, feature: FeatureId, store=None) -> SiteTarget:
    """A stored feature as a target: neurons directly; SAE/transcoder latents via their encoder.

    Dictionary latents need `store` and a tensors bundle named after the feature's `source`
    holding ``W_enc`` (d_in, d_dict) and ``b_enc`` (d_dict,), read at ``feature.site``.
    """
    kind = FeatureKind.parse(feature.kind)
    if kind == FeatureKind.NEURON:
        adapter.check_site(feature.site)
        index = adapter.check_index(feature.site, int(feature.index))
        return SiteTarget(feature.site, lambda act: act[:, index], label=f"{feature.site}[{index}]")
    if kind not in (FeatureKind.SAE, FeatureKind.TRANSCODER):
        raise ValueError(f"feature kind {kind.value!r} is not supported as a target; valid: neuron, sae, transcoder "
                         "(or build a SiteTarget with your own function)")
    if store is None:
        raise ValueError(f"a {kind.value} latent target needs a store holding dictionary {feature.source!r}")
    bundle = store.load_tensors(feature.source)
    if "W_enc" not in bundle or "b_enc" not in bundle:
        raise ValueError(f"dictionary {feature.source!r} has tensors {sorted(bundle)}; a latent target needs W_enc and b_enc")
    w = bundle["W_enc"][:, feature.index].float()
    b = float(bundle["b_enc"][feature.index])
    adapter.check_site(feature.site)
    return SiteTarget(feature.site, lambda act: torch.relu(act @ w.to(act.device) + b),
                      label=f"{feature.source}:{feature.site}[{feature.index}]")


def _as_token_id(adapter, token: int | str) -> int:
    if isinstance(token, int):
        if not 0 <= token < adapter.info.d_vocab:
            raise ValueError(f"token id {token} is out of range: valid 0..{adapter.info.d_vocab - 1}")
        return token
    return adapter.token_id(token)


def resolve_target(adapter, tokens: torch.Tensor, target=None, contrast: int | str | None = None) -> Target:
    """Turn None (the model's next token), a token string/id or a Target into a Target.

    `tokens`: (pos,) input ids. `contrast`: a foil token for ``p(y) - p(y')``.
    """
    if isinstance(target, (TokenTarget, ContrastTarget, SiteTarget)):
        if contrast is not None:
            raise ValueError("contrast= only combines with a token target, not with a Target object")
        return target
    if target is None:
        logits = adapter.logits(tokens[None])
        token_id = int(logits[0, -1].argmax())
    elif isinstance(target, (int, str)):
        token_id = _as_token_id(adapter, target)
    else:
        raise ValueError(f"target must be None, a token string, a token id or a Target, got {type(target).__name__}")
    name = adapter.decode([token_id])
    if contrast is None:
        return TokenTarget(token_id, label=f"p({name!r})")
    foil = _as_token_id(adapter, contrast)
    return ContrastTarget(token_id, foil, label=f"p({name!r})-p({adapter.decode([foil])!r})")


def evaluate(adapter, target: Target, tokens: torch.Tensor | None = None, interventions=(),
             keep_grad: bool = False) -> tuple[torch.Tensor, torch.Tensor | None, dict]:
    """Run `tokens` (batch, pos) once; return (value (batch,), logits (batch, 1, vocab): the last
    position's, the only one any target reads, cache)."""
    out = adapter.run(tokens, names=target.sites, interventions=interventions, keep_grad=keep_grad,
                      last_position=True)
    return target.value(out.output, out.cache), out.output, out.cache


def special_mask(adapter, tokens: torch.Tensor) -> torch.Tensor:
    """(..., pos) bool: True at special tokens (BOS, EOS, padding and other added specials)."""
    ids = set(getattr(adapter.tokenizer, "all_special_ids", []) or [])
    if adapter.info.bos_token_id is not None:
        ids.add(adapter.info.bos_token_id)
    if not ids:
        return torch.zeros_like(tokens, dtype=torch.bool)
    return torch.isin(tokens, torch.tensor(sorted(ids), device=tokens.device))


def check_tokens(adapter, tokens) -> torch.Tensor:
    """Validate one input: a string or a (pos,) / (1, pos) id tensor -> (pos,) ids."""
    if isinstance(tokens, str):
        tokens = adapter.to_tokens(tokens)[0]
    tokens = torch.as_tensor(tokens, device=adapter.device)
    if tokens.ndim == 2 and tokens.shape[0] == 1:
        tokens = tokens[0]
    if tokens.ndim != 1 or tokens.numel() == 0:
        raise ValueError(f"attribution takes one non-empty input (pos,), got shape {tuple(tokens.shape)}")
    if not (~special_mask(adapter, tokens)).any():
        raise ValueError("the input has no attributable tokens (only special tokens such as BOS)")
    return tokens
