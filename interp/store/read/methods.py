"""Reads of each method's stored results: circuits, attributions and faithfulness, complexity."""

from __future__ import annotations

import json

import pandas as pd

from interp.features import FeatureId
from interp.store.read import complexity
from interp.store.read.sql import IDENTITY, lit, parse_json
from interp.store.store import Store


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
    frame = store.sql(f"SELECT key, payload FROM results WHERE name = {lit(CIRCUIT)} "
                      f"AND contains(payload, {lit(json.dumps(fid.source))})")
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

    The winning copy per feature (`interp.store.read.complexity`: the newest finished run's).
    """
    frame = complexity.read_complexity(store, model)
    if frame.empty:
        return frame
    labels = store.read("features", where={c: sorted(set(frame[c])) for c in ("model", "kind")},
                        columns=[*IDENTITY, "label"])
    return frame.merge(labels, on=list(IDENTITY), how="left")
