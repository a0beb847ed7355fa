"""Reads about one feature: its row, tokens, examples, complexity, neighbours, clamp sweeps."""

from __future__ import annotations

import pandas as pd

from interp.features import FeatureId, FeatureKind
from interp.sites import layer_of
from interp.store.read import complexity
from interp.store.read.sql import IDENTITY, in_lists, lit, match, parse_json, rows_in
from interp.store.store import Store


def parse_key(store: Store, key: str) -> FeatureId:
    """The feature named by a ``model/source/site/kind/index`` key.

    Model and source names may contain slashes, so the split between them is resolved
    against the features the store holds; unknown keys raise ValueError.
    """
    parts = str(key).strip().strip("/").split("/")
    if len(parts) < 4:
        raise ValueError(f"feature key {key!r} is not 'model/source/site/kind/index' "
                         f"(e.g. smollm2-135m//blocks.3.mlp.hook_post/neuron/42)")
    site, kind, index = parts[-3:]
    if not index.isdigit():
        raise ValueError(f"feature key {key!r}: index {index!r} is not a non-negative integer")
    FeatureKind.parse(kind)
    head = parts[:-3]
    candidates = [FeatureId("/".join(head[:i]), site, kind, int(index), "/".join(head[i:]))
                  for i in range(1, len(head) + 1)]
    for fid in candidates:
        if feature_row(store, fid) is not None:
            return fid
    raise ValueError(f"no feature {key!r} in this store; find one on the Search page")


def feature_row(store: Store, fid: FeatureId) -> dict | None:
    """The features-table row of `fid` (metrics parsed), or None.

    ``complexity`` is the row's own value, else the K of the feature's complexity row (what
    the Complexity tab shows), as `interp.store.read.sql.features_sql` fills it for search.
    """
    frame = store.read("features", where=fid.to_record())
    if frame.empty:
        return None
    row = frame.iloc[0].to_dict()
    row["metrics"] = parse_json(row.get("metrics"))
    if row.get("complexity") is None or pd.isna(row.get("complexity")):
        cx = complexity.feature_complexity(store, fid)
        if not cx.empty and "K" in cx and pd.notna(cx["K"].iloc[0]):
            row["complexity"] = float(cx["K"].iloc[0])
    return row


def feature_tokens(store: Store, fid: FeatureId) -> pd.DataFrame:
    return store.feature_tokens(fid)


def feature_examples(store: Store, fid: FeatureId) -> pd.DataFrame:
    return store.examples(fid)


def feature_complexity(store: Store, fid: FeatureId) -> pd.DataFrame:
    """This feature's complexity row: the newest finished run's copy (`interp.store.read.complexity`)."""
    return complexity.feature_complexity(store, fid)


def feature_results(store: Store, fid: FeatureId) -> pd.DataFrame:
    """Results rows whose key is this feature's key (e.g. a clamping dose-response)."""
    frame = store.read("results", where={"key": fid.key})
    if not frame.empty:
        frame = frame.assign(payload=[parse_json(p) for p in frame["payload"]])
    return frame


def neighbours(store: Store, fid: FeatureId, n: int = 10, depth: int = 20) -> pd.DataFrame:
    """Features of the same model whose top decoded tokens overlap most with `fid`'s.

    Overlap = number of shared token ids among the top `depth` (ties: higher specialisation
    first); a vocabulary-space nearness that needs no stored vectors.
    """
    mine = store.feature_tokens(fid)
    mine = mine[(mine["end"] == "top") & (mine["rank"] < depth)]
    ids = sorted({int(t) for t in mine["token_id"].dropna()})
    if not ids:
        return pd.DataFrame()
    cond = (f"x.model = {lit(fid.model)} AND x.\"end\" = 'top' AND x.rank < {int(depth)} "
            f"AND x.token_id IN ({', '.join(map(str, ids))}) AND NOT ({match('x', fid)})")
    ident = ", ".join(f'x."{c}"' for c in IDENTITY)
    # rank candidates on every stored version, then recount the best few on their latest rows
    cands = store.sql(f"SELECT {ident}, count(DISTINCT x.token_id) AS shared FROM feature_tokens_all x "
                      f"WHERE {cond} GROUP BY ALL ORDER BY shared DESC LIMIT {int(n) * 5}")
    if cands.empty:
        return pd.DataFrame()
    return store.sql(
        f"WITH hits AS (SELECT {ident}, count(DISTINCT x.token_id) AS shared, "
        f"string_agg(DISTINCT x.token_str, ' | ') AS shared_tokens FROM feature_tokens x "
        f"WHERE {in_lists('x', cands)} AND {rows_in('x', cands)} AND {cond} GROUP BY ALL) "
        f"SELECT h.*, f.label, f.specialisation FROM hits h LEFT JOIN features f USING "
        f"(model, site, kind, \"index\", source) ORDER BY shared DESC, f.specialisation DESC NULLS LAST "
        f"LIMIT {int(n)}")


