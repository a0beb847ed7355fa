"""Attribution demos: a few prompts, several methods, their faithfulness, stored under one run.

1. `attribute_prompts` - for each prompt, resolve the next-token target; attribute it with
   each method of `interp.methods.attribution.registry.METHODS` (ReAGent with the given
   config, the others with their defaults, seeded).
2. Score each result's faithfulness (Soft-NS / Soft-NC, `interp.methods.attribution.faithfulness`).
3. Store each result with its scores (`interp.methods.attribution.store.store_attribution`),
   all under one run.
`attribute_demo` is the pipeline's step: `DEMO_PROMPTS`, ReAGent and two baselines, small
budgets, on a model given by name or already loaded.
"""

from __future__ import annotations

from dataclasses import replace

from interp.methods.attribution.faithfulness import FaithfulnessConfig, faithfulness
from interp.methods.attribution.reagent import ReagentConfig
from interp.methods.attribution.registry import ALIASES, default_config, method_fn
from interp.methods.attribution.store import store_attribution
from interp.methods.attribution.targets import check_tokens, resolve_target


def attribute_prompts(adapter, prompts: list[str], methods=("reagent", "integrated_gradients", "attention_rollout"),
                      store=None, reagent_config: ReagentConfig | None = None,
                      faith_config: FaithfulnessConfig = FaithfulnessConfig(), seed: int = 0,
                      progress: bool = False) -> list[dict]:
    """Attribute each prompt's next token with each method, score faithfulness, store everything.

    Returns one record per (prompt, method) with the top tokens and Soft-NS / Soft-NC.
    `progress`: a labelled tqdm bar over the (prompt, method) pairs.
    """
    from tqdm.auto import tqdm

    from interp.store import Store

    store = store if store is not None else Store()
    reagent_config = reagent_config or ReagentConfig(seed=seed)
    records = []
    with store.run("interp attribute", {"methods": list(methods), "prompts": prompts,
                   "reagent": reagent_config.__dict__}, seed=seed) as run_id:
        bar = tqdm(total=len(prompts) * len(methods), desc="attribution (prompt x method)", unit="pair",
                   disable=not progress)
        for prompt in prompts:
            tokens = check_tokens(adapter, prompt)
            target = resolve_target(adapter, tokens)
            for name in methods:
                bar.set_postfix_str(name)
                config = replace(reagent_config) if ALIASES.get(name, name) == "reagent" else default_config(name, seed)
                result = method_fn(name)(adapter, tokens, target, config)
                faith = faithfulness(adapter, result, target, faith_config).to_dict()
                store_attribution(store, run_id, adapter.store_name, prompt, result, faith)
                records.append({"prompt": prompt, "method": result.method, "target": result.target,
                                "top": result.top(3), "converged_probes": result.extra.get("converged_probes"),
                                "num_probes": result.extra.get("num_probes"), **faith})
                bar.update()
        bar.close()
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
                   methods=("reagent", "integrated_gradients", "attention_rollout"), progress: bool = False
                   ) -> list[dict]:
    """The pipeline's attribution step: a few prompts, ReAGent and two baselines, with faithfulness,
    stored under one run. ReAGent runs 8 probes capped at 60 steps and the soft metrics 4 masks,
    to keep this step short on a CPU; an attribution none of whose probes converged is stored
    with ``converged = False``. `model`: a name or an already loaded adapter."""
    from interp.models import load_model

    adapter = load_model(model) if isinstance(model, str) else model
    return attribute_prompts(adapter, list(prompts), methods, store=store,
                             reagent_config=ReagentConfig(num_probes=8, max_probe_steps=60),
                             faith_config=FaithfulnessConfig(n_samples=4), progress=progress)
