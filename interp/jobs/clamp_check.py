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

A report is a job (`interp.jobs.units`): its neurons go in batches (`batch_size` neurons, every
prompt), each batch a unit that runs locally or as a Ray task and stores its sweeps as one
``clamp_report_batch`` row (key ``<model>/<hash of the batch's neurons, prompts and config>``),
so a rerun of an interrupted report only sweeps the missing batches; the report row is then
built from the stored batches.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict

import pandas as pd

from interp.jobs.units import ModelJob, Unit, run_job, shards

from interp.methods.neurons.clamping import ClampConfig, ClampReport, ClampResult, clamp_report, clamp_sweep
from interp.methods.neurons.decoding import DecodeConfig, decode_one
from interp.methods.neurons.store import RANKINGS, ClampRecord, most_specialised, top_token_id, write_clamp, write_clamp_report

REPORT_PROMPTS = ("The", "I think that the", "Here is a short story about")
BATCH = "clamp_report_batch"
"""``results`` name of one stored batch of a report's sweeps."""


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
                      model: str | None = None, layers=None, rank_by: str = "z", *, batch_size: int = 4,
                      backend: str = "local", address: str | None = None, progress: bool = False,
                      device: str = "auto") -> ClampReport:
    """Clamp the `n` most specialised mapped neurons (by `rank_by`) against controls; store the report.

    `adapter`: a loaded `ModelAdapter`, or a model name (needed by the ray backend: workers
    load the model themselves). Neurons go in units of `batch_size` (see the module docstring).
    """
    job = ClampReportJob(adapter, n, tuple(prompts), config or ClampConfig(neutral_prompts=()), model, layers,
                         rank_by, batch_size, device)
    return run_job(store, job, backend=backend, address=address, progress=progress).finished


class ClampReportJob(ModelJob):
    """A clamp report on the job interface: one unit per batch of neurons."""

    command = "interp clamp-report"

    def __init__(self, model, n: int, prompts: tuple[str, ...], config: ClampConfig, store_model: str | None = None,
                 layers=None, rank_by: str = "z", batch_size: int = 4, device: str = "auto") -> None:
        super().__init__(model, device)
        if not prompts:
            raise ValueError("a clamp report needs at least one prompt")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if store_model is None:
            from interp.models.registry import store_model_name

            store_model = model.store_name if not isinstance(model, str) else store_model_name(model)
        self.store_model, self.n, self.prompts, self.clamp = store_model, n, prompts, config
        self.layers, self.rank_by, self.batch_size = layers, rank_by, batch_size
        self.keys: list[str] = []

    def config(self) -> dict:
        return {"model": self.store_model, "n": self.n, "rank_by": self.rank_by, "prompts": list(self.prompts),
                "batch_size": self.batch_size, "device": self.device, **asdict(self.clamp)}

    def _key(self, neurons) -> str:
        text = json.dumps([list(map(int, x)) for x in neurons] + [list(self.prompts), asdict(self.clamp)],
                          sort_keys=True, default=str)
        return f"{self.store_model}/{hashlib.sha256(text.encode()).hexdigest()[:16]}"

    def plan(self, store, run_id: str, force: bool) -> tuple[list[Unit], list[str]]:
        neurons = specialised_neurons(store, self.store_model, self.n, layers=self.layers, rank_by=self.rank_by)
        batches = shards(neurons, self.batch_size)
        self.keys = [self._key(b) for b in batches]
        stored = set() if force else set(store.read("results", where={"name": BATCH, "key": self.keys},
                                                    columns=["key"])["key"])
        units = [Unit(key, tuple(map(tuple, b))) for key, b in zip(self.keys, batches) if key not in stored]
        return units, [key for key in self.keys if key in stored]

    def run(self, store, unit: Unit, run_id: str) -> int:
        report = clamp_report(self.model(), list(unit.spec), list(self.prompts), self.clamp)
        payload = {"results": [ClampRecord(self.store_model, r).to_payload() for r in report.results]}
        store.write("results", [{"name": BATCH, "key": unit.key, "payload": payload}], run_id=run_id)
        return len(report.results)

    def finish(self, store, run_id: str, outcome) -> ClampReport:
        rows = store.read("results", where={"name": BATCH, "key": self.keys}, columns=["key", "payload"])
        by_key = {k: json.loads(p) if isinstance(p, str) else p for k, p in zip(rows["key"], rows["payload"])}
        results = tuple(ClampRecord.from_payload(r).result for key in self.keys for r in by_key[key]["results"])
        report = ClampReport(results)
        write_clamp_report(store, self.store_model, self.n, self.prompts, self.clamp.values, report, run_id,
                           self.rank_by)
        return report
