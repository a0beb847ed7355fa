"""Store-wide reads: table sizes, facets, runs, dictionaries, results, per-layer statistics."""

from __future__ import annotations

import pandas as pd

from interp.features import FeatureKind
from interp.sites import layer_of
from interp.store.read.complexity import FEATURES_NAME as COMPLEXITY_FEATURES
from interp.store.read.sql import features_sql, lit, parse_json
from interp.store.store import Store


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
        f"SELECT 'complexity_features' AS t, count(*) AS n FROM results WHERE name = {lit(COMPLEXITY_FEATURES)}"]))
    return {str(t): int(n) for t, n in zip(frame["t"], frame["n"])}


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
        frame = store.sql(f"SELECT * FROM results WHERE starts_with(name, {lit(prefix)}) ORDER BY name, key")
    else:
        frame = store.read("results")
    if not frame.empty:
        frame = frame.assign(payload=[parse_json(p) for p in frame["payload"]])
    return frame


def figures(store: Store, prefix: str) -> pd.DataFrame:
    """Stored plotly figures (results named ``<prefix>...`` and ending ``_figure``), JSON as text."""
    return store.sql(f"SELECT name, key, payload FROM results WHERE starts_with(name, {lit(prefix)}) "
                     f"AND ends_with(name, '_figure') ORDER BY name, key")


def result_names(store: Store) -> pd.DataFrame:
    """Result names with their row counts."""
    return store.sql("SELECT name, count(*) AS n, max(run_id) AS last_run FROM results GROUP BY name ORDER BY name")


def layer_stats(store: Store, model: str | None = None) -> pd.DataFrame:
    """Per site and kind: its layer, feature count, mean logit z, mean/median specialisation,
    complexity, max_act and density; ordered by model, kind and layer as a number (sites
    without a layer last)."""
    cond = f"WHERE model = {lit(model)}" if model else ""
    stats = store.sql(
        f"SELECT model, site, kind, count(*) AS n, avg(logit_z) AS mean_logit_z, "
        f"avg(specialisation) AS mean_specialisation, "
        f"median(specialisation) AS median_specialisation, avg(complexity) AS mean_complexity, "
        f"avg(max_act) AS mean_max_act, avg(density) AS mean_density FROM ({features_sql()}) {cond} "
        f"GROUP BY ALL ORDER BY model, kind, site")
    stats.insert(2, "layer", pd.array([layer_of(s) for s in stats["site"]], dtype="Int64"))
    return stats.sort_values(["model", "kind", "layer", "site"], na_position="last", kind="stable"
                             ).reset_index(drop=True)


def feature_sample(store: Store, model: str | None = None, kind: str | None = None, n: int = 5000) -> pd.DataFrame:
    """A reproducible sample of `n` feature rows of `model` / `kind` (for distributions over a
    whole map). DuckDB samples before WHERE, so the filter runs in a subquery first."""
    cond = [f"model = {lit(model)}"] if model else []
    if kind:
        cond.append(f"kind = {lit(FeatureKind.parse(kind).value)}")
    clause = ("WHERE " + " AND ".join(cond)) if cond else ""
    rows = (f'SELECT model, site, kind, "index", source, label, logit_z, specialisation, complexity, max_act '
            f"FROM ({features_sql()}) {clause}")
    return store.sql(f"SELECT * FROM ({rows}) USING SAMPLE reservoir({int(n)} ROWS) REPEATABLE (0)")
