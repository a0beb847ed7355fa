"""Attribution graph files: circuit-tracer's graph JSON (its frontend, Neuronpedia) and interp's own.

circuit-tracer format (``circuit_tracer/utils/create_graph_files.py``, models in
``circuit_tracer/frontend/graph_models.py``)::

    {"metadata": {"slug", "scan", "transcoder_list": [str], "prompt_tokens": [str], "prompt",
                  "node_threshold", "schema_version": 1, ...},
     "qParams": {"pinnedIds": [node_id], "supernodes": [[label, node_id, ...]], "linkType",
                 "clickedId", "sg_pos", "annotations": {node_id: text}},
     "nodes": [{"node_id", "feature", "layer": str, "ctx_idx", "feature_type", "token_prob",
                "is_target_logit", "run_idx", "reverse_ctx_idx", "jsNodeId", "clerp",
                "influence", "activation"}],
     "links": [{"source": node_id, "target": node_id, "weight"}]}

Node ids as circuit-tracer writes them: latent ``{layer}_{index}_{pos}`` (feature_type
``cross layer transcoder``, feature = Cantor pairing of layer and index), error
``0_{layer}_{pos}`` (``mlp reconstruction error``), embedding ``E_{token id}_{pos}``, logit
``{n_layers + 1}_{token id}_{pos}``. A latent and an error id can coincide (``0_3_5``), so
reading goes by ``feature_type``, never by the id's shape.

Export (`to_circuit_tracer`):

1. Prune (`interp.methods.circuits.influence.prune_graph`) with the graph's thresholds, unless
   it is already pruned (read from a file: its nodes and links are written back as read).
2. Nodes in node order with their cumulative influence and activation; links for kept edges
   between kept nodes; then only nodes with a link, embeddings and logits stay.
3. Metadata (prompt tokens, thresholds, generation settings, scores) and the graph's qParams
   (``annotations`` is interp's: node_id -> a reader's text, also written as that node's ``clerp``).

Import (`from_circuit_tracer`) builds an `AttributionGraph` holding exactly those nodes and
links (``kept_nodes``/``kept_edges`` set), so exporting it again writes the same file.

interp format (`to_interp` / `from_interp`, ``schema`` ``interp.attribution_graph/1``): every
field of the unpruned graph, the adjacency as its nonzero entries.
"""

from __future__ import annotations

import json
import math
import re

import torch

from interp.methods.circuits.attribution_graph import AttributionGraph
from interp.methods.circuits.influence import prune_graph

INTERP_SCHEMA = "interp.attribution_graph/1"
FEATURE_TYPES = {"feature": "cross layer transcoder", "error": "mlp reconstruction error", "embedding": "embedding",
                 "logit": "logit"}
DEFAULT_QPARAMS = {"pinnedIds": [], "supernodes": [], "linkType": "both", "clickedId": "", "sg_pos": ""}


def node_id(graph: AttributionGraph, i: int) -> str:
    """circuit-tracer's ``node_id`` of node `i`."""
    kind, layer, pos, idx = graph.node_kind(i)
    if kind == "feature":
        return f"{layer}_{idx}_{pos}"
    if kind == "error":
        return f"0_{layer}_{pos}"
    if kind == "embedding":
        return f"E_{idx}_{pos}"
    return f"{graph.n_layers + 1}_{idx}_{pos}"


def _cantor(x: int, y: int) -> int:
    return (x + y) * (x + y + 1) // 2 + y


def _num(x) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


def _node(graph: AttributionGraph, i: int, influence, activation) -> dict:
    kind, layer, pos, idx = graph.node_kind(i)
    nid = node_id(graph, i)
    note = (graph.qparams.get("annotations") or {}).get(nid)  # a reader's annotation is the frontend's label
    base = {"node_id": nid, "token_prob": 0.0, "is_target_logit": False, "run_idx": 0, "reverse_ctx_idx": 0,
            "clerp": note or graph.labels.get(nid, ""), "influence": _num(influence), "activation": None}
    if kind == "feature":
        base.update(feature=_cantor(layer, idx), layer=str(layer), ctx_idx=pos, jsNodeId=f"{layer}_{idx}-0",
                    activation=_num(activation))
    elif kind == "error":
        base.update(feature=-1, layer=str(layer), ctx_idx=pos, jsNodeId=f"{layer}_{pos}-0")
    elif kind == "embedding":
        base.update(feature=pos, layer="E", ctx_idx=pos, jsNodeId=f"E_{idx}-{pos}")
    else:
        j = i - (graph.n_nodes - graph.n_logits)
        p = float(graph.logit_probabilities[j])
        base.update(feature=idx, layer=str(graph.n_layers + 1), ctx_idx=pos, jsNodeId=f"L_{idx}-{pos}",
                    token_prob=p, is_target_logit=j == 0, influence=None,
                    clerp=note or graph.labels.get(nid, f'Output "{graph.logit_strings[j]}" (p={p:.3f})'))
    base["feature_type"] = FEATURE_TYPES[kind]
    order = ("node_id", "feature", "layer", "ctx_idx", "feature_type", "token_prob", "is_target_logit", "run_idx",
             "reverse_ctx_idx", "jsNodeId", "clerp", "influence", "activation")
    return {k: base[k] for k in order}


