"""Read-only queries the dashboard runs through `Store.read` / `Store.sql`.

Plain functions of a `Store` (no streamlit), cached by `app.state`. Filtering and paging
happen inside DuckDB, so a search over a whole-model neuron map (tens of thousands of
features, millions of token rows) returns one page of rows, never the whole table.
`Store.sql` takes a finished statement, so user values enter it only through `_lit`,
`_like` and `float()`.

The big per-feature tables (feature_tokens, activation_examples: millions of rows for a
whole-model map) are searched in two steps: candidates from ``<table>_all`` (a plain scan,
no latest-wins window), then the latest-wins view restricted to those candidates with
literal IN lists on its key columns, which DuckDB pushes below the window. Scanning the
view unrestricted would sort every row of the table on every query.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import pandas as pd

from interp.features import FeatureId, FeatureKind
from interp.store import Store

IDENTITY = ("model", "site", "kind", "index", "source")
COMPLEXITY_FEATURES = "complexity_features"
"""Results name under which `interp complexity` stores one payload per feature (K, curve, importance)."""
_KEY_SQL = "f.model || '/' || f.source || '/' || f.site || '/' || f.kind || '/' || CAST(f.\"index\" AS VARCHAR)"
"""`FeatureId.key` computed in SQL for a features row aliased f."""


def _lit(value: str) -> str:
    """A SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def _like(text: str) -> str:
    """An ILIKE pattern matching `text` anywhere, with % and _ taken literally."""
    escaped = str(text).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return _lit(f"%{escaped}%") + " ESCAPE '\\'"


def _num(value) -> str:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"range bound must be a finite number, got {value!r}")
    return repr(number)


# --------------------------------------------------------------------------- overview
def table_counts(store: Store) -> dict[str, int]:
    """Rows per small table (latest-wins), and stored rows of the big per-feature tables.

    The big ones are counted over ``<table>_all`` (every stored version): resolving
    latest-wins over millions of token rows only to count them would dominate the page.
    """
    small = ("models", "runs", "dictionaries", "features", "attributions", "complexity", "results")
    big = ("feature_tokens", "activation_examples")
    frame = store.sql(" UNION ALL ".join([
        *(f"SELECT '{t}' AS t, count(*) AS n FROM {t}" for t in small),
        *(f"SELECT '{t}' AS t, count(*) AS n FROM {t}_all" for t in big),
        f"SELECT 'complexity_features' AS t, count(*) AS n FROM results WHERE name = {_lit(COMPLEXITY_FEATURES)}"]))
    return {str(t): int(n) for t, n in zip(frame["t"], frame["n"])}


def features_sql() -> str:
    """The features table with `complexity` filled in from wherever the complexity job put it:
    the features row itself, else the complexity table's K, else an older results payload."""
    ident = ", ".join(f'"{c}"' for c in IDENTITY)
    return (f"SELECT f.* REPLACE (coalesce(f.complexity, c.K, cx.k) AS complexity) FROM features f "
            f"LEFT JOIN (SELECT {ident}, K FROM complexity) c USING ({ident}) LEFT JOIN "
            f"(SELECT key, TRY_CAST(json_extract(payload, '$.K') AS DOUBLE) AS k FROM results "
            f"WHERE name = {_lit(COMPLEXITY_FEATURES)}) cx ON cx.key = {_KEY_SQL}")


def feature_summary(store: Store) -> pd.DataFrame:
    """Feature counts per model, kind, source and site."""
    return store.sql(
        'SELECT model, kind, source, site, count(*) AS n, avg(specialisation) AS mean_specialisation, '
        'avg(complexity) AS mean_complexity FROM (' + features_sql() + ') GROUP BY ALL ORDER BY model, kind, source, site')


def facets(store: Store) -> dict[str, list[str]]:
    """Distinct models, kinds, sources and sites, for the search form."""
    frame = store.sql("SELECT DISTINCT model, kind, source, site FROM features")
    return {c: sorted(frame[c].dropna().unique().tolist()) for c in ("model", "kind", "source", "site")}


def read_table(store: Store, table: str, **where) -> pd.DataFrame:
    """`Store.read` with equality filters."""
    return store.read(table, where=where or None)


def runs(store: Store) -> pd.DataFrame:
    """Every run with its provenance, newest first."""
    frame = store.read("runs")
    return frame.iloc[::-1].reset_index(drop=True)


