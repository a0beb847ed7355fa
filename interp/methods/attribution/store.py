"""The attribution family in the store: attributions and the faithfulness benchmark.

- `store_attribution`: one row of the ``attributions`` table per (model, method, prompt,
  target), the latest write winning; ``extra`` holds the method's JSON-able extras and the
  result's faithfulness.
- The faithfulness benchmark (`interp.jobs.faithfulness_benchmark`) in the ``results``
  table: one record per prompt under name ``RECORDS:<tag>``, key = the prompt's number
  (``0007``); its summary under name `SUMMARY`, keys ``<tag>:table``, ``<tag>:paired`` and
  ``<tag>:figure``; its speed comparison under name `SPEED`, key ``<tag>``.
"""

from __future__ import annotations

import json

import pandas as pd

from interp.methods.attribution.targets import AttributionResult

RECORDS, SUMMARY, SPEED = "reagent_faithfulness_records", "reagent_faithfulness", "reagent_speed"
"""``results`` names of the benchmark's per-prompt records, its summary and its speed comparison."""


def store_attribution(store, run_id: str, model: str, prompt: str, result: AttributionResult,
                      faith: dict | None = None) -> None:
    """Write one result to the ``attributions`` table (latest per model/method/prompt/target wins).

    `model`: the model's store name (`ModelAdapter.store_name`).
    """
    extra = {k: v for k, v in result.extra.items() if isinstance(v, (int, float, str, bool, list, type(None)))}
    extra["faithfulness"] = faith
    n_conv = result.extra.get("converged_probes")  # methods with a stopping rule (ReAGent)
    store.write("attributions", [{
        "model": model, "prompt": prompt, "method": result.method, "target": result.target,
        "tokens": result.tokens, "scores": [float(s) for s in result.scores], "extra": extra,
        "converged": None if n_conv is None else bool(n_conv), "converged_probes": n_conv,
    }], run_id=run_id)


def save_record(store, tag: str, index: int, record: dict, run_id: str) -> None:
    """Store the benchmark record of prompt number `index` under `tag`."""
    store.write("results", [{"name": f"{RECORDS}:{tag}", "key": f"{index:04d}", "payload": record}], run_id=run_id)


def _records(store, tag: str) -> list[tuple[int, dict]]:
    found = store.read("results", where={"name": f"{RECORDS}:{tag}"}, columns=["key", "payload"])
    return sorted(((int(k), json.loads(p) if isinstance(p, str) else p) for k, p in zip(found["key"], found["payload"])),
                  key=lambda item: item[0])


def stored_records(store, tag: str) -> list[dict]:
    """The per-prompt records a benchmark run stored under `tag` (prompt order)."""
    return [record for _, record in _records(store, tag)]


def stored_settings(store, tag: str) -> dict[int, dict | None]:
    """Prompt number -> the ``settings`` its stored record under `tag` was made with (None: unrecorded)."""
    return {i: record.get("settings") for i, record in _records(store, tag)}


def save_summary(store, tag: str, table: pd.DataFrame, paired: pd.DataFrame, figure: str, run_id: str) -> None:
    """Store the benchmark's summary `table`, `paired` differences and `figure` (plotly JSON) under `tag`."""
    store.write("results", [{"name": SUMMARY, "key": f"{tag}:table", "payload": table.to_dict("records")},
                            {"name": SUMMARY, "key": f"{tag}:paired", "payload": paired.to_dict("records")},
                            {"name": SUMMARY, "key": f"{tag}:figure", "payload": figure}], run_id=run_id)


def stored_summary(store, tag: str | None = None) -> tuple[str, pd.DataFrame] | None:
    """(tag, summary table) of a stored benchmark (the named tag, else the largest), or None."""
    found = store.read("results", where={"name": SUMMARY}, columns=["key", "payload"])
    tables = {k.rsplit(":", 1)[0]: pd.DataFrame(json.loads(p) if isinstance(p, str) else p)
              for k, p in zip(found["key"], found["payload"]) if k.endswith(":table")}
    if tag is not None:
        return (tag, tables[tag]) if tag in tables else None
    if not tables:
        return None
    best = max(tables, key=lambda t: int(tables[t]["n"].max()))
    return best, tables[best]


def save_speed(store, tag: str, summary: dict, run_id: str) -> None:
    """Store the speed comparison `summary` under `tag`."""
    store.write("results", [{"name": SPEED, "key": tag, "payload": summary}], run_id=run_id)
