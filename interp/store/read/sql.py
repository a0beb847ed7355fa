"""SQL building blocks of the read API: literals, identity matches, the features view.

`Store.sql` takes a finished statement, so user values enter it only through `lit`, `like`,
`num` and `int()`. The big per-feature tables (feature_tokens, activation_examples: millions
of rows for a whole-model map) are searched in two steps (`two_phase`): candidates from
``<table>_all`` (a plain scan, no latest-wins window), then the latest-wins view restricted to
those candidates with literal IN lists on its key columns, which DuckDB pushes below the
window. Scanning the view unrestricted would sort every row of the table on every query.
"""

from __future__ import annotations

import json
import math

import pandas as pd

from interp.features import FeatureId
from interp.store.store import Store


IDENTITY = ("model", "site", "kind", "index", "source")


def lit(value: str) -> str:
    """A SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def like(text: str) -> str:
    """An ILIKE pattern matching `text` anywhere, with % and _ taken literally."""
    escaped = str(text).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return lit(f"%{escaped}%") + " ESCAPE '\\'"


def num(value) -> str:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"range bound must be a finite number, got {value!r}")
    return repr(number)


def is_in(col: str, values) -> str:
    return f'f."{col}" IN ({", ".join(lit(v) for v in values)})'


def in_lists(alias: str, frame: pd.DataFrame) -> str:
    """Literal IN lists on each identity column of `frame` (a superset of its rows, for pushdown)."""
    parts = []
    for c in IDENTITY:
        values = sorted(set(frame[c]))
        items = ", ".join(str(int(v)) if c == "index" else lit(v) for v in values)
        parts.append(f'{alias}."{c}" IN ({items})')
    return " AND ".join(parts)


def rows_in(alias: str, frame: pd.DataFrame) -> str:
    """The row of `alias` is one of `frame`'s identities (FALSE for an empty frame)."""
    if frame.empty:
        return "FALSE"
    rows = ", ".join("(" + ", ".join(str(int(r[c])) if c == "index" else lit(r[c]) for c in IDENTITY) + ")"
                     for r in frame[list(IDENTITY)].drop_duplicates().to_dict("records"))
    cols = ", ".join(f'{alias}."{c}"' for c in IDENTITY)
    return f"({cols}) IN ({rows})"


def match(alias: str, fid: FeatureId) -> str:
    """SQL condition: the row under `alias` belongs to feature `fid`."""
    r = fid.to_record()
    return " AND ".join(f'{alias}."{c}" = ' + (str(int(r[c])) if c == "index" else lit(r[c])) for c in IDENTITY)


def two_phase(store: Store, table: str, condition: str) -> pd.DataFrame:
    """Identities of features with a latest row of `table` meeting `condition` (on alias x)."""
    ident = ", ".join(f'x."{c}"' for c in IDENTITY)
    cands = store.sql(f"SELECT DISTINCT {ident} FROM {table}_all x WHERE {condition}")
    if cands.empty:
        return cands
    return store.sql(f"SELECT DISTINCT {ident} FROM {table} x WHERE {in_lists('x', cands)} "
                     f"AND {rows_in('x', cands)} AND {condition}")


def features_sql() -> str:
    """The features table with `complexity` filled in: the features row itself, else the K of
    the feature's winning complexity copy (`interp.store.read.complexity.complexity_sql`)."""
    from interp.store.read.complexity import complexity_sql

    ident = ", ".join(f'"{c}"' for c in IDENTITY)
    return (f"SELECT f.* REPLACE (coalesce(f.complexity, c.K) AS complexity) FROM features f "
            f"LEFT JOIN (SELECT {ident}, K FROM ({complexity_sql()})) c USING ({ident})")


def labels_sql() -> str:
    """Per feature of ``feature_labels``: the label to show (its latest user edit, else its
    automatic combined label) and the automatic input and output labels."""
    ident = ", ".join(f'"{c}"' for c in IDENTITY)
    return (f"SELECT {ident}, coalesce(max(nullif(label, '')) FILTER (WHERE origin = 'user'), "
            f"max(label) FILTER (WHERE origin = 'auto')) AS label, "
            f"max(input_label) FILTER (WHERE origin = 'auto') AS input_label, "
            f"max(output_label) FILTER (WHERE origin = 'auto') AS output_label "
            f"FROM feature_labels GROUP BY ALL")


def parse_json(value):
    """A JSON column value as Python data ({} when missing or unparseable)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return {}
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return {}
    return value