def _kept(graph: AttributionGraph, node_threshold: float, edge_threshold: float):
    """(node mask, [source], [target], cumulative influence) of the exported graph (step 1)."""
    if graph.kept_nodes is not None:
        src, dst = graph.kept_edges.tolist() if graph.kept_edges is not None else ([], [])
        return graph.kept_nodes, src, dst, graph.node_influence
    pr = prune_graph(graph.adjacency, graph.logit_probabilities, graph.n_features, graph.n_pos,
                     node_threshold, edge_threshold)
    dst, src = torch.nonzero(pr.edge_mask, as_tuple=True)
    return pr.node_mask, src.tolist(), dst.tolist(), pr.cumulative_scores


def _activation(graph: AttributionGraph, i: int) -> float:
    return float(graph.activation_values[graph.selected_features[i]]) if i < graph.n_features else float("nan")


def to_circuit_tracer(graph: AttributionGraph, slug: str | None = None, scan: str | None = None,
                      node_threshold: float | None = None, edge_threshold: float | None = None) -> dict:
    """The graph file circuit-tracer's frontend and Neuronpedia open (steps 1-3)."""
    cfg = graph.meta.get("config", {})
    node_threshold = cfg.get("node_threshold", 0.8) if node_threshold is None else node_threshold
    edge_threshold = cfg.get("edge_threshold", 0.98) if edge_threshold is None else edge_threshold
    mask, src, dst, influence = _kept(graph, node_threshold, edge_threshold)
    influence = influence if influence is not None else torch.full((graph.n_nodes,), float("nan"))
    nodes = {i: _node(graph, i, influence[i], _activation(graph, i)) for i in torch.nonzero(mask).flatten().tolist()}
    links = [{"source": nodes[s]["node_id"], "target": nodes[t]["node_id"], "weight": float(graph.adjacency[t, s])}
             for s, t in zip(src, dst) if s in nodes and t in nodes]
    linked = {x for link in links for x in (link["source"], link["target"])}
    used = [n for n in nodes.values() if n["node_id"] in linked or n["feature_type"] in ("embedding", "logit")]
    if "file_metadata" in graph.meta:  # read from a file: written back as read
        metadata = dict(graph.meta["file_metadata"])
    else:
        names = [v for _, v in sorted(graph.meta.get("dictionaries", {}).items(), key=lambda kv: int(kv[0]))]
        metadata = {
            "slug": slug or graph.meta.get("key") or "interp-graph",
            "scan": scan or graph.meta.get("scan") or f"{graph.meta.get('model', 'model')}/interp-transcoders",
            "transcoder_list": sorted(set(names), key=names.index), "prompt_tokens": list(graph.str_tokens),
            "prompt": graph.prompt, "node_threshold": node_threshold, "schema_version": 1,
            "generation_settings": {k: cfg.get(k) for k in ("max_n_logits", "desired_logit_prob", "batch_size",
                                                             "max_feature_nodes")},
            "pruning_settings": {"node_threshold": node_threshold, "edge_threshold": edge_threshold},
            "info": {"generator": {"name": "interp"}, "model": graph.meta.get("model"),
                     "scores": graph.meta.get("scores", {})},
        }
    return {"metadata": metadata, "qParams": {**DEFAULT_QPARAMS, **graph.qparams}, "nodes": used, "links": links}


def _fail(msg: str):
    raise ValueError(f"not a circuit-tracer graph file: {msg}")


