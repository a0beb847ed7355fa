"""Greedy path search from a target into a circuit graph, pruning and a portable JSON form.

Dunefsky, Chlenski, Nanda (2024), "Transcoders Find Interpretable LLM Feature Circuits",
greedy computational-path search, on the exact decomposition of
`interp.methods.circuits.attribution` (patterns and norm scales frozen, transcoders read
only, their error terms kept).

Algorithm:

1. The target is a read ``u . r[p] + b`` (`target_read`). Pending reads are grouped by where
   they read the residual stream; the latest reader is expanded first, so a node is expanded
   once, after every path into it is known.
2. Expanding a read: all direct contributions (`direct_contributions`, one batched call per
   reader); keep the `top_k` largest by magnitude as edges (weight = the contribution, in
   *target units*), the remainder is the node's ``rest`` (never dropped silently). Error
   terms enter like any other component, and each node records ``error_in``, the total
   contribution of all error terms into it.
3. Kept latents and head source terms are linear in their own inputs (active latents pass
   their pre-activation; patterns are frozen), so they become reads themselves
   (`upstream read`, step 6 of `circuit_attribution`); the reads of a node reached along
   several paths add up. Embeddings, errors, biases, skip terms and MLPs without a
   transcoder are leaves. Nodes more than `hops` edges from the target are not expanded.
4. Bookkeeping is exact: a node's ``influence`` (its total contribution to the target along
   the graph's paths) equals the sum of its out-edge weights, and for an expanded node also
   the sum of its in-edge weights plus ``rest`` (plus its encoder bias edge).
5. Pruning (`prune`): sort non-target nodes by |influence|, keep the shortest prefix whose
   |influence| reaches ``share`` of the total, then add, for every kept node, its strongest
   downstream path to the target so the kept graph stays connected.

JSON schema (``CircuitGraph.to_json``; ``schema`` = ``"interp.circuit/1"``)::

    {"schema": "interp.circuit/1",
     "meta": {"model", "prompt", "tokens": [str], "target": {"spec", "label", "value", "position"},
              "dictionaries": {layer: name}, "config": {...},
              "stats": {"target_value", "target_bias", "direct_error_share", "error_share",
                        "covered_share", "n_nodes_full", "n_edges_full"}},
     "nodes": [{"id": str, "type": one of NODE_TYPES, "layer": int|null, "position": int|null,
                "source_position": int|null, "head": int|null, "index": int|null, "label": str,
                "activation": float|null, "influence": float, "rest": float, "error_in": float,
                "expanded": bool}],
     "edges": [{"source": node id (upstream), "target": node id (downstream), "weight": float}]}

Stats: ``direct_error_share`` = |transcoder errors + MLPs without a transcoder| / |all direct
contributions| to the target (full decomposition, before any search); ``error_share`` = the
same kinds' share of |influence| among the kept nodes; ``covered_share`` = kept / total
|influence| of the non-target nodes found by the search.

Node ids: ``target``, ``bias/target``, ``latent/L{l}/{pos}/{index}``, ``head/L{l}/H{h}/{src}->{dst}``,
``embed/{pos}``, ``pos_embed/{pos}``, ``error/L{l}/{pos}``, ``mlp/L{l}/{pos}``, ``attn_bias/L{l}/{pos}``,
``tc_bias/L{l}/{pos}``, ``skip/L{l}/{pos}``, ``enc_bias/L{l}/{pos}/{index}``. Edge weights and
influences are in the target's units (a logit, or a latent's pre-activation).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from interp.methods.circuits.attribution import KINDS, Target, Trace, component_label, direct_contributions, target_read

SCHEMA = "interp.circuit/1"
NODE_TYPES = ("target", "bias", "enc_bias") + KINDS


@dataclass(frozen=True)
class GraphConfig:
    hops: int = 3
    """Longest path, in edges, from an expanded node to the target."""
    top_k: int = 8
    """Contributors kept as edges per expanded node."""
    share: float = 0.8
    """Pruning: keep the fewest nodes covering this share of the total |influence| (1 keeps all)."""

    def __post_init__(self):
        if not isinstance(self.hops, int) or self.hops < 1:
            raise ValueError(f"hops must be an integer >= 1, got {self.hops!r}")
        if not isinstance(self.top_k, int) or self.top_k < 1:
            raise ValueError(f"top_k must be an integer >= 1, got {self.top_k!r}")
        if not 0 < self.share <= 1:
            raise ValueError(f"share must be in (0, 1], got {self.share!r}")


@dataclass
class Node:
    id: str
    type: str
    layer: int | None = None
    position: int | None = None
    source_position: int | None = None
    head: int | None = None
    index: int | None = None
    label: str = ""
    activation: float | None = None
    influence: float = 0.0
    rest: float = 0.0
    error_in: float = 0.0
    expanded: bool = False


@dataclass
class Edge:
    source: str
    target: str
    weight: float


@dataclass
class CircuitGraph:
    """Nodes and weighted edges of a circuit (see the module docstring for the JSON schema)."""

    nodes: list[Node]
    edges: list[Edge]
    meta: dict = field(default_factory=dict)

    def node(self, node_id: str) -> Node:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(f"no node {node_id!r} in this graph")

    def to_json(self) -> dict:
        return {"schema": SCHEMA, "meta": self.meta, "nodes": [asdict(n) for n in self.nodes],
                "edges": [asdict(e) for e in self.edges]}

    @classmethod
    def from_json(cls, data: dict | str) -> "CircuitGraph":
        data = json.loads(data) if isinstance(data, str) else data
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            found = data.get("schema") if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"not a circuit graph: schema {found!r}, expected {SCHEMA!r}")
        try:
            return cls._parse(data)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a valid circuit graph: a node, edge or meta entry lacks or mangles "
                             f"{exc} ({type(exc).__name__})") from None

    @classmethod
    def _parse(cls, data: dict) -> "CircuitGraph":
        """Every field checked for its type, so a crafted file fails here, before anything is written."""
        if not isinstance(data.get("nodes"), list) or not isinstance(data.get("edges"), list):
            raise TypeError("'nodes' and 'edges' must be lists")
        ids: set[str] = set()
        nodes = []
        for n in data["nodes"]:
            if n.get("type") not in NODE_TYPES:
                raise ValueError(f"node {n.get('id')!r} has type {n.get('type')!r}; valid: {NODE_TYPES}")
            if not isinstance(n["id"], str) or n["id"] in ids:
                raise ValueError(f"node id {n['id']!r} must be a string that no other node uses")
            fields = {k: n.get(k, Node.__dataclass_fields__[k].default) for k in Node.__dataclass_fields__}
            for k in ("layer", "position", "source_position", "head", "index"):
                if fields[k] is not None and (not isinstance(fields[k], int) or isinstance(fields[k], bool)):
                    raise ValueError(f"node {n['id']!r}: {k} must be an integer or null, got {fields[k]!r}")
            for k in ("activation", "influence", "rest", "error_in"):
                if fields[k] is not None:
                    fields[k] = float(fields[k])
            nodes.append(Node(**{**fields, "label": str(fields["label"]), "expanded": bool(fields["expanded"])}))
            ids.add(n["id"])
        edges = [Edge(e["source"], e["target"], float(e["weight"])) for e in data["edges"]]
        for e in edges:
            if e.source not in ids or e.target not in ids:
                raise ValueError(f"edge {e.source!r} -> {e.target!r} names a node that is not in the graph")
        meta = data.get("meta", {})
        if not isinstance(meta, dict):
            raise TypeError(f"'meta' must be an object, got {type(meta).__name__}")
        return cls(nodes, edges, dict(meta))


@dataclass
class _Pending:
    position: int
    depth: int
    u: torch.Tensor | None = None
    """Accumulated residual read (heads) - latents keep the scalar `p` instead."""
    p: float = 0.0


def _node_id(kind: str, layer: int, head: int, src: int, index: int, dst: int) -> str:
    if kind in ("embed", "pos_embed"):
        return f"{kind}/{src}"
    if kind == "head":
        return f"head/L{layer}/H{head}/{src}->{dst}"
    if kind == "latent":
        return f"latent/L{layer}/{src}/{index}"
    return f"{kind}/L{layer}/{src}"


class _Search:
    """State of one greedy path search (see the module docstring, steps 1-4)."""

    def __init__(self, tr: Trace, config: GraphConfig):
        self.tr, self.config = tr, config
        self.nodes: dict[str, Node] = {}
        self.edges: dict[tuple[str, str], float] = {}
        self.pending: dict[int, dict[str, _Pending]] = {}

    def add_edge(self, src: Node, dst_id: str, weight: float) -> None:
        self.edges[(src.id, dst_id)] = self.edges.get((src.id, dst_id), 0.0) + weight
        src.influence += weight

    def get_node(self, kind, layer, head, src, index, dst) -> Node:
        nid = _node_id(kind, layer, head, src, index, dst)
        if nid not in self.nodes:
            lt = self.tr.layers[layer] if layer >= 0 else None
            act = None
            if kind == "latent":
                act = lt.pre_activation(src, index)
            elif kind == "head":
                act = float(lt.pattern[head, dst, src])
            self.nodes[nid] = Node(
                nid, kind, None if layer < 0 else layer, dst if kind == "head" else src,
                src if kind == "head" else None, None if head < 0 else head, None if index < 0 else index,
                component_label(self.tr, kind, layer, head, src, index, dst), act)
        return self.nodes[nid]

    def queue(self, node: Node, cutoff: int, depth: int, u: torch.Tensor | None, p: float) -> None:
        item = self.pending.setdefault(cutoff, {}).get(node.id)
        if item is None:
            # a head term reads the residual stream at its source position
            where = node.source_position if node.type == "head" else node.position
            item = self.pending[cutoff][node.id] = _Pending(where, depth)
        item.depth = min(item.depth, depth)
        item.p += p
        if u is not None:
            item.u = u if item.u is None else item.u + u

    def follow(self, node: Node, parent_u: torch.Tensor, depth: int) -> None:
        """Queue the upstream read of a kept latent or head (step 3)."""
        tr, lt = self.tr, self.tr.layers[node.layer]
        if node.type == "latent":
            p = float(lt.transcoder.W_dec.detach()[node.index].to(parent_u.dtype) @ parent_u)
            self.queue(node, tr.cutoff("mlp", node.layer), depth, None, p)
        elif node.type == "head":
            h, s, d = node.head, node.source_position, node.position
            v = lt.W_V[h] @ (lt.W_O[h] @ parent_u)  # (d_model,) W_V W_O u
            u = lt.pattern[h, d, s] * lt.ln1_scale[s] * tr.project(v)
            self.queue(node, tr.cutoff("attn", node.layer), depth, u, 0.0)

    def read_of(self, node_id: str, item: _Pending) -> torch.Tensor:
        if item.u is not None:
            return item.u
        n = self.nodes[node_id]  # a latent: u = p c P W_enc[:, i]; its bias p b_enc[i] is a leaf
        lt = self.tr.layers[n.layer]
        w = lt.transcoder.W_enc.detach()[:, n.index].to(self.tr.embed.dtype)
        if item.p != 0:
            bias = Node(f"enc_bias/L{n.layer}/{n.position}/{n.index}", "enc_bias", n.layer, n.position,
                        index=n.index, label=f"L{n.layer}#{n.index} b_enc")
            self.nodes[bias.id] = bias
            self.add_edge(bias, n.id, item.p * float(lt.transcoder.b_enc.detach()[n.index]))
        return item.p * lt.ln2_scale[item.position] * self.tr.project(w)

    def expand(self, cutoff: int) -> None:
        items = self.pending.pop(cutoff)
        ids = [i for i, it in items.items() if it.depth < self.config.hops]
        if not ids:
            return
        U = torch.stack([self.read_of(i, items[i]) for i in ids])
        pos = torch.tensor([items[i].position for i in ids])
        c = direct_contributions(self.tr, U, pos, cutoff)
        k = min(self.config.top_k, c.values.shape[1])
        top = c.values.abs().topk(k, dim=1).indices  # (n, k)
        is_error = (c.kind == KINDS.index("error")) | (c.kind == KINDS.index("mlp"))
        for row, nid in enumerate(ids):
            node, vals = self.nodes[nid], c.values[row]
            node.expanded = True
            node.error_in += float(vals[is_error].sum())
            kept = [j for j in top[row].tolist() if vals[j] != 0]
            node.rest += float(vals.sum() - vals[kept].sum())
            for j in kept:
                kind = KINDS[int(c.kind[j])]
                child = self.get_node(kind, int(c.layer[j]), int(c.head[j]), int(c.source[row, j]),
                                      int(c.index[row, j]), int(pos[row]))
                self.add_edge(child, nid, float(vals[j]))
                if kind in ("latent", "head"):
                    self.follow(child, U[row], items[nid].depth + 1)


def build_graph(adapter, tr: Trace, target: Target, config: GraphConfig = GraphConfig(),
                meta: dict[str, Any] | None = None) -> CircuitGraph:
    """Greedy path search from `target` on the traced prompt, then `prune` to ``config.share``."""
    read = target_read(adapter, tr, target)
    search = _Search(tr, config)
    root = Node("target", "target", position=read.position, label=read.label, activation=read.value,
                influence=read.value)
    search.nodes[root.id] = root
    if read.bias != 0:
        bias = Node("bias/target", "bias", position=read.position, label="target bias")
        search.nodes[bias.id] = bias
        search.add_edge(bias, root.id, read.bias)
    search.pending[read.cutoff] = {root.id: _Pending(read.position, 0, read.u)}
    while search.pending:
        search.expand(max(search.pending))
    full = direct_contributions(tr, read.u[None], torch.tensor([read.position]), read.cutoff)
    err = torch.isin(full.kind, torch.tensor([KINDS.index("error"), KINDS.index("mlp")]))
    a = full.values[0].abs()
    stats = {"target_value": read.value, "target_bias": read.bias,
             "direct_error_share": float(a[err].sum() / a.sum().clamp_min(1e-30)),
             "n_nodes_full": len(search.nodes), "n_edges_full": len(search.edges)}
    graph = CircuitGraph(list(search.nodes.values()),
                         [Edge(s, t, w) for (s, t), w in search.edges.items()],
                         {**(meta or {}), "tokens": tr.str_tokens, "config": asdict(config), "stats": stats})
    graph.meta.setdefault("target", {})
    graph.meta["target"].update(label=read.label, value=read.value, position=read.position)
    return prune(graph, config.share)


def prune(graph: CircuitGraph, share: float) -> CircuitGraph:
    """The fewest nodes covering `share` of the total |influence|, kept connected to the target."""
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share!r}")
    others = sorted((n for n in graph.nodes if n.type != "target"), key=lambda n: -abs(n.influence))
    total = sum(abs(n.influence) for n in others)
    keep, acc = {"target"}, 0.0
    for n in others:
        if acc >= share * total - 1e-12:
            break
        keep.add(n.id)
        acc += abs(n.influence)
    children: dict[str, list[Edge]] = {}
    for e in graph.edges:
        children.setdefault(e.source, []).append(e)
    for nid in list(keep):  # connect: follow each node's strongest out-edge down to the target
        while nid != "target" and nid in children:
            nxt = max(children[nid], key=lambda e: abs(e.weight)).target
            keep.add(nxt)
            nid = nxt
    nodes = [n for n in graph.nodes if n.id in keep]
    edges = [e for e in graph.edges if e.source in keep and e.target in keep]
    kept = [n for n in nodes if n.type != "target"]
    errors = sum(abs(n.influence) for n in kept if n.type in ("error", "mlp"))
    kept_total = sum(abs(n.influence) for n in kept)
    stats = {**graph.meta.get("stats", {}), "covered_share": kept_total / total if total else 1.0,
             "error_share": errors / kept_total if kept_total else 0.0, "share": share}
    return CircuitGraph(nodes, edges, {**graph.meta, "stats": stats})


def graph_key(meta: dict) -> str:
    """Stable key of a graph: a hash of model, prompt, target, dictionaries and config."""
    import hashlib

    ident = {k: meta.get(k) for k in ("model", "prompt", "dictionaries", "config")}
    ident["target"] = (meta.get("target") or {}).get("spec")
    digest = hashlib.sha1(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return f"circuit-{digest}"
