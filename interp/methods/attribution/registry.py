"""One entry point for token attribution: every method by name, whole continuations, the store.

- `METHODS` - name -> ``fn(adapter, tokens, target, config) -> AttributionResult`` (ReAGent and
  the baselines of `interp.methods.attribution.baselines`).
- `attribute(adapter, prompt, method=...)` - one attribution.
- `attribute_continuation(adapter, prompt, n_new, method=...)` - greedy-generate `n_new`
  tokens and attribute each generated token to its whole prefix (prompt plus the tokens
  generated before it): a (n_new, prompt_len + n_new - 1) matrix, row t filled up to its prefix.
- `store_attribution` / `attribute_prompts` - persist results (and their faithfulness) to the
  store's ``attributions`` table.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import torch

from interp.methods.attribution.baselines import BASELINES, BaselineConfig
from interp.methods.attribution.targets import AttributionResult, check_tokens, resolve_target
from interp.methods.attribution.faithfulness import FaithfulnessConfig, faithfulness
from interp.methods.attribution.reagent import ReagentConfig, reagent
from interp.models.registry import store_model_name

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


def store_attribution(store, run_id: str, model: str, prompt: str, result: AttributionResult,
                      faith: dict | None = None) -> None:
    """Write one result to the ``attributions`` table (latest per model/method/prompt/target wins),
    with ``converged`` / ``converged_probes`` for methods that have a stopping rule (ReAGent)."""
    model = store_model_name(model)
    extra = {k: v for k, v in result.extra.items() if isinstance(v, (int, float, str, bool, list, type(None)))}
    extra["faithfulness"] = faith
    n_conv = result.extra.get("converged_probes")
    store.write("attributions", [{
        "model": model, "prompt": prompt, "method": result.method, "target": result.target,
        "tokens": result.tokens, "scores": [float(s) for s in result.scores], "extra": extra,
        "converged": None if n_conv is None else bool(n_conv), "converged_probes": n_conv,
    }], run_id=run_id)


def attribute_prompts(adapter, prompts: list[str], methods=("reagent", "integrated_gradients", "attention_rollout"),
                      store=None, reagent_config: ReagentConfig | None = None,
                      faith_config: FaithfulnessConfig = FaithfulnessConfig(), seed: int = 0) -> list[dict]:
    """Attribute each prompt's next token with each method, score faithfulness, store everything.

    Returns one record per (prompt, method) with the top tokens and Soft-NS / Soft-NC.
    """
    from interp.store import Store

    store = store if store is not None else Store()
    reagent_config = reagent_config or ReagentConfig(seed=seed)
    run_id = store.start_run("interp attribute", {"methods": list(methods), "prompts": prompts,
                                                  "reagent": reagent_config.__dict__}, seed=seed)
    records = []
    try:
        for prompt in prompts:
            tokens = check_tokens(adapter, prompt)
            target = resolve_target(adapter, tokens)
            for name in methods:
                config = replace(reagent_config) if ALIASES.get(name, name) == "reagent" else default_config(name, seed)
                result = method_fn(name)(adapter, tokens, target, config)
                faith = faithfulness(adapter, result, target, faith_config).to_dict()
                store_attribution(store, run_id, adapter.name, prompt, result, faith)
                records.append({"prompt": prompt, "method": result.method, "target": result.target,
                                "top": result.top(3), "converged_probes": result.extra.get("converged_probes"),
                                "num_probes": result.extra.get("num_probes"), **faith})
    except BaseException:
        store.finish_run(run_id, "failed")
        raise
    store.finish_run(run_id, "done")
    return records


DEMO_PROMPTS = (
    "The Eiffel Tower is located in the city of",
    "She opened the door and walked into the",
    "The nurse said that the doctor would see the patient in the",
    "The movie was terrible. I would rate it one out of",
    "for i in range(10):\n    print(",
)
"""Prompts on which ReAGent's probes converge within the demo's budget (8 probes, 60 steps; measured
on SmolLM2-135M: 7, 5, 4 and 7 of 8 probes on the first four) and that are longer than its
keep_top_n of 5, so the stopping rule replaces tokens rather than keeping the whole prompt."""


def attribute_demo(model="smollm2-135m", prompts=DEMO_PROMPTS, store=None,
                   methods=("reagent", "integrated_gradients", "attention_rollout")) -> list[dict]:
    """The pipeline's attribution step: a few prompts, ReAGent and two baselines, with faithfulness,
    stored under one run. ReAGent runs 8 probes capped at 60 steps and the soft metrics 4 masks,
    to keep this step short on a CPU; an attribution none of whose probes converged is stored
    with ``converged = False``. `model`: a name or an already loaded adapter."""
    from interp.models import load_model

    adapter = load_model(model) if isinstance(model, str) else model
    return attribute_prompts(adapter, list(prompts), methods, store=store,
                             reagent_config=ReagentConfig(num_probes=8, max_probe_steps=60),
                             faith_config=FaithfulnessConfig(n_samples=4))
