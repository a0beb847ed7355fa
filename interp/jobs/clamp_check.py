"""Clamping checks of mapped neurons, with their results in the store.

    from interp.jobs.clamp_check import check_neuron, check_specialised
    check_neuron(store, adapter, layer=12, index=345, prompt="I took my", values=(0, 10, 20))
    report = check_specialised(store, adapter, n=20)      # needs `map_model` results
    check_specialised(store, adapter, n=20, rank_by="prob")  # the same, by the older score

The report's neurons are the mapped ones whose top decoded token stands out most: by the
top end's logit z-score (``rank_by="z"``, the default) or by the top token's softmax
probability (``"prob"``: the older score, which saturates; see
`interp.methods.neurons.decoding` step 4). The top end is the one a positive clamp promotes.

Results go to the store's ``results`` table: ``clamp`` rows (one per neuron and prompt) and
one ``clamp_report`` row per report (key ``<model>/n<n>/<rank_by>``).
"""

from __future__ import annotations

from dataclasses import asdict

import pandas as pd

from interp.methods.neurons.clamping import ClampConfig, ClampReport, ClampResult, clamp_report, clamp_sweep
from interp.methods.neurons.decoding import DecodeConfig, decode_one
from interp.methods.neurons.store import RANKINGS, ClampRecord, most_specialised, top_token_id, write_clamp, write_clamp_report

REPORT_PROMPTS = ("The", "I think that the", "Here is a short story about")


def decoded_target(store, adapter, model: str, layer: int, index: int, direction: str = "down",
                   variant: str = "folded") -> int:
    """The neuron's top decoded token: from the store if mapped, else decoded now."""
    stored = top_token_id(store, model, adapter.sites(layer).mlp_hidden, index, direction, variant)
    if stored is not None:
        return stored
    decoded = decode_one(adapter, layer, index, direction, DecodeConfig(top_k=1, variant=variant))
    return int(decoded.top_ids[0, 0])


def check_neuron(store, adapter, layer: int, index: int, prompt: str, config: ClampConfig = ClampConfig(),
                 target_id: int | None = None, model: str | None = None) -> ClampResult:
    """One dose-response sweep (with controls, KL, optional generation), stored as a `ClampRecord`.

    `model`: the store name to file it under (default `adapter.store_name`).
    """
    model = model or adapter.store_name
    layer = adapter.check_layer(layer)
    with store.run("interp clamp", {"model": model, "layer": layer, "index": index, "prompt": prompt,
                                    **asdict(config)}, seed=config.seed) as run:
        if target_id is None:
            target_id = decoded_target(store, adapter, model, layer, index)
        result = clamp_sweep(adapter, layer, index, prompt, target_id, config)
        write_clamp(store, ClampRecord(model, result, adapter.decode([target_id])), run)
    return result


def specialised_neurons(store, model: str, n: int, direction: str = "down", variant: str = "folded",
                        layers=None, rank_by: str = "z") -> list[tuple[int, int, int]]:
    """The `n` most specialised mapped neurons (`interp.methods.neurons.store.most_specialised`)."""
    return most_specialised(store, model, n, direction, variant, layers, rank_by)


def _top_z(store, model: str, unit: str) -> pd.DataFrame:
    """site, index, z: the top end's z-score of each mapped neuron (NaN where not stored)."""
    feats = store.read("features", where={"model": model, "kind": "neuron", "source": ""},
                       columns=["site", "index", "metrics"])
    z = [json.loads(m).get("neuron_map", {}).get(unit, {}).get("z") if isinstance(m, str) else None
         for m in feats["metrics"]]
    return pd.DataFrame({"site": feats["site"], "index": feats["index"], "z": pd.array(z, dtype="Float64")})


def check_specialised(store, adapter, n: int = 20, prompts=REPORT_PROMPTS, config: ClampConfig | None = None,
                      model: str | None = None, layers=None, rank_by: str = "z") -> ClampReport:
    """Clamp the `n` most specialised mapped neurons (by `rank_by`) against controls; store the report."""
    model = model or adapter.store_name
    config = config or ClampConfig(neutral_prompts=())
    neurons = specialised_neurons(store, model, n, layers=layers, rank_by=rank_by)
    with store.run("interp clamp-report", {"model": model, "n": n, "rank_by": rank_by, "prompts": list(prompts),
                                           **asdict(config)}, seed=config.seed) as run:
        report = clamp_report(adapter, neurons, list(prompts), config)
        write_clamp_report(store, model, n, prompts, config.values, report, run, rank_by)
    return report
