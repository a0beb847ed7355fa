"""The circuits family in the store: graphs, connection tables, and the transcoders they use.

- Graphs: a ``results`` row (name ``circuit``, key = `graph_key`, payload = the graph's JSON
  form, see `interp.methods.circuits.graph`) and tensor bundle ``circuits/graphs/<key>``
  (edge_index (2, n_edges) into the node list, edge_weight, node_influence).
- Attribution graphs: a ``results`` row (name ``attribution-graph``) and tensor bundle
  ``circuits/attribution/<key>`` (`save_attribution_graph`); a reader's pins, supernodes and
  annotations are saved into the row's qParams by `update_graph_params`, the app reads the
  pruned file through `attribution_graph_table` / `attribution_graph_file`.
- Connection tables: tensor bundle ``circuits/connections/<up>/<down>`` (top-k upstream and
  downstream index/weight, metadata ``upstream``, ``downstream``, ``scale``).
- Transcoders are read from the ``dictionaries`` table (`dictionary_rows`,
  `transcoder_rows`); loading their weights is `interp.dictionaries.io`'s. An imported
  transcoder set is written as the store's own dictionaries (`save_transcoders`, names
  `transcoder_set_names`, `stored_dictionaries` says which names are taken).
"""

from __future__ import annotations

import json
from typing import Sequence

import pandas as pd
import torch

from interp.methods.circuits.connections import ConnectionTable
from interp.methods.circuits.graph import CircuitGraph, graph_key

GRAPH_NAME = "circuit"
"""``results`` name of stored graphs."""


def save_graph(store, graph: CircuitGraph, run_id: str, key: str | None = None) -> str:
    """Write `graph` (results row + tensor bundle, see the module docstring); returns the key."""
    key = graph_safe_key(graph, key)
    order = {n.id: i for i, n in enumerate(graph.nodes)}
    tensors = {  # built before anything is written: a bad graph fails with the store untouched
        "edge_index": torch.tensor([[order[e.source] for e in graph.edges], [order[e.target] for e in graph.edges]],
                                   dtype=torch.long).reshape(2, -1),
        "edge_weight": torch.tensor([e.weight for e in graph.edges], dtype=torch.float64),
        "node_influence": torch.tensor([n.influence for n in graph.nodes], dtype=torch.float64),
    }
    graph.meta["key"] = key
    store.write("results", [{"name": GRAPH_NAME, "key": key, "payload": graph.to_json()}], run_id=run_id)
    store.save_tensors(f"circuits/graphs/{key}", tensors, {"key": key, "node_ids": json.dumps(list(order))},
                       run_id=run_id)
    return key


def graph_safe_key(graph: CircuitGraph, key: str | None = None) -> str:
    """The key `save_graph` stores `graph` under, refused (ValueError) unless it is a safe store name."""
    from interp.store.files import validate_name

    key = key or graph.meta.get("key") or graph_key(graph.meta)
    validate_name(f"circuits/graphs/{key}", "circuit key", allow_slash=True)
    return key


def load_graph(store, key: str) -> CircuitGraph:
    """The graph stored under `key` (see `save_graph`)."""
    rows = store.read("results", where={"name": GRAPH_NAME, "key": key})
    if rows.empty:
        known = store.read("results", where={"name": GRAPH_NAME}, columns=["key"])["key"].tolist()
        raise KeyError(f"no circuit {key!r} in store {store.root}; stored: {', '.join(known) or 'none'}")
    return CircuitGraph.from_json(rows.iloc[0]["payload"])


def save_connections(store, up_name: str, down_name: str, table: ConnectionTable, run_id: str | None = None) -> None:
    """Store `table` as tensor bundle ``circuits/connections/<up>/<down>``."""
    store.save_tensors(f"circuits/connections/{up_name}/{down_name}", {
        "upstream_index": table.upstream_index, "upstream_weight": table.upstream_weight,
        "downstream_index": table.downstream_index, "downstream_weight": table.downstream_weight,
    }, {"upstream": up_name, "downstream": down_name, "scale": table.scale}, run_id=run_id)


