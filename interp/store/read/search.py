"""Paged feature search: filters, ordering and one page of rows, all inside DuckDB.

A search over a whole-model neuron map (tens of thousands of features, millions of token
rows) returns one page of rows, never the whole table.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from interp.features import FeatureId, FeatureKind
from interp.store.read.sql import IDENTITY, features_sql, is_in, labels_sql, like, lit, num, rows_in, two_phase
from interp.store.store import Store


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
    """Text in the feature's label: its shown label (user edit, else automatic), its automatic
    input or output label, or the features table's own label."""
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


def token_condition(q: SearchQuery) -> str:
    return (f"x.\"end\" = 'top' AND x.rank < {int(q.token_rank)} "
            f"AND lower(trim(x.token_str)) = {lit(q.token.strip().lower())}")


def context_condition(q: SearchQuery) -> str:
    return f"array_to_string(x.tokens, '') ILIKE {like(q.context.strip())}"


def search_sql(q: SearchQuery, matches: list[pd.DataFrame] = ()) -> str:
    """The SELECT a `SearchQuery` runs (one page, with the total match count per row).

    `matches`: identity frames the feature must be in (the token / context matches).
    A feature's complexity is the features table's own column, else its K in the complexity
    table, else the K of its winning complexity copy (`interp.store.read.complexity`).
    """
    where = []
    for col, values in (("model", q.models), ("kind", q.kinds), ("site", q.sites), ("source", q.sources)):
        if values:
            where.append(is_in(col, values))
    if q.label.strip():
        pattern = like(q.label.strip())
        where.append("(" + " OR ".join(f"{c} ILIKE {pattern}" for c in
                                       ("f.label", "l.label", "l.input_label", "l.output_label")) + ")")
    for col in ("complexity", "specialisation"):
        bounds = getattr(q, col)
        if bounds is not None:
            where.append(f"f.{col} BETWEEN {num(bounds[0])} AND {num(bounds[1])}")
    where.extend(rows_in("f", m) for m in matches)
    clause = ("WHERE " + " AND ".join(where)) if where else ""
    direction = "DESC" if q.descending else "ASC"
    base, ident = features_sql(), ", ".join(f'"{c}"' for c in IDENTITY)
    return (f'SELECT f.model, f.site, f.kind, f."index", f.source, coalesce(l.label, f.label) AS label, f.logit_z, '
            f"f.specialisation, f.complexity, f.max_act, f.density, count(*) OVER () AS total FROM ({base}) f "
            f"LEFT JOIN ({labels_sql()}) l USING ({ident}) {clause} "
            f'ORDER BY f."{q.order}" {direction} NULLS LAST, f.site, f."index" '
            f"LIMIT {int(q.limit)} OFFSET {int(q.offset)}")


def search(store: Store, q: SearchQuery) -> tuple[pd.DataFrame, int]:
    """One page of matching features with their top tokens, and the total number of matches."""
    matches = []
    if q.token.strip():
        matches.append(two_phase(store, "feature_tokens", token_condition(q)))
    if q.context.strip():
        matches.append(two_phase(store, "activation_examples", context_condition(q)))
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
