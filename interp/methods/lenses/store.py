"""The lenses family in the store: a model's trained tuned lens and its evaluation.

- Translators: one safetensors bundle ``lenses/<model>/tuned`` with ``weight`` (rows,
  d_model, d_model) and ``bias`` (rows, d_model); its metadata names the model, the rows'
  labels and sites, the training config and the run.
- A `results` row ``tuned_lens`` keyed by the model: the bundle's name, the training config,
  tokens, seconds and loss curve, and the held-out comparison with the logit lens (per row,
  mean KL and 95% intervals). The run it was written under carries the provenance (corpus
  slice, seed, package versions).

A model has one tuned lens: training again replaces it.
"""

from __future__ import annotations

import json

from interp.methods.lenses.evaluation import LensComparison
from interp.methods.lenses.logit_lens import LensRow
from interp.methods.lenses.tuned_lens import TunedLens, TunedLensTraining

RESULT = "tuned_lens"


def bundle_name(model: str) -> str:
    """The tensor bundle of `model`'s tuned lens (`model`: a store model name)."""
    return f"lenses/{model}/tuned"


def save_tuned_lens(store, adapter, training: TunedLensTraining, comparison: LensComparison, run_id: str,
                    corpus: dict | None = None) -> str:
    """Write the translators and the `results` row (module docstring); returns the bundle name."""
    lens, model = training.lens, adapter.store_name
    name = bundle_name(model)
    rows = [{"label": r.label, "site": r.site} for r in lens.rows]
    store.save_tensors(name, {"weight": lens.weight, "bias": lens.bias},
                       {"model": model, "rows": rows, "config": training.config.to_dict()}, run_id=run_id)
    payload = {"bundle": name, "rows": rows, "config": training.config.to_dict(), "corpus": corpus,
               "training": {"n_tokens": training.n_tokens, "seconds": training.seconds, "losses": training.losses},
               "comparison": {"n_tokens": comparison.n_tokens, "n_windows": comparison.n_windows,
                              "rows": comparison.table.to_dict("records")}}
    store.write("results", [{"name": RESULT, "key": model, "payload": payload}], run_id=run_id)
    return name


def tuned_lens_record(store, model: str) -> dict | None:
    """The stored ``tuned_lens`` payload of `model` (with its ``run_id``), or None when it has none."""
    found = store.read("results", where={"name": RESULT, "key": model})
    if found.empty:
        return None
    row = found.iloc[0]
    payload = json.loads(row["payload"]) if isinstance(row["payload"], str) else dict(row["payload"])
    return {**payload, "run_id": row.get("run_id")}


def missing_lens_message(store, model: str) -> str:
    return f"no tuned lens for {model} in store {store.root}; train one with `interp lens train --model {model}`"


def load_tuned_lens(store, adapter, device: str = "cpu") -> TunedLens:
    """The stored tuned lens of `adapter`'s model, checked against it; FileNotFoundError when none."""
    model = adapter.store_name
    record = tuned_lens_record(store, model)
    if record is None:
        raise FileNotFoundError(missing_lens_message(store, model))
    tensors = store.load_tensors(record["bundle"], device=device)
    rows = tuple(LensRow(r["label"], r["site"]) for r in record["rows"])
    return TunedLens(rows, tensors["weight"].float(), tensors["bias"].float()).check(adapter)


def comparison_table(record: dict):
    """The held-out per-row KL table of a stored record, as a DataFrame."""
    import pandas as pd

    return pd.DataFrame(record["comparison"]["rows"])