def load_connections(store, up_name: str, down_name: str) -> ConnectionTable:
    """The table `save_connections` stored for (`up_name`, `down_name`)."""
    name = f"circuits/connections/{up_name}/{down_name}"
    t = store.load_tensors(name)
    meta = store.tensor_metadata(name)
    return ConnectionTable(t["upstream_index"], t["upstream_weight"], t["downstream_index"],
                           t["downstream_weight"], float(meta.get("scale", 1.0)))


def dictionary_rows(store, names: Sequence[str]) -> pd.DataFrame:
    """``dictionaries`` rows named `names` (all rows when empty); a clear error for a missing one."""
    rows = store.read("dictionaries", where={"name": list(names)}) if names else store.read("dictionaries")
    found = set(rows["name"]) if not rows.empty else set()
    missing = [n for n in names if n not in found]
    if missing:
        raise ValueError(f"no dictionaries {missing} in store {store.root}; stored: {sorted(found) or 'none'}")
    return rows


def transcoder_rows(store, model: str) -> pd.DataFrame:
    """``dictionaries`` rows of kind transcoder stored for `model` (a name or alias)."""
    from interp.models.registry import store_model_name

    return store.read("dictionaries", where={"model": store_model_name(model), "kind": "transcoder"})


def transcoder_set_names(prefix: str, n_layers: int) -> list[str]:
    """Store names of a transcoder set's dictionaries, one per layer: ``PREFIX-L<layer>``."""
    return [f"{prefix}-L{layer}" for layer in range(n_layers)]


def stored_dictionaries(store, names: Sequence[str]) -> list[str]:
    """Those of `names` the store already holds (a ``dictionaries`` row or a folder)."""
    rows = store.read("dictionaries", where={"name": list(names)}, columns=["name"])
    found = set(rows["name"]) if not rows.empty else set()
    return [n for n in names if n in found or store.dictionary_dir(n).exists()]


def save_transcoders(store, transcoders, adapter, names: Sequence[str], run_id: str, origin: dict | None = None,
                     files: Sequence | None = None) -> list[str]:
    """Store `transcoders` ({layer: Dictionary}) as dictionaries `names` (in layer order), as training publishes them.

    Each gets a SAELens folder (`interp.dictionaries.io.save_dictionary`, reading the layer's
    ``mlp_in`` and writing its ``mlp_out``) and a ``dictionaries`` row of kind transcoder, no
    metrics (they were not evaluated here); `origin` (where they came from) and the layer's
    entry of `files` go into the row's config. The rows are written together, after every folder.
    """
    from interp.dictionaries.io import save_dictionary

    layers = sorted(transcoders)
    if len(names) != len(layers):
        raise ValueError(f"{len(names)} names for {len(layers)} transcoders")
    rows = []
    for i, (layer, name) in enumerate(zip(layers, names)):
        tc, sites = transcoders[layer], adapter.sites(layer)
        config = {"imported": dict(origin or {}), "layer": layer, "d_sae": tc.d_sae, "k": tc.k, "skip": tc.skip}
        if files is not None:
            config["file"] = str(files[i])
        meta = {"model_name": adapter.name, "hook_name": sites.mlp_in, "hook_name_out": sites.mlp_out,
                "hook_layer": layer, "prepend_bos": True, "interp_kind": "transcoder", "training_arch": tc.arch}
        folder = save_dictionary(store, name, tc, meta)
        rows.append({"name": name, "model": adapter.store_name, "site": sites.mlp_in, "hook_out": sites.mlp_out,
                     "kind": "transcoder", "arch": tc.arch, "config": config, "metrics": {},
                     "path": str(folder.relative_to(store.root))})
    store.write("dictionaries", rows, run_id=run_id)
    return list(names)


ATTRIBUTION_NAME = "attribution-graph"
"""``results`` name of stored attribution graphs (`interp.methods.circuits.attribution_graph`)."""