def dictionaries(store: Store) -> pd.DataFrame:
    """Dictionaries with their metrics expanded into columns (``metric.<name>``)."""
    frame = store.read("dictionaries")
    if frame.empty:
        return frame
    metrics = pd.json_normalize([parse_json(m) for m in frame["metrics"]]).add_prefix("metric.")
    return pd.concat([frame.drop(columns=["metrics"]).reset_index(drop=True), metrics], axis=1)


def results(store: Store, name: str | None = None, prefix: str | None = None) -> pd.DataFrame:
    """Rows of the generic results table, payload parsed; by exact name or name prefix."""
    if name is not None:
        frame = store.read("results", where={"name": name})
    elif prefix is not None:
        frame = store.sql(f"SELECT * FROM results WHERE starts_with(name, {_lit(prefix)}) ORDER BY name, key")
    else:
        frame = store.read("results")
    if not frame.empty:
        frame = frame.assign(payload=[parse_json(p) for p in frame["payload"]])
    return frame


def figures(store: Store, prefix: str) -> pd.DataFrame:
    """Stored plotly figures (results named ``<prefix>...`` and ending ``_figure``), JSON as text."""
    return store.sql(f"SELECT name, key, payload FROM results WHERE starts_with(name, {_lit(prefix)}) "
                     f"AND ends_with(name, '_figure') ORDER BY name, key")


def result_names(store: Store) -> pd.DataFrame:
    """Result names with their row counts."""
    return store.sql("SELECT name, count(*) AS n, max(run_id) AS last_run FROM results GROUP BY name ORDER BY name")


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


# --------------------------------------------------------------------------- search
@dataclass(frozen=True)
class SearchQuery:
    """What the feature search filters by; every field is optional."""

    models: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    sites: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    token: str = ""
    """A decoded token among a feature's top tokens (case-insensitive, spaces ignored)."""
    token_rank: int = 10
    """How deep into the top-token list `token` may be."""
    context: str = ""
    """Text that must occur in one of the feature's stored activation examples."""
    label: str = ""
    """Text in the feature's label."""
    complexity: tuple[float, float] | None = None
    specialisation: tuple[float, float] | None = None
    order: str = "logit_z"
    """Sort column; the default ranks neurons by their top logit's z-score (`interp.methods.neurons.decoding`)."""
    descending: bool = True
    limit: int = 50
    offset: int = 0

    def __post_init__(self) -> None:
        if self.order not in SORTABLE:
            raise ValueError(f"cannot sort by {self.order!r}; valid: {', '.join(SORTABLE)}")
        for kind in self.kinds:
            FeatureKind.parse(kind)
        if not 1 <= self.limit <= 1000:
            raise ValueError(f"page size must be between 1 and 1000, got {self.limit}")
        if self.offset < 0:
            raise ValueError(f"offset must be >= 0, got {self.offset}")
        for name in ("complexity", "specialisation"):
            bounds = getattr(self, name)
            if bounds is not None and float(bounds[0]) > float(bounds[1]):
                raise ValueError(f"{name} range {bounds} is empty: the lower bound exceeds the upper")


SORTABLE = ("logit_z", "specialisation", "complexity", "max_act", "density", "index", "site")


def _in(col: str, values) -> str:
    return f'f."{col}" IN ({", ".join(_lit(v) for v in values)})'


def _in_lists(alias: str, frame: pd.DataFrame) -> str:
    """Literal IN lists on each identity column of `frame` (a superset of its rows, for pushdown)."""
    parts = []
    for c in IDENTITY:
        values = sorted(set(frame[c]))
        items = ", ".join(str(int(v)) if c == "index" else _lit(v) for v in values)
        parts.append(f'{alias}."{c}" IN ({items})')
    return " AND ".join(parts)


def _rows_in(alias: str, frame: pd.DataFrame) -> str:
    """The row of `alias` is one of `frame`'s identities (FALSE for an empty frame)."""
    if frame.empty:
        return "FALSE"
    rows = ", ".join("(" + ", ".join(str(int(r[c])) if c == "index" else _lit(r[c]) for c in IDENTITY) + ")"
                     for r in frame[list(IDENTITY)].drop_duplicates().to_dict("records"))
    cols = ", ".join(f'{alias}."{c}"' for c in IDENTITY)
    return f"({cols}) IN ({rows})"


