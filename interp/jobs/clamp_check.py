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

import hashlib
import json
from dataclasses import asdict

import pandas as pd

from interp.methods.neurons.clamping import ClampConfig, ClampReport, ClampResult, clamp_report, clamp_sweep
from interp.models.registry import store_model_name
from interp.methods.neurons.decoding import DecodeConfig, decode_one

REPORT_PROMPTS = ("The", "I think that the", "Here is a short story about")
RANKINGS = ("z", "prob")
"""How `specialised_neurons` ranks: the top end's logit z-score, or the top token's probability."""


def decoded_target(store, adapter, model: str, layer: int, index: int, direction: str = "down",
                   variant: str = "folded") -> int:
    """The neuron's top decoded token: from the store if mapped, else decoded now."""
    site = adapter.sites(layer).mlp_hidden
    rows = store.read("feature_tokens", where={"model": model, "site": site, "kind": "neuron", "index": index,
                                               "source": "", "direction": direction, "variant": variant})
    top = rows[(rows["end"] == "top") & (rows["rank"] == 0)] if len(rows) else rows
    if len(top):
        return int(top["token_id"].iloc[0])
    decoded = decode_one(adapter, layer, index, direction, DecodeConfig(top_k=1, variant=variant))
    return int(decoded.top_ids[0, 0])


def _prompt_key(prompt: str) -> str:
    return hashlib.sha1(prompt.encode()).hexdigest()[:12]


def check_neuron(store, adapter, layer: int, index: int, prompt: str, config: ClampConfig = ClampConfig(),
                 target_id: int | None = None, model: str | None = None) -> ClampResult:
    """One dose-response sweep (with controls, KL, optional generation), stored as a ``clamp`` row."""
    model = model or store_model_name(adapter.name)
    layer = adapter.check_layer(layer)
    if target_id is None:
        target_id = decoded_target(store, adapter, model, layer, index)
    result = clamp_sweep(adapter, layer, index, prompt, target_id, config)
    run = store.start_run("interp clamp", {"model": model, "layer": layer, "index": index, "prompt": prompt,
                                           **asdict(config)}, seed=config.seed)
    payload = {"model": model, "target": adapter.decode([target_id]), **result.to_payload()}
    store.write("results", [{"name": "clamp", "key": f"{model}/L{layer}/N{index}/{_prompt_key(prompt)}",
                             "payload": payload}], run_id=run)
    store.finish_run(run, "done")
    return result


def specialised_neurons(store, model: str, n: int, direction: str = "down", variant: str = "folded",
                        layers=None, rank_by: str = "z") -> list[tuple[int, int, int]]:
    """The `n` most specialised mapped neurons (see the module doc): (layer, index, top token id).

    ``rank_by="z"`` orders by the top end's z-score, ties broken by the top token's
    probability; ``"prob"`` by that probability alone. Remaining ties go to the lower layer
    and index.
    """
    if rank_by not in RANKINGS:
        raise ValueError(f"unknown ranking {rank_by!r}; valid: {', '.join(RANKINGS)}")
    rows = store.read("feature_tokens", where={"model": model, "kind": "neuron", "direction": direction,
                                               "variant": variant, "end": "top", "rank": 0},
                      columns=["site", "index", "token_id", "prob"])
    if rows.empty:
        raise ValueError(f"no {direction}/{variant} neuron decodings of {model!r} in the store; "
                         f"run `interp map-neurons --model {model}` first")
    rows["layer"] = rows["site"].str.split(".").str[1].astype(int)
    if layers is not None:
        rows = rows[rows["layer"].isin(list(layers))]
    if rank_by == "prob":
        keys = ["prob", "layer", "index"]
    else:
        rows = rows.merge(_top_z(store, model, f"{direction}/{variant}"), on=["site", "index"], how="left")
        if rows["z"].isna().all():
            raise ValueError(f"the stored {direction}/{variant} decodings of {model!r} have no z-scores (mapped "
                             f"before they existed); rerun `interp map-neurons --model {model} --force`, "
                             "or rank by prob")
        keys = ["z", "prob", "layer", "index"]
    top = rows.sort_values(keys, ascending=[False] * (len(keys) - 2) + [True, True], na_position="last").head(n)
    return [(int(r.layer), int(r.index), int(r.token_id)) for r in top.itertuples()]


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
    model = model or store_model_name(adapter.name)
    config = config or ClampConfig(neutral_prompts=())
    neurons = specialised_neurons(store, model, n, layers=layers, rank_by=rank_by)
    report = clamp_report(adapter, neurons, list(prompts), config)
    table = report.table()
    run = store.start_run("interp clamp-report", {"model": model, "n": n, "rank_by": rank_by,
                                                  "prompts": list(prompts), **asdict(config)}, seed=config.seed)
    store.write("results", [{"name": "clamp_report", "key": f"{model}/n{n}/{rank_by}", "payload": {
        "model": model, "n": len(table), "rank_by": rank_by, "prompts": list(prompts), "values": list(config.values),
        "fraction_beats_mean": report.fraction_beats_mean, "fraction_beats_all": report.fraction_beats_all,
        "neurons": table.to_dict("records")}}], run_id=run)
    store.finish_run(run, "done")
    return report
