"""The complexity family in the store: per-feature scores, run summaries and figures.

Writing (`save_complexity`): one row per feature (identity, K, first decodable layer, curve,
importance) in the ``complexity`` table; when that table's K column is not a float (stores
made before it was) the rows go to ``results`` instead, one payload per feature under
name `FEATURES_NAME`, key ``FeatureId.key``. The run's summary is a ``results`` row
`RESULTS_NAME` (key = run id), its figures rows `FIGURE_NAME` (key ``<run id>/<figure>``).

Reading (`read_complexity`, `feature_complexity`, and `complexity_sql` for SQL joins) has one
rule for which stored copy of a feature wins - finished runs only, the newest finished run's
copy per feature. It is defined, and stated step by step, in `interp.store.read.complexity`
(so that the app's read API can join on it while `interp.store` imports no method); this
module re-exports it.
"""

from __future__ import annotations

import json
from typing import Mapping

import pandas as pd

from interp.features import FeatureId
from interp.store.read.complexity import COLUMNS, FEATURES_NAME, IDENTITY, complexity_sql, feature_complexity, read_complexity

RESULTS_NAME = "complexity"
"""``results`` name of a run's summary (key = the run id)."""
FIGURE_NAME = "complexity_figure"
"""``results`` name of a run's figures (key ``<run id>/<figure>``, payload = plotly JSON)."""


def save_complexity(store, frame: pd.DataFrame, summary: dict, figures: Mapping[str, str], run_id: str) -> None:
    """Write the per-feature rows of `frame` (`COLUMNS` at least), `summary` and `figures` (name -> JSON)."""
    from interp.store.schema import TABLES

    k_type = TABLES["complexity"].schema.field("K").type
    if str(k_type).startswith(("double", "float")):
        store.write("complexity", frame[list(COLUMNS)], run_id=run_id)
    else:  # keep the float K lossless in the generic results table (one payload per feature)
        records = json.loads(frame.to_json(orient="records"))
        store.write("results", [{"name": FEATURES_NAME, "key": FeatureId.from_record(r).key, "payload": r}
                                for r in records], run_id=run_id)
    store.write("results", [{"name": RESULTS_NAME, "key": run_id, "payload": summary}], run_id=run_id)
    if figures:
        store.write("results", [{"name": FIGURE_NAME, "key": f"{run_id}/{k}", "payload": f} for k, f in figures.items()],
                    run_id=run_id)


__all__ = ["COLUMNS", "FEATURES_NAME", "FIGURE_NAME", "IDENTITY", "RESULTS_NAME", "complexity_sql",
           "feature_complexity", "read_complexity", "save_complexity"]
