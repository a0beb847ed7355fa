"""The complexity family in the store: per-feature scores, run summaries and figures.

Writing (`save_complexity`): one row per feature (identity, K, first decodable layer, curve,
importance) in the ``complexity`` table; when that table's K column is not a float (stores
made before it was) the rows go to ``results`` instead, one payload per feature under
name `FEATURES_NAME`, key ``FeatureId.key``. The run's summary is a ``results`` row
`RESULTS_NAME` (key = run id), its figures rows `FIGURE_NAME` (key ``<run id>/<figure>``).

Reading (`read_complexity`, `feature_complexity`, and `complexity_sql` for SQL joins) has
one rule for which stored copy of a feature wins:

1. Every stored copy counts: each version of the feature's ``complexity`` row and each
   `FEATURES_NAME` payload in ``results``.
2. Only copies written by a finished run count (``runs.status = 'done'``): a failed,
   cancelled or still running job never hides a finished one's result.
3. Per feature (model, site, kind, index, source) the copy of the newest finished run
   wins (the latest ``runs.finished_at``); within one run, its latest write.
"""

from __future__ import annotations

import json
from typing import Mapping

import pandas as pd

from interp.features import FeatureId

RESULTS_NAME = "complexity"
"""``results`` name of a run's summary (key = the run id)."""
FEATURES_NAME = "complexity_features"
"""``results`` name of per-feature payloads written while the complexity table had no float K."""
FIGURE_NAME = "complexity_figure"
"""``results`` name of a run's figures (key ``<run id>/<figure>``, payload = plotly JSON)."""
IDENTITY = ("model", "site", "kind", "index", "source")
COLUMNS = (*IDENTITY, "K", "first_decodable_layer", "curve", "importance")
"""Columns of a per-feature complexity row (`read_complexity` adds ``run_id``)."""


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


def _lit(value) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _payload(field: str, sql_type: str) -> str:
    return f"TRY_CAST(json_extract(payload, '$.{field}') AS {sql_type}) AS \"{field}\""


def complexity_sql(where: Mapping | None = None) -> str:
    """A SELECT over the store's views giving the winning copy per feature (`COLUMNS` + run_id).

    `where`: equality filters on columns of `COLUMNS` (e.g. ``{"model": m}``).
    """
    bad = [c for c in (where or {}) if c not in COLUMNS]
    if bad:
        raise ValueError(f"cannot filter complexity rows on {bad}; valid columns: {', '.join(COLUMNS)}")
    cols = ", ".join(f'"{c}"' for c in COLUMNS)
    from_results = ", ".join([
        *(f"json_extract_string(payload, '$.{c}') AS \"{c}\"" for c in ("model", "site", "kind")),
        _payload("index", "BIGINT"), "coalesce(json_extract_string(payload, '$.source'), '') AS \"source\"",
        _payload("K", "DOUBLE"), _payload("first_decodable_layer", "INTEGER"), _payload("curve", "DOUBLE[]"),
        _payload("importance", "DOUBLE")])
    cond = " AND ".join(f'c."{k}" = {_lit(v)}' for k, v in (where or {}).items())
    ident = ", ".join(f'c."{c}"' for c in IDENTITY)
    return (f"WITH copies AS (SELECT {cols}, run_id, _write_id FROM complexity_all UNION ALL "
            f"SELECT {from_results}, run_id, _write_id FROM results_all WHERE name = {_lit(FEATURES_NAME)}) "
            f"SELECT {', '.join('c.' + chr(34) + x + chr(34) for x in COLUMNS)}, c.run_id FROM copies c "
            f"JOIN runs r ON r.run_id = c.run_id AND r.status = 'done' {'WHERE ' + cond if cond else ''} "
            f"QUALIFY row_number() OVER (PARTITION BY {ident} ORDER BY r.finished_at DESC, c._write_id DESC) = 1 "
            f"ORDER BY {ident}")


def read_complexity(store, model: str | None = None) -> pd.DataFrame:
    """The winning per-feature complexity rows (rule in the module docstring), of `model` if given."""
    return store.sql(complexity_sql({"model": model} if model else None))


def feature_complexity(store, feature: FeatureId) -> pd.DataFrame:
    """The winning complexity row of `feature` (empty when none is stored)."""
    return store.sql(complexity_sql(feature.to_record()))