def _two_phase(store: Store, table: str, condition: str) -> pd.DataFrame:
    """Identities of features with a latest row of `table` meeting `condition` (on alias x)."""
    ident = ", ".join(f'x."{c}"' for c in IDENTITY)
    cands = store.sql(f"SELECT DISTINCT {ident} FROM {table}_all x WHERE {condition}")
    if cands.empty:
        return cands
    return store.sql(f"SELECT DISTINCT {ident} FROM {table} x WHERE {_in_lists('x', cands)} "
                     f"AND {_rows_in('x', cands)} AND {condition}")


def token_condition(q: SearchQuery) -> str:
    return (f"x.\"end\" = 'top' AND x.rank < {int(q.token_rank)} "
            f"AND lower(trim(x.token_str)) = {_lit(q.token.strip().lower())}")


def context_condition(q: SearchQuery) -> str:
    return f"array_to_string(x.tokens, '') ILIKE {_like(q.context.strip())}"


def search_sql(q: SearchQuery, matches: list[pd.DataFrame] = ()) -> str:
    """The SELECT a `SearchQuery` runs (one page, with the total match count per row).

    `matches`: identity frames the feature must be in (the token / context matches).
    A feature's complexity is the features table's own column, else its K in the complexity
    table, else the K an older complexity job stored under `COMPLEXITY_FEATURES`.
    """
    where = []
    for col, values in (("model", q.models), ("kind", q.kinds), ("site", q.sites), ("source", q.sources)):
        if values:
            where.append(_in(col, values))
    if q.label.strip():
        where.append(f"f.label ILIKE {_like(q.label.strip())}")
    for col in ("complexity", "specialisation"):
        bounds = getattr(q, col)
        if bounds is not None:
            where.append(f"f.{col} BETWEEN {_num(bounds[0])} AND {_num(bounds[1])}")
    where.extend(_rows_in("f", m) for m in matches)
    clause = ("WHERE " + " AND ".join(where)) if where else ""
    direction = "DESC" if q.descending else "ASC"
    base = features_sql()
    return (f'SELECT f.model, f.site, f.kind, f."index", f.source, f.label, f.logit_z, f.specialisation, f.complexity, '
            f"f.max_act, f.density, count(*) OVER () AS total FROM ({base}) f {clause} "
            f'ORDER BY f."{q.order}" {direction} NULLS LAST, f.site, f."index" '
            f"LIMIT {int(q.limit)} OFFSET {int(q.offset)}")


def search(store: Store, q: SearchQuery) -> tuple[pd.DataFrame, int]:
    """One page of matching features with their top tokens, and the total number of matches."""
    matches = []
    if q.token.strip():
        matches.append(_two_phase(store, "feature_tokens", token_condition(q)))
    if q.context.strip():
        matches.append(_two_phase(store, "activation_examples", context_condition(q)))
    if any(m.empty for m in matches):
        return pd.DataFrame(columns=["key", *IDENTITY]), 0
    page = store.sql(search_sql(q, matches))
    total = int(page["total"].iloc[0]) if len(page) else 0
    page = page.drop(columns=["total"])
    if len(page):
        page = page.merge(top_tokens(store, page), on=list(IDENTITY), how="left")
        page.insert(0, "key", [FeatureId.from_record(r).key for r in page.to_dict("records")])
    return page, total


def top_tokens(store: Store, features: pd.DataFrame, n: int = 5) -> pd.DataFrame:
    """The first `n` top tokens of each listed feature (its first direction/variant), as text."""
    where = {c: sorted(set(features[c].tolist())) for c in IDENTITY}
    rows = store.read("feature_tokens", where=where,
                      columns=[*IDENTITY, "direction", "variant", "end", "rank", "token_str"])
    rows = rows[(rows["end"] == "top") & (rows["rank"] < n)]
    if rows.empty:
        return pd.DataFrame(columns=[*IDENTITY, "top_tokens"])
    first = rows.groupby(list(IDENTITY))[["direction", "variant"]].transform("min")
    rows = rows[(rows["direction"] == first["direction"]) & (rows["variant"] == first["variant"])]
    rows = rows.sort_values("rank")
    return rows.groupby(list(IDENTITY), as_index=False).agg(top_tokens=("token_str", " | ".join))
