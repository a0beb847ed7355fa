"""Live computations of the prompt view on a loaded `ModelAdapter` (no streamlit here).

Each is one short forward pass (or a handful, for a greedy continuation); the method
computations themselves (ReAGent, baselines) are called from `interp.methods`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from interp.models import ClampUnit
from interp.sites import layer_of


def prediction(adapter, prompt: str, k: int = 10) -> pd.DataFrame:
    """The model's top-`k` next tokens after `prompt` with their probabilities."""
    tokens = adapter.to_tokens(_check(prompt))
    probs = torch.softmax(adapter.logits(tokens)[0, -1].float(), dim=-1)
    top = torch.topk(probs, k)
    return pd.DataFrame({"rank": range(1, k + 1), "token": [repr(adapter.decode([i])) for i in top.indices.tolist()],
                         "token_id": top.indices.tolist(), "prob": top.values.tolist()})


def continuation(adapter, prompt: str, n_tokens: int = 12, clamp: ClampUnit | None = None) -> str:
    """Greedy continuation of `prompt` (n_tokens new tokens), optionally under a clamp."""
    from interp.methods.neurons.clamping import greedy_generate

    return greedy_generate(adapter, _check(prompt), int(n_tokens), interventions=(clamp,) if clamp else ())


@dataclass(frozen=True)
class ActiveFeatures:
    """The most active neurons of some layers at each prompt position."""

    tokens: list[str]
    """(pos,) prompt tokens."""
    table: pd.DataFrame
    """One row per (position, rank): pos, token, layer, site, index, act."""
    heat: np.ndarray
    """(n_features, pos) activations of the union of the top features."""
    labels: list[str]
    """(n_features,) 'L<layer>/N<index>' names of the heatmap rows."""


def _top_per_position(tokens: list[str], acts: torch.Tensor, k: int, site: str, layer: int,
                      offset: int = 0) -> list[dict]:
    """Rows of the `k` largest entries of acts (pos, n) at each position."""
    vals, idx = torch.topk(acts, min(k, acts.shape[-1]), dim=-1)
    return [{"pos": pos, "token": tokens[pos], "layer": layer, "site": site, "index": int(idx[pos, r]),
             "act": float(vals[pos, r])} for pos in range(acts.shape[0]) for r in range(vals.shape[1])]


def _collect(str_tokens: list[str], rows: list[dict], acts_of: dict[str, torch.Tensor], k: int, prefix: str
             ) -> ActiveFeatures:
    table = pd.DataFrame(rows).sort_values(["pos", "act"], ascending=[True, False])
    table = table.groupby("pos", group_keys=False).head(k).reset_index(drop=True)
    units = table[["layer", "site", "index"]].drop_duplicates().to_records(index=False)
    heat = np.stack([acts_of[s][:, i].numpy() for _, s, i in units]) if len(units) else np.zeros((0, len(str_tokens)))
    return ActiveFeatures(str_tokens, table, heat, [f"L{l}/{prefix}{i}" for l, _, i in units])


def active_neurons(adapter, prompt: str, layers: list[int], k: int = 3) -> ActiveFeatures:
    """Top-`k` MLP neurons (by activation) per position across `layers`."""
    tokens = adapter.to_tokens(_check(prompt))
    sites = {adapter.sites(adapter.check_layer(l)).mlp_hidden: l for l in layers}
    cache = adapter.run(tokens, names=list(sites), stop_at_layer=max(layers) + 1).cache
    str_tokens = adapter.to_str_tokens(tokens)
    acts_of = {site: cache[site][0].float() for site in sites}  # site -> (pos, d_mlp)
    rows = [r for site, layer in sites.items() for r in _top_per_position(str_tokens, acts_of[site], k, site, layer)]
    return _collect(str_tokens, rows, acts_of, k, "N")


def active_latents(adapter, dictionary, site: str, prompt: str, k: int = 3) -> ActiveFeatures:
    """Top-`k` latents of a dictionary (SAE / transcoder reading `site`) per position.

    BOS is dropped: dictionaries are trained without it (its activations are outliers).
    """
    tokens = adapter.to_tokens(_check(prompt))
    layer = layer_of(site)  # model-wide sites (ln_final, ...) need the whole model
    x = adapter.run(tokens, names=[site], stop_at_layer=None if layer is None else layer + 1).cache[site][0]
    start = 1 if adapter.prepend_bos else 0
    with torch.no_grad():
        enc = dictionary.encode_sparse(x[start:].to(dictionary.W_enc.dtype))
        acts = enc.dense(dictionary.d_sae).float()  # (pos - start, d_sae)
    str_tokens = adapter.to_str_tokens(tokens)[start:]
    rows = _top_per_position(str_tokens, acts, k, site, 0 if layer is None else layer)
    return _collect(str_tokens, rows, {site: acts}, k, "F")


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
