"""Read-only queries about one feature and about each method's stored results.

Plain functions of a `Store` (no streamlit), cached by `app.state`; SQL literals only
through the helpers of `app.queries`.
"""

from __future__ import annotations

import json

import pandas as pd

from app.queries import COMPLEXITY_FEATURES, IDENTITY, _in_lists, _lit, _rows_in, features_sql, parse_json
from interp.features import FeatureId, FeatureKind
from interp.store import Store


def _match(alias: str, fid: FeatureId) -> str:
    """SQL condition: the row under `alias` belongs to feature `fid`."""
    r = fid.to_record()
    return " AND ".join(f'{alias}."{c}" = ' + (str(int(r[c])) if c == "index" else _lit(r[c])) for c in IDENTITY)


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
    """The features-table row of `fid` (metrics parsed), or None."""
    frame = store.read("features", where=fid.to_record())
    if frame.empty:
        return None
    row = frame.iloc[0].to_dict()
    row["metrics"] = parse_json(row.get("metrics"))
    return row


def feature_complexity(store: Store, fid: FeatureId) -> pd.DataFrame:
    """This feature's complexity row(s): the complexity table, else the older results payload."""
    frame = store.read("complexity", where=fid.to_record())
    if frame.empty:
        res = store.read("results", where={"name": COMPLEXITY_FEATURES, "key": fid.key})
        frame = pd.DataFrame([parse_json(p) for p in res["payload"]])
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
    cond = (f"x.model = {_lit(fid.model)} AND x.\"end\" = 'top' AND x.rank < {int(depth)} "
            f"AND x.token_id IN ({', '.join(map(str, ids))}) AND NOT ({_match('x', fid)})")
    ident = ", ".join(f'x."{c}"' for c in IDENTITY)
    # rank candidates on every stored version, then recount the best few on their latest rows
    cands = store.sql(f"SELECT {ident}, count(DISTINCT x.token_id) AS shared FROM feature_tokens_all x "
                      f"WHERE {cond} GROUP BY ALL ORDER BY shared DESC LIMIT {int(n) * 5}")
    if cands.empty:
        return pd.DataFrame()
    return store.sql(
        f"WITH hits AS (SELECT {ident}, count(DISTINCT x.token_id) AS shared, "
        f"string_agg(DISTINCT x.token_str, ' | ') AS shared_tokens FROM feature_tokens x "
        f"WHERE {_in_lists('x', cands)} AND {_rows_in('x', cands)} AND {cond} GROUP BY ALL) "
        f"SELECT h.*, f.label, f.specialisation FROM hits h LEFT JOIN features f USING "
        f"(model, site, kind, \"index\", source) ORDER BY shared DESC, f.specialisation DESC NULLS LAST "
        f"LIMIT {int(n)}")


CLAMP = "clamp"
"""Results name of `interp clamp` dose-response sweeps, keyed ``model/L{layer}/N{index}/<prompt hash>``."""


def clamp_sweeps(store: Store, fid: FeatureId) -> list[dict]:
    """The stored clamping dose-response payloads of a neuron (every prompt it was clamped on)."""
    from interp.viz.store_views import layer_of

    if fid.kind.value != "neuron":
        return []
    prefix = f"{fid.model}/L{layer_of(fid.site)}/N{fid.index}/"
    frame = store.sql(f"SELECT key, payload FROM results WHERE name = {_lit(CLAMP)} "
                      f"AND starts_with(key, {_lit(prefix)}) ORDER BY key")
    return [parse_json(p) for p in frame["payload"]]


def feature_results(store: Store, fid: FeatureId) -> pd.DataFrame:
    """Results rows whose key is this feature's key (e.g. a clamping dose-response)."""
    frame = store.read("results", where={"key": fid.key})
    if not frame.empty:
        frame = frame.assign(payload=[parse_json(p) for p in frame["payload"]])
    return frame


CIRCUIT = "circuit"
"""Results name of stored circuit graphs (payload: the ``interp.circuit/1`` JSON)."""


def circuits(store: Store) -> pd.DataFrame:
    """Stored circuit graphs: key, prompt, target label, node and edge counts."""
    frame = store.read("results", where={"name": CIRCUIT})
    rows = []
    for key, run_id, payload in zip(frame["key"], frame["run_id"], frame["payload"]):
        graph = parse_json(payload)
        meta = graph.get("meta", {})
        rows.append({"key": key, "model": meta.get("model"), "prompt": meta.get("prompt"),
                     "target": (meta.get("target") or {}).get("label"), "nodes": len(graph.get("nodes", [])),
                     "edges": len(graph.get("edges", [])), "run_id": run_id})
    return pd.DataFrame(rows)


def circuit_payload(store: Store, key: str) -> dict:
    frame = store.read("results", where={"name": CIRCUIT, "key": key})
    if frame.empty:
        raise ValueError(f"no circuit {key!r} in this store; pick one from the list")
    return parse_json(frame.iloc[0]["payload"])


