"""A pruned attribution graph file as tables, and the query state a reader adds to it.

Works on the circuit-tracer graph file (`interp.methods.circuits.graph_files.to_circuit_tracer`:
``metadata``, ``nodes``, ``links``, ``qParams``), so a graph built here and one imported from
circuit-tracer or Neuronpedia read the same way.

1. `node_table`: one row per node: id, kind, layer (-1 for embeddings, ``n_layers`` for logits),
   position, the prompt token there, latent index, label (the reader's annotation, else the
   file's ``clerp``, else a name built from kind, layer and index), activation, influence.
2. `node_edges`: a node's incoming and outgoing links with the other end's label.
3. `check_params`: pins, supernodes (``[label, node_id, ...]``) and annotations
   (node_id -> text) checked against the graph's node ids; one clear ValueError otherwise.
   They live in the file's ``qParams`` (``pinnedIds``, ``supernodes``, and ``annotations``, a
   key circuit-tracer's frontend ignores; annotations are also written as the nodes' ``clerp``).
"""

from __future__ import annotations

from typing import Iterable, Mapping, NamedTuple, Sequence

import pandas as pd

KINDS = {"cross layer transcoder": "feature", "transcoder": "feature", "mlp reconstruction error": "error",
         "embedding": "embedding", "logit": "logit"}
NODE_COLUMNS = ["node_id", "kind", "layer", "position", "token", "index", "label", "activation", "influence"]


class GraphParams(NamedTuple):
    """The reader's query state of a graph (circuit-tracer's ``qParams`` names)."""

    pinned: list[str]
    supernodes: list[list[str]]
    """Each ``[label, node_id, ...]``."""
    annotations: dict[str, str]


def graph_params(data: Mapping) -> GraphParams:
    """Pins, supernodes and annotations stored in a graph file's ``qParams``."""
    q = data.get("qParams") or {}
    return GraphParams(list(q.get("pinnedIds") or []), [list(s) for s in q.get("supernodes") or []],
                       dict(q.get("annotations") or {}))


def _layer(node: Mapping, kind: str) -> int:
    if kind == "embedding":
        return -1
    layer = int(node["layer"])
    return layer - 1 if kind == "logit" else layer  # circuit-tracer writes logits at n_layers + 1


def _default_label(kind: str, layer: int, index: int | None, token: str) -> str:
    if kind == "feature":
        return f"L{layer} #{index} @ {token!r}"
    if kind == "error":
        return f"error L{layer} @ {token!r}"
    return f"token {token!r}"


def node_table(data: Mapping) -> pd.DataFrame:
    """Step 1: the file's nodes as a DataFrame (columns `NODE_COLUMNS`, file order)."""
    words = list((data.get("metadata") or {}).get("prompt_tokens") or [])
    notes = graph_params(data).annotations
    rows = []
    for n in data.get("nodes", []):
        kind = KINDS.get(n.get("feature_type"), n.get("feature_type"))
        layer, pos = _layer(n, kind), int(n["ctx_idx"])
        token = words[pos] if 0 <= pos < len(words) else ""
        index = int(str(n["node_id"]).split("_")[1]) if kind in ("feature", "logit") else None
        label = notes.get(n["node_id"]) or n.get("clerp") or _default_label(kind, layer, index, token)
        rows.append({"node_id": n["node_id"], "kind": kind, "layer": layer, "position": pos, "token": token,
                     "index": index, "label": label, "activation": n.get("activation"),
                     "influence": n.get("influence")})
    return pd.DataFrame(rows, columns=NODE_COLUMNS).astype({"index": "Int64"})


class NodeEdges(NamedTuple):
    incoming: pd.DataFrame
    """source, label, weight: links into the node, by |weight| descending."""
    outgoing: pd.DataFrame
    """target, label, weight: links out of the node, by |weight| descending."""


def node_edges(data: Mapping, node_id: str, nodes: pd.DataFrame | None = None) -> NodeEdges:
    """Step 2: the links into and out of `node_id` (ValueError for an id not in the graph)."""
    nodes = node_table(data) if nodes is None else nodes
    labels = dict(zip(nodes["node_id"], nodes["label"]))
    if node_id not in labels:
        raise ValueError(f"node {node_id!r} is not in this graph; it has {len(labels)} nodes")
    links = data.get("links", [])

    def frame(end: str, other: str) -> pd.DataFrame:
        rows = [{other: l[other], "label": labels.get(l[other], ""), "weight": float(l["weight"])}
                for l in links if l[end] == node_id]
        out = pd.DataFrame(rows, columns=[other, "label", "weight"])
        return out.sort_values("weight", key=abs, ascending=False, ignore_index=True)

    return NodeEdges(frame("target", "source"), frame("source", "target"))


def _unknown(ids: Iterable[str], known: set, what: str) -> None:
    bad = [i for i in ids if i not in known]
    if bad:
        shown = ", ".join(map(repr, bad[:5])) + (" ..." if len(bad) > 5 else "")
        raise ValueError(f"{what} {shown} {'is' if len(bad) == 1 else 'are'} not node ids of this graph "
                         f"(ids look like 3_120_5, 0_3_5, E_42_0; {len(known)} nodes)")


def check_params(node_ids: Iterable[str], pinned: Sequence[str] | None = None,
                 supernodes: Sequence[Sequence[str]] | None = None,
                 annotations: Mapping[str, str] | None = None) -> None:
    """Step 3: refuse pins, supernodes or annotations naming nodes the graph does not have."""
    known = set(node_ids)
    if pinned is not None:
        _unknown(pinned, known, "pinned node")
    for group in supernodes or []:
        if not isinstance(group, (list, tuple)) or len(group) < 2 or not str(group[0]).strip():
            raise ValueError(f"supernode {group!r} must be [label, node_id, ...] with a non-empty label "
                             "and at least one node")
        _unknown(group[1:], known, f"supernode {group[0]!r}: node")
    if annotations is not None:
        _unknown(annotations, known, "annotated node")