def _parse_nodes(nodes: list) -> tuple[dict, int]:
    """{kind: [(node, layer, pos, index)]} and the layer count, read by feature_type."""
    parsed = {"feature": [], "error": [], "embedding": [], "logit": []}
    kinds = {v: k for k, v in FEATURE_TYPES.items()}
    kinds["transcoder"] = "feature"
    for n in nodes:
        kind = kinds.get(n.get("feature_type"))
        if kind is None:
            _fail(f"node {n.get('node_id')!r} has feature_type {n.get('feature_type')!r}; "
                  f"known: {sorted(kinds)}")
        parts = str(n["node_id"]).split("_")
        pos = int(n["ctx_idx"])
        if kind == "feature":
            parsed[kind].append((n, int(n["layer"]), pos, int(parts[1])))
        elif kind == "error":
            parsed[kind].append((n, int(n["layer"]), pos, -1))
        elif kind == "embedding":
            parsed[kind].append((n, -1, pos, int(parts[1])))
        else:
            parsed[kind].append((n, int(n["layer"]) - 1, pos, int(n["feature"])))
    layers = [x[1] for x in parsed["logit"]] or [x[1] + 1 for x in parsed["feature"] + parsed["error"]] or [0]
    return parsed, max(layers)


def from_circuit_tracer(data: dict | str) -> AttributionGraph:
    """An already pruned `AttributionGraph` holding a circuit-tracer graph file's nodes and links."""
    data = json.loads(data) if isinstance(data, str) else data
    if not isinstance(data, dict) or not {"metadata", "nodes", "links"} <= set(data):
        _fail("it needs metadata, nodes and links")
    try:
        return _from_circuit_tracer(data)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        if str(exc).startswith("not a circuit-tracer graph file"):
            raise
        _fail(f"a node or link lacks or mangles a field ({type(exc).__name__}: {exc})")


def _from_circuit_tracer(data: dict) -> AttributionGraph:
    meta = data["metadata"]
    words = list(meta["prompt_tokens"])
    n_pos = len(words)
    parsed, n_layers = _parse_nodes(data["nodes"])
    feats = sorted(parsed["feature"], key=lambda x: (x[1], x[2], x[3]))
    tokens = torch.full((n_pos,), -1, dtype=torch.long)
    for _, _, pos, tok in parsed["embedding"]:
        tokens[pos] = tok
    logits = parsed["logit"]
    n_f, n_e = len(feats), n_layers * n_pos
    n = n_f + n_e + n_pos + len(logits)
    index = {}
    for i, (node, *_rest) in enumerate(feats):
        index[node["node_id"], "feature"] = i
    for node, layer, pos, _ in parsed["error"]:
        index[node["node_id"], "error"] = n_f + layer * n_pos + pos
    for node, _, pos, _ in parsed["embedding"]:
        index[node["node_id"], "embedding"] = n_f + n_e + pos
    for j, (node, *_rest) in enumerate(logits):
        index[node["node_id"], "logit"] = n_f + n_e + n_pos + j
    by_id = {}
    for (nid, kind), i in index.items():
        if nid in by_id:
            by_id[nid] = None  # ambiguous id (a latent and an error sharing it): links cannot name it
        else:
            by_id[nid] = i
    adjacency = torch.zeros(n, n, dtype=torch.float64)
    src, dst = [], []
    for link in data["links"]:
        s, t = by_id.get(link["source"]), by_id.get(link["target"])
        if s is None or t is None:
            _fail(f"link {link['source']!r} -> {link['target']!r} names a node that is missing or ambiguous")
        adjacency[t, s] = float(link["weight"])
        src.append(s)
        dst.append(t)
    kept = torch.zeros(n, dtype=torch.bool)
    influence = torch.full((n,), float("nan"), dtype=torch.float64)
    labels = {}
    for (nid, _), i in index.items():
        kept[i] = True
    for group in parsed.values():
        for node, *_ in group:
            i = index[node["node_id"], _kind_of(node)]
            if node.get("influence") is not None:
                influence[i] = float(node["influence"])
            if node.get("clerp"):
                labels[node["node_id"]] = node["clerp"]
    probs = torch.tensor([float(x[0].get("token_prob", 0.0)) for x in logits], dtype=torch.float64)
    acts = torch.tensor([float(x[0]["activation"]) if x[0].get("activation") is not None else float("nan")
                         for x in feats], dtype=torch.float64)
    strings = [_logit_string(x[0]) for x in logits]
    return AttributionGraph(
        prompt=str(meta.get("prompt", "")), tokens=tokens, str_tokens=words, n_layers=n_layers,
        d_vocab=int(meta.get("d_vocab", 0) or 0),
        active_features=torch.tensor([[x[1], x[2], x[3]] for x in feats], dtype=torch.long).reshape(-1, 3),
        activation_values=acts, selected_features=torch.arange(n_f), adjacency=adjacency,
        logit_tokens=[x[3] for x in logits], logit_strings=strings, logit_probabilities=probs,
        node_bias=torch.zeros(n, dtype=torch.float64), node_value=torch.full((n,), float("nan"), dtype=torch.float64),
        meta={"file_metadata": dict(meta), "imported_from": "circuit-tracer",
              "model": (meta.get("info") or {}).get("model") if isinstance(meta.get("info"), dict) else None},
        kept_nodes=kept, kept_edges=torch.tensor([src, dst], dtype=torch.long).reshape(2, -1),
        node_influence=influence, labels=labels, qparams=dict(data.get("qParams") or {}),
    )