def circuits_with(store: Store, fid: FeatureId) -> pd.DataFrame:
    """Circuit graphs in which this dictionary latent is a node, with its influence there.

    Graph nodes name latents by layer and index (``latent/L{l}/{pos}/{i}``) and the graph's
    meta maps each layer to its dictionary, so a latent of dictionary `fid.source` matches
    a node of a layer served by that dictionary with the same index.
    """
    if not fid.source:
        return pd.DataFrame()
    frame = store.sql(f"SELECT key, payload FROM results WHERE name = {_lit(CIRCUIT)} "
                      f"AND contains(payload, {_lit(json.dumps(fid.source))})")
    rows = []
    for key, payload in zip(frame["key"], frame["payload"]):
        graph = parse_json(payload)
        meta = graph.get("meta", {})
        layers = {int(l) for l, name in (meta.get("dictionaries") or {}).items() if name == fid.source}
        for node in graph.get("nodes", []):
            if node.get("type") == "latent" and node.get("layer") in layers and node.get("index") == fid.index:
                rows.append({"circuit": key, "prompt": meta.get("prompt"), "position": node.get("position"),
                             "activation": node.get("activation"), "influence": node.get("influence"),
                             "target": (meta.get("target") or {}).get("label")})
    return pd.DataFrame(rows)


def feature_examples(store: Store, fid: FeatureId) -> pd.DataFrame:
    return store.examples(fid)


def feature_tokens(store: Store, fid: FeatureId) -> pd.DataFrame:
    return store.feature_tokens(fid)


def attributions(store: Store, model: str | None = None, prompt: str | None = None) -> pd.DataFrame:
    where = {k: v for k, v in (("model", model), ("prompt", prompt)) if v is not None}
    frame = store.read("attributions", where=where)
    if not frame.empty:
        frame = frame.assign(extra=[parse_json(e) for e in frame["extra"]])
    return frame


def faithfulness_summary(store: Store, model: str | None = None) -> pd.DataFrame:
    """Per (convention, method): n prompts, mean Soft-NS / Soft-NC with 95% bootstrap intervals.

    From the faithfulness `interp attribute` stores with each attribution (``extra``). ReAGent
    attributions none of whose probes converged are left out of the means and counted in
    ``not_converged`` (their scores average unconverged probes). ``convention``: the soft
    metrics' convention ("interp" for attributions stored before conventions were recorded).
    """
    import numpy as np
    from scipy.stats import bootstrap

    frame = attributions(store, model=model)
    conv = frame["converged"] if "converged" in frame else pd.Series([None] * len(frame), dtype=object)
    rows = [{"method": m, "_converged": c, **(e.get("faithfulness") or {})}
            for m, e, c in zip(frame.get("method", []), frame.get("extra", []), conv)
            if isinstance(e, dict) and e.get("faithfulness")]
    table = pd.DataFrame(rows)
    if len(table):
        table["convention"] = table["convention"].fillna("interp") if "convention" in table else "interp"
    out = []
    for (convention, method), part in (table.groupby(["convention", "method"], sort=True) if len(table) else []):
        bad = part["_converged"].map(lambda c: c is not None and not pd.isna(c) and not bool(c))
        rec = {"convention": convention, "method": method, "n": int((~bad).sum()), "not_converged": int(bad.sum())}
        part = part[~bad]
        for metric in ("soft_ns", "soft_nc"):
            values = part[metric].dropna().to_numpy(dtype=float)
            rec[metric] = float(values.mean()) if len(values) else float("nan")
            lo = hi = rec[metric]
            if len(values) > 1 and np.ptp(values) > 0:
                ci = bootstrap((values,), np.mean, n_resamples=1000, confidence_level=0.95,
                               random_state=0).confidence_interval
                lo, hi = float(ci.low), float(ci.high)
            rec[f"{metric}_lo"], rec[f"{metric}_hi"] = lo, hi
        out.append(rec)
    return pd.DataFrame(out)


def complexity_features(store: Store, model: str | None = None) -> pd.DataFrame:
    """Per-feature complexity rows (K, first decodable layer, curve, importance) with labels.

    From the complexity table; stores written before it held K fall back to the
    `COMPLEXITY_FEATURES` payloads of the results table.
    """
    frame = store.read("complexity", where={"model": model} if model else None)
    if frame.empty:
        res = store.read("results", where={"name": COMPLEXITY_FEATURES})
        frame = pd.DataFrame([parse_json(p) for p in res["payload"]])
        if model and not frame.empty:
            frame = frame[frame["model"] == model]
    if frame.empty:
        return frame
    labels = store.read("features", where={c: sorted(set(frame[c])) for c in ("model", "kind")},
                        columns=[*IDENTITY, "label"])
    return frame.merge(labels, on=list(IDENTITY), how="left")


def layer_stats(store: Store, model: str | None = None) -> pd.DataFrame:
    """Per site and kind: feature count, mean/median specialisation and complexity."""
    cond = f"WHERE model = {_lit(model)}" if model else ""
    return store.sql(
        f"SELECT model, site, kind, count(*) AS n, avg(specialisation) AS mean_specialisation, "
        f"median(specialisation) AS median_specialisation, avg(complexity) AS mean_complexity, "
        f"avg(max_act) AS mean_max_act FROM ({features_sql()}) {cond} GROUP BY ALL ORDER BY model, kind, site")


def feature_sample(store: Store, model: str | None = None, kind: str | None = None, n: int = 5000) -> pd.DataFrame:
    """A reproducible sample of feature rows (for distributions over a whole map)."""
    cond = [f"model = {_lit(model)}"] if model else []
    if kind:
        cond.append(f"kind = {_lit(FeatureKind.parse(kind).value)}")
    clause = ("WHERE " + " AND ".join(cond)) if cond else ""
    return store.sql(f'SELECT model, site, kind, "index", source, label, specialisation, complexity, max_act '
                     f"FROM ({features_sql()}) {clause} USING SAMPLE reservoir({int(n)} ROWS) REPEATABLE (0)")
