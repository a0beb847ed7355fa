"""One entry point for token attribution: every method by name, whole continuations, the store.

- `METHODS` - name -> ``fn(adapter, tokens, target, config) -> AttributionResult`` (ReAGent and
  the baselines of `interp.methods.attribution.baselines`).
- `attribute(adapter, prompt, method=...)` - one attribution.
- `attribute_continuation(adapter, prompt, n_new, method=...)` - greedy-generate `n_new`
  tokens and attribute each generated token to its whole prefix (prompt plus the tokens
  generated before it): a (n_new, prompt_len + n_new - 1) matrix, row t filled up to its prefix.

Storing results is `interp.methods.attribution.store`'s; attributing a set of prompts into
a run is the job `interp.jobs.attribution_demo`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from interp.methods.attribution.baselines import BASELINES, BaselineConfig
from interp.methods.attribution.targets import AttributionResult, check_tokens, resolve_target
from interp.methods.attribution.reagent import ReagentConfig, reagent

METHODS: dict[str, Callable[..., AttributionResult]] = {"reagent": reagent, **BASELINES}
ALIASES = {"ig": "integrated_gradients", "ixg": "input_x_gradient", "grad": "gradient_norm",
           "attention": "attention_last", "rollout": "attention_rollout"}


def method_fn(name: str) -> Callable[..., AttributionResult]:
    """The attribution function called `name` (or one of `ALIASES`)."""
    name = ALIASES.get(name, name)
    if name not in METHODS:
        valid = ", ".join([*METHODS, *ALIASES])
        raise ValueError(f"unknown attribution method {name!r}; valid: {valid}")
    return METHODS[name]


def default_config(name: str, seed: int = 0):
    """The config object `name` takes, with `seed` set."""
    name = ALIASES.get(name, name)
    method_fn(name)
    return ReagentConfig(seed=seed) if name == "reagent" else BaselineConfig(seed=seed)


def attribute(adapter, prompt, method: str = "reagent", target=None, contrast=None, config=None) -> AttributionResult:
    """Attribute `prompt` (string or (pos,) ids) towards `target` (None = next token) with `method`."""
    fn = method_fn(method)
    tokens = check_tokens(adapter, prompt)
    resolved = resolve_target(adapter, tokens, target, contrast)
    return fn(adapter, tokens, resolved, config if config is not None else default_config(method))


@dataclass
class ContinuationAttribution:
    """Attribution of every generated token to its prefix."""

    tokens: list[str]
    """Prompt tokens followed by the generated tokens, (prompt_len + n_new,)."""
    prompt_len: int
    matrix: torch.Tensor
    """(n_new, prompt_len + n_new - 1): row t scores the prefix of generated token t; NaN beyond it."""
    method: str
    results: list[AttributionResult]


def attribute_continuation(adapter, prompt, n_new: int = 5, method: str = "reagent",
                           config=None) -> ContinuationAttribution:
    """Greedy-generate `n_new` tokens and attribute each one to its prefix with `method`."""
    if n_new < 1:
        raise ValueError(f"n_new must be >= 1, got {n_new}")
    tokens = check_tokens(adapter, prompt)
    fn, prompt_len = method_fn(method), tokens.numel()
    results = []
    for _ in range(n_new):
        result = fn(adapter, tokens, None, config if config is not None else default_config(method))
        results.append(result)
        next_id = int(adapter.logits(tokens[None])[0, -1].argmax())
        tokens = torch.cat([tokens, torch.tensor([next_id], device=tokens.device)])
    matrix = torch.full((n_new, tokens.numel() - 1), float("nan"))
    for t, result in enumerate(results):
        matrix[t, : result.scores.numel()] = result.scores
    return ContinuationAttribution(adapter.to_str_tokens(tokens), prompt_len, matrix, ALIASES.get(method, method), results)
