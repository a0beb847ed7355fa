"""Live computations of the prompt view on a loaded `ModelAdapter` (no streamlit here).

Every view of a prompt reads one forward pass (`forward` -> `PromptPass`: the logits, every
lens row's residual stream and every layer's MLP input and hidden units), which the app
caches per (model, prompt); a greedy continuation takes a handful more, and the method
computations themselves (ReAGent, baselines, the lenses) are called from `interp.methods`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from interp.methods.lenses import LensConfig, ResidualStack, lens_grid, lens_rows
from interp.models import ClampUnit
from interp.sites import layer_of


@dataclass(frozen=True)
class PromptPass:
    """One forward pass of a prompt, caching what every view of the prompt page reads."""

    tokens: torch.Tensor
    """(1, pos) token ids."""
    str_tokens: list[str]
    logits: torch.Tensor
    """(pos, d_vocab) float32."""
    stack: ResidualStack
    """Every lens row's residual stream (`interp.methods.lenses.residual_stack`)."""
    cache: dict[str, torch.Tensor]
    """Every layer's ``mlp_in`` and ``mlp_hidden`` site -> (pos, d) float32."""
    bos: bool
    """Whether position 0 is the BOS token."""


def forward(adapter, prompt: str) -> PromptPass:
    """The one forward pass of `prompt` that the prompt page's views share."""
    tokens = adapter.to_tokens(_check(prompt))
    rows = lens_rows(adapter)
    units = [s for layer in range(adapter.info.n_layers) for s in (adapter.sites(layer).mlp_in,
                                                                    adapter.sites(layer).mlp_hidden)]
    out = adapter.run(tokens, names=[r.site for r in rows] + units)
    stack = ResidualStack(torch.stack([out.cache[r.site].float() for r in rows]), out.output.float(), rows)
    bos_id = adapter.info.bos_token_id
    return PromptPass(tokens, adapter.to_str_tokens(tokens), out.output[0].float(), stack,
                      {s: out.cache[s][0].float() for s in units}, bos_id is not None and int(tokens[0, 0]) == bos_id)


def _pass(adapter, prompt) -> PromptPass:
    return prompt if isinstance(prompt, PromptPass) else forward(adapter, prompt)


def prediction(adapter, prompt, k: int = 10) -> pd.DataFrame:
    """The model's top-`k` next tokens after `prompt` (text or a `PromptPass`) with their probabilities."""
    probs = torch.softmax(_pass(adapter, prompt).logits[-1], dim=-1)
    top = torch.topk(probs, k)
    return pd.DataFrame({"rank": range(1, k + 1), "token": [repr(adapter.decode([i])) for i in top.indices.tolist()],
                         "token_id": top.indices.tolist(), "prob": top.values.tolist()})


def continuation(adapter, prompt: str, n_tokens: int = 12, clamp: ClampUnit | None = None) -> str:
    """Greedy continuation of `prompt` (n_tokens new tokens), optionally under a clamp."""
    from interp.methods.neurons.clamping import greedy_generate

    return greedy_generate(adapter, _check(prompt), int(n_tokens), interventions=(clamp,) if clamp else ())


def lens(adapter, prompt, tuned=None, top_k: int = 5):
    """The logit lens grid of `prompt` (text or a `PromptPass`), or the tuned lens with `tuned` (a `TunedLens`)."""
    found = _pass(adapter, prompt)
    return lens_grid(adapter, found.tokens, LensConfig(top_k=top_k), translate=tuned, stack=found.stack,
                     lens="logit" if tuned is None else "tuned")


@dataclass(frozen=True)
class ActiveFeatures:
    """The most active units of some layers, ranked per layer."""

    tokens: list[str]
    """(pos,) the positions shown (BOS left out unless included)."""
    table: pd.DataFrame
    """One row per (layer, rank): layer, rank, site, index, act (the unit's largest activation
    over the positions shown), pos and token (the position of that activation)."""
    heat: np.ndarray
    """(n_features, pos) activations of the ranked units at the positions shown."""
    labels: list[str]
    """(n_features,) 'L<layer>/N<index>' names of the heatmap rows."""


