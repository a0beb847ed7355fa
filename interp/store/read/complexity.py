"""Which stored complexity copy of a feature wins: the one read rule, as SQL.

It lives in the store's read API (not in `interp.methods.complexity.store`, which writes
and re-exports it) so that the app's searches can join on it while `interp.store` imports
no method. The rule:

1. Every stored copy counts: each version of the feature's ``complexity`` row and each
   `FEATURES_NAME` payload in ``results``.
2. Only copies written by a finished run count (``runs.status = 'done'``): a failed,
   cancelled or still running job never hides a finished one's result.
3. Per feature (model, site, kind, index, source) the copy of the newest finished run
   wins (the latest ``runs.finished_at``); within one run, its latest write.
"""

from __future__ import annotations

from typing import Mapping

import pandas as pd

from interp.features import FeatureId

FEATURES_NAME = "complexity_features"
"""``results`` name of per-feature payloads written while the complexity table had no float K."""
IDENTITY = ("model", "site", "kind", "index", "source")
COLUMNS = (*IDENTITY, "K", "first_decodable_layer", "curve", "importance")
"""Columns of a per-feature complexity row (`read_complexity` adds ``run_id``)."""


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