def attribution_key(graph) -> str:
    """Stable key of an attribution graph: a hash of model, prompt, logits, dictionaries and config."""
    import hashlib

    ident = {"model": graph.meta.get("model"), "prompt": graph.prompt, "logits": graph.logit_tokens,
             "dictionaries": graph.meta.get("dictionaries"), "config": graph.meta.get("config"),
             "file": graph.meta.get("file_metadata")}
    digest = hashlib.sha1(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return f"graph-{digest}"


def save_attribution_graph(store, graph, run_id: str, key: str | None = None) -> str:
    """Store `graph`: a ``results`` row (name ``attribution-graph``, payload = everything but the
    tensors) and tensor bundle ``circuits/attribution/<key>`` (the adjacency as its nonzero
    entries ``adjacency_index`` (2, nnz) / ``adjacency_value``, and the node tensors)."""
    from interp.methods.circuits.graph_files import _TENSORS, to_interp
    from interp.store.files import validate_name

    key = key or graph.meta.get("key") or attribution_key(graph)
    validate_name(f"circuits/attribution/{key}", "graph key", allow_slash=True)
    graph.meta["key"] = key
    payload = to_interp(graph)
    payload.pop("tensors"), payload.pop("adjacency")
    payload["n_nodes"], payload["adjacency_dtype"] = graph.n_nodes, str(graph.adjacency.dtype).removeprefix("torch.")
    nz = torch.nonzero(graph.adjacency, as_tuple=True)
    tensors = {"adjacency_index": torch.stack(nz), "adjacency_value": graph.adjacency[nz]}
    tensors |= {name: getattr(graph, name) for name in _TENSORS if getattr(graph, name) is not None}
    tensors = {n: t.to(torch.uint8) if t.dtype == torch.bool else t for n, t in tensors.items()}
    store.write("results", [{"name": ATTRIBUTION_NAME, "key": key, "payload": payload}], run_id=run_id)
    store.save_tensors(f"circuits/attribution/{key}", tensors, {"key": key}, run_id=run_id)
    return key


def load_attribution_graph(store, key: str, adjacency: bool = True):
    """The attribution graph stored under `key` (see `save_attribution_graph`).

    `adjacency=False`: every node field but the edges (an (n_nodes, 0) adjacency), for reading
    node ids of a large graph without its dense (n_nodes, n_nodes) matrix."""
    from interp.methods.circuits.attribution_graph import AttributionGraph
    from interp.methods.circuits.graph_files import _TENSORS

    rows = store.read("results", where={"name": ATTRIBUTION_NAME, "key": key})
    if rows.empty:
        raise KeyError(f"no attribution graph {key!r} in store {store.root}; stored: "
                       f"{', '.join(stored_graph_keys(store)) or 'none'}")
    p = rows.iloc[-1]["payload"]
    p = json.loads(p) if isinstance(p, str) else p
    t = store.load_tensors(f"circuits/attribution/{key}")
    n = int(p["n_nodes"])
    dense = torch.zeros(n, n if adjacency else 0, dtype=getattr(torch, p["adjacency_dtype"]))
    if adjacency:
        dense[t["adjacency_index"][0], t["adjacency_index"][1]] = t["adjacency_value"].to(dense.dtype)
    fields = {name: t.get(name) for name in _TENSORS}
    if fields["kept_nodes"] is not None:
        fields["kept_nodes"] = fields["kept_nodes"].bool()
    return AttributionGraph(prompt=p["prompt"], str_tokens=list(p["str_tokens"]), n_layers=int(p["n_layers"]),
                            d_vocab=int(p["d_vocab"]), adjacency=dense, logit_tokens=list(p["logit_tokens"]),
                            logit_strings=list(p["logit_strings"]), meta=dict(p["meta"]), labels=dict(p["labels"]),
                            qparams=dict(p["qparams"]), **fields)


def stored_graph_keys(store) -> list[str]:
    """Keys of every stored graph: attribution graphs and path-search circuits."""
    rows = store.read("results", where={"name": [ATTRIBUTION_NAME, GRAPH_NAME]}, columns=["key"])
    return rows["key"].tolist()


def _graph_row(store, key: str):
    rows = store.read("results", where={"name": ATTRIBUTION_NAME, "key": key})
    if rows.empty:
        raise KeyError(f"no attribution graph {key!r} in store {store.root}; stored: "
                       f"{', '.join(attribution_keys(store)) or 'none'}")
    return rows.iloc[-1]


def attribution_keys(store) -> list[str]:
    """Keys of the stored attribution graphs."""
    return store.read("results", where={"name": ATTRIBUTION_NAME}, columns=["key"])["key"].tolist()


def update_graph_params(store, key: str, pinned: Sequence[str] | None = None,
                        supernodes: Sequence[Sequence[str]] | None = None,
                        annotations: dict[str, str] | None = None) -> dict:
    """Save a reader's pins, supernodes and annotations into stored graph `key`'s qParams.

    Each argument left None keeps its stored value; node ids are checked against the graph
    (`interp.methods.circuits.graph_view.check_params`). The graph's results row is written
    again with the new query state under its own run (the tensors stay as they are), so the
    latest row wins and `interp circuit export` writes the new ``qParams``. Returns them.
    """
    from interp.methods.circuits.graph_files import node_id
    from interp.methods.circuits.graph_view import check_params

    row = _graph_row(store, key)
    payload = row["payload"]
    payload = dict(json.loads(payload) if isinstance(payload, str) else payload)
    graph = load_attribution_graph(store, key, adjacency=False)  # node ids only
    nodes = range(graph.n_nodes) if graph.kept_nodes is None else torch.nonzero(graph.kept_nodes).flatten().tolist()
    check_params([node_id(graph, i) for i in nodes], pinned, supernodes, annotations)
    q = dict(payload.get("qparams") or {})
    if pinned is not None:
        q["pinnedIds"] = list(dict.fromkeys(pinned))
    if supernodes is not None:
        q["supernodes"] = [[str(g[0]), *g[1:]] for g in supernodes]
    if annotations is not None:
        q["annotations"] = {k: str(v) for k, v in annotations.items() if str(v).strip()}
    payload["qparams"] = q
    store.write("results", [{"name": ATTRIBUTION_NAME, "key": key, "payload": payload}], run_id=row["run_id"])
    return q


def attribution_graph_table(store) -> pd.DataFrame:
    """Stored attribution graphs: key, model, prompt, node and logit counts, scores, pins, run id."""
    frame = store.read("results", where={"name": ATTRIBUTION_NAME})
    rows = []
    for key, run_id, payload in zip(frame["key"], frame["run_id"], frame["payload"]):
        p = json.loads(payload) if isinstance(payload, str) else payload
        meta, scores = p.get("meta") or {}, (p.get("meta") or {}).get("scores") or {}
        rows.append({"key": key, "model": meta.get("model"), "prompt": p.get("prompt"), "nodes": p.get("n_nodes"),
                     "logits": ", ".join(map(repr, p.get("logit_strings", [])[:3])),
                     "replacement": scores.get("replacement"), "completeness": scores.get("completeness"),
                     "pinned": len((p.get("qparams") or {}).get("pinnedIds") or []), "run_id": run_id})
    return pd.DataFrame(rows, columns=["key", "model", "prompt", "nodes", "logits", "replacement", "completeness",
                                       "pinned", "run_id"])


def attribution_graph_file(store, key: str) -> dict:
    """Stored graph `key` as its pruned circuit-tracer file (what `interp circuit export
    --format circuit-tracer` writes), with ``metadata['dictionaries']`` (layer -> dictionary)
    and ``metadata['model']`` added for feature links."""
    from interp.methods.circuits.graph_files import to_circuit_tracer

    graph = load_attribution_graph(store, key)
    data = to_circuit_tracer(graph)
    data["metadata"] = {**data["metadata"], "dictionaries": dict(graph.meta.get("dictionaries") or {}),
                        "model": graph.meta.get("model")}
    return data