def _rank_layer(acts: torch.Tensor, k: int, site: str, layer: int, tokens: list[str], offset: int) -> list[dict]:
    """The `k` units of acts (pos, n) with the largest activation at any position."""
    best, where = acts.max(0)  # (n,) each unit's largest activation and its position
    vals, idx = torch.topk(best, min(k, best.shape[0]))
    return [{"layer": layer, "rank": r + 1, "site": site, "index": int(i), "act": float(v),
             "pos": int(where[i]) + offset, "token": tokens[int(where[i])]}
            for r, (v, i) in enumerate(zip(vals.tolist(), idx.tolist()))]


def _collect(tokens: list[str], rows: list[dict], acts_of: dict[str, torch.Tensor], prefix: str) -> ActiveFeatures:
    table = pd.DataFrame(rows, columns=["layer", "rank", "site", "index", "act", "pos", "token"])
    heat = (np.stack([acts_of[r["site"]][:, r["index"]].numpy() for r in rows]) if rows
            else np.zeros((0, len(tokens)), np.float32))
    return ActiveFeatures(tokens, table, heat, [f"L{r['layer']}/{prefix}{r['index']}" for r in rows])


def active_neurons(adapter, prompt, layers: list[int], k: int = 3, include_bos: bool = False) -> ActiveFeatures:
    """The top-`k` MLP neurons of each of `layers` by their largest activation over the prompt.

    The BOS position is left out unless `include_bos`: its activations are the attention
    sink's outliers and would top every layer's ranking.
    """
    found = _pass(adapter, prompt)
    start = 1 if found.bos and not include_bos else 0
    tokens = found.str_tokens[start:]
    if not tokens:
        raise ValueError("the prompt has no token besides BOS; type some text or include the BOS position")
    sites = {adapter.sites(adapter.check_layer(layer)).mlp_hidden: layer for layer in layers}
    acts_of = {site: found.cache[site][start:] for site in sites}  # site -> (pos, d_mlp)
    rows = [r for site, layer in sites.items() for r in _rank_layer(acts_of[site], k, site, layer, tokens, start)]
    return _collect(tokens, rows, acts_of, "N")


def active_latents(adapter, dictionary, site: str, prompt, k: int = 3, include_bos: bool = False) -> ActiveFeatures:
    """The top-`k` latents of a dictionary (SAE / transcoder reading `site`) by their largest activation.

    BOS is left out unless `include_bos`: dictionaries are trained without it (its
    activations are outliers).
    """
    found = _pass(adapter, prompt)
    x = found.cache.get(site)
    if x is None:  # a site the shared pass does not keep (resid, attention ...): one more pass
        layer = layer_of(site)  # model-wide sites (ln_final, ...) need the whole model
        x = adapter.run(found.tokens, names=[site], stop_at_layer=None if layer is None else layer + 1).cache[site][0]
    start = 1 if found.bos and not include_bos else 0
    with torch.no_grad():
        enc = dictionary.encode_sparse(x[start:].to(dictionary.W_enc.dtype))
        acts = enc.dense(dictionary.d_sae).float()  # (pos - start, d_sae)
    tokens = found.str_tokens[start:]
    layer = layer_of(site)
    rows = _rank_layer(acts, k, site, 0 if layer is None else layer, tokens, start)
    return _collect(tokens, rows, {site: acts}, "F")


LIVE_METHODS = ("reagent", "attention_last", "gradient_norm", "input_x_gradient", "occlusion", "random")
"""ReAGent plus the baselines cheap enough to run on a click (one or two passes each)."""


def attributions(adapter, prompt: str, methods: tuple[str, ...] = LIVE_METHODS, reagent_probes: int = 8,
                 reagent_steps: int = 100) -> list:
    """`AttributionResult`s of the model's next token, one per method (ReAGent on a small budget).

    Calls `interp.methods.attribution.registry.attribute` as it is, so live results match `interp attribute`.
    """
    import warnings

    from interp.methods.attribution.registry import attribute
    from interp.methods.attribution.reagent import ReagentConfig

    _check(prompt)
    results = []
    with warnings.catch_warnings():  # a probe that does not converge is recorded in the result's extra
        warnings.simplefilter("ignore", RuntimeWarning)
        for name in methods:
            config = ReagentConfig(num_probes=reagent_probes, max_probe_steps=reagent_steps) if name == "reagent" else None
            results.append(attribute(adapter, prompt, method=name, config=config))
    return results


def _check(prompt: str) -> str:
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("the prompt is empty; type some text, e.g. 'The capital of France is'")
    return prompt