def _kind_of(node: dict) -> str:
    kinds = {v: k for k, v in FEATURE_TYPES.items()}
    kinds["transcoder"] = "feature"
    return kinds[node["feature_type"]]


def _logit_string(node: dict) -> str:
    m = re.match(r'Output "(.*)" \(p=', node.get("clerp") or "", re.S)
    return m.group(1) if m else str(node.get("feature"))


# ----------------------------------------------------------------------------- interp format
_TENSORS = ("tokens", "active_features", "activation_values", "selected_features", "logit_probabilities",
            "node_bias", "node_value", "kept_nodes", "kept_edges", "node_influence")


def _tensor_json(t: torch.Tensor | None):
    if t is None:
        return None
    return {"dtype": str(t.dtype).removeprefix("torch."), "shape": list(t.shape),
            "data": [None if isinstance(x, float) and math.isnan(x) else x for x in t.flatten().tolist()]}


def _tensor_from(d):
    if d is None:
        return None
    data = [float("nan") if x is None else x for x in d["data"]]
    return torch.tensor(data, dtype=getattr(torch, d["dtype"])).reshape(d["shape"])


def to_interp(graph: AttributionGraph) -> dict:
    """Every field of `graph` as JSON (the adjacency as its nonzero entries)."""
    nz = torch.nonzero(graph.adjacency, as_tuple=True)
    return {"schema": INTERP_SCHEMA, "prompt": graph.prompt, "str_tokens": graph.str_tokens,
            "n_layers": graph.n_layers, "d_vocab": graph.d_vocab, "logit_tokens": graph.logit_tokens,
            "logit_strings": graph.logit_strings, "meta": graph.meta, "labels": graph.labels, "qparams": graph.qparams,
            "tensors": {name: _tensor_json(getattr(graph, name)) for name in _TENSORS},
            "adjacency": {"n": graph.n_nodes, "dtype": str(graph.adjacency.dtype).removeprefix("torch."),
                          "index": torch.stack(nz).tolist(), "value": graph.adjacency[nz].tolist()}}


def from_interp(data: dict | str) -> AttributionGraph:
    """The graph `to_interp` wrote."""
    data = json.loads(data) if isinstance(data, str) else data
    if not isinstance(data, dict) or data.get("schema") != INTERP_SCHEMA:
        found = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"not an interp attribution graph: schema {found!r}, expected {INTERP_SCHEMA!r}")
    try:
        a = data["adjacency"]
        adjacency = torch.zeros(a["n"], a["n"], dtype=getattr(torch, a["dtype"]))
        if a["value"]:
            idx = torch.tensor(a["index"], dtype=torch.long)
            adjacency[idx[0], idx[1]] = torch.tensor(a["value"], dtype=adjacency.dtype)
        t = {name: _tensor_from(data["tensors"].get(name)) for name in _TENSORS}
        return AttributionGraph(
            prompt=data["prompt"], str_tokens=list(data["str_tokens"]), n_layers=int(data["n_layers"]),
            d_vocab=int(data["d_vocab"]), adjacency=adjacency, logit_tokens=[int(x) for x in data["logit_tokens"]],
            logit_strings=list(data["logit_strings"]), meta=dict(data["meta"]), labels=dict(data["labels"]),
            qparams=dict(data["qparams"]), **t)
    except (KeyError, TypeError, IndexError, AttributeError, RuntimeError) as exc:
        raise ValueError(f"not a valid interp attribution graph: a field is missing or mangled "
                         f"({type(exc).__name__}: {exc})") from None


def read_graph_file(data: dict | str):
    """An `AttributionGraph` from either format, or the path-search `CircuitGraph` format."""
    from interp.methods.circuits.graph import SCHEMA, CircuitGraph

    data = json.loads(data) if isinstance(data, str) else data
    if isinstance(data, dict) and data.get("schema") == INTERP_SCHEMA:
        return from_interp(data)
    if isinstance(data, dict) and data.get("schema") == SCHEMA:
        return CircuitGraph.from_json(data)
    if isinstance(data, dict) and {"metadata", "nodes", "links"} <= set(data):
        return from_circuit_tracer(data)
    raise ValueError(f"not a graph file: expected circuit-tracer's (metadata, nodes, links) or schema "
                     f"{INTERP_SCHEMA!r} / {SCHEMA!r}")
