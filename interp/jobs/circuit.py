"""The main job's circuits: one attribution graph and one path-search graph on a demo prompt.

1. Load every stored transcoder of the model (one per layer; `transcoders_of`). Blocks without
   one enter the graphs as whole-MLP error nodes, and each transcoder's error ``mlp_out - y_hat``
   is a node of its own, so the decomposition stays exact.
2. `demo_attribution_graph`: circuit-tracer's attribution graph of the prompt's salient next
   tokens (`interp.methods.circuits.attribution_graph`, every active latent visited) is stored
   (`save_attribution_graph`): the Circuits page opens on it. How its top logit divides:
   the top logit node's (demeaned) value is exactly the sum of its incoming edges plus its
   constant, so its edges summed by source kind (latents, error nodes, embeddings) split the
   value itself (error nodes of layers without a transcoder, whole MLP outputs, are counted
   apart from transcoder errors); the |edges| into every logit node, weighted by the logit probabilities, give
   the direct shares; circuit-tracer's influence (``w (A + A^2 + ...)`` on the row-normalised
   |A|) gives the share over paths of any length, summed per kind; and the graph's replacement
   and completeness scores.
3. `demo_circuit`: trace the prompt once, build the greedy path graph from a logit-difference
   target (`interp.methods.circuits.graph.build_graph`) and store it (`save_graph`); report how
   the target divides between latents and error terms over the direct contributions to the
   target (every writer, heads included) and over the |influence| of the kept graph's nodes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

DEMO_PROMPT = "When Mary and John went to the store, John gave a drink to"
DEMO_TARGET = 'logitdiff:" Mary"," John"'


@dataclass
class CircuitSummary:
    """What `demo_circuit` stored and how the target divides."""

    key: str
    n_nodes: int
    n_edges: int
    target_value: float
    direct_shares: dict
    """Share of |direct contribution| to the target by kind: latent, error (transcoder errors),
    mlp (blocks without a transcoder), head, other."""
    graph_shares: dict
    """The same split of |influence| over the kept graph's non-target nodes."""
    layers: list


def _shares(pairs) -> dict:
    """{group: share of |value|} for (kind, value) pairs; kinds outside latent/error/mlp/head are 'other'."""
    totals = {"latent": 0.0, "error": 0.0, "mlp": 0.0, "head": 0.0, "other": 0.0}
    for kind, value in pairs:
        totals[kind if kind in totals else "other"] += abs(float(value))
    whole = sum(totals.values()) or 1.0
    return {k: v / whole for k, v in totals.items()}


@dataclass
class GraphSummary:
    """What `demo_attribution_graph` stored and how its target divides among node kinds."""

    key: str
    n_features: int
    """Latent nodes (every active latent outside position 0)."""
    n_nodes: int
    top_logit: str
    top_value: float
    """The top logit node's demeaned logit."""
    top_split: dict
    """Signed parts of `top_value` by source kind: latent, error (transcoder errors), mlp (whole MLPs
    of layers without a transcoder), embedding, constant; they add up to it."""
    direct_shares: dict
    """Probability-weighted share of |direct effects| into the logit nodes, by kind."""
    influence_shares: dict
    """Share of the logits' influence (paths of any length) held by each kind."""
    replacement: float
    completeness: float
    seconds: float


GRAPH_PROMPT = "The capital of France is"
"""The attribution graph's demo prompt: one salient next token (' Paris') the model is sure of."""


def _kinds(graph, with_transcoder) -> dict:
    """{kind: node indices} in the graph's [latent, error, embedding, logit] order; error nodes
    split into transcoder errors ("error") and whole MLPs of layers without one ("mlp")."""
    nf, ne, npos = graph.n_features, graph.n_errors, graph.n_pos
    error_layer = torch.arange(ne) // npos  # error nodes are [layer][position]
    has = torch.tensor([int(layer) in with_transcoder for layer in error_layer.tolist()], dtype=torch.bool)
    errors = torch.arange(nf, nf + ne)
    return {"latent": torch.arange(nf), "error": errors[has], "mlp": errors[~has],
            "embedding": torch.arange(nf + ne, nf + ne + npos)}


def graph_split(graph, with_transcoder=None) -> tuple[dict, dict, dict]:
    """(top logit split, direct shares, influence shares) of `graph` (step 2 of the module doc).

    `with_transcoder`: layers whose MLP is a transcoder (default: the graph's
    ``meta['dictionaries']``); the error nodes of the other layers are whole MLP outputs."""
    from interp.methods.circuits.influence import compute_influence, normalize_matrix

    if with_transcoder is None:
        with_transcoder = {int(k) for k in (graph.meta.get("dictionaries") or {})}
    A, kinds = graph.adjacency.double(), _kinds(graph, set(with_transcoder))
    n_logits = graph.n_logits
    top = graph.n_nodes - n_logits  # logit nodes come last, the most probable first
    split = {k: float(A[top, s].sum()) for k, s in kinds.items()}
    split["constant"] = float(graph.node_bias[top])
    p = graph.logit_probabilities.double()
    direct = {k: float((p[:, None] * A[-n_logits:, s].abs()).sum()) for k, s in kinds.items()}
    w = torch.zeros(graph.n_nodes, dtype=torch.float64)
    w[-n_logits:] = p
    influence = compute_influence(normalize_matrix(A), w)
    inf = {k: float(influence[s].sum()) for k, s in kinds.items()}
    return split, _normalised(direct), _normalised(inf)


def _normalised(parts: dict) -> dict:
    whole = sum(parts.values()) or 1.0
    return {k: v / whole for k, v in parts.items()}


def demo_attribution_graph(adapter, store, prompt: str = GRAPH_PROMPT, *, max_feature_nodes: int | None = None,
                           command: str = "interp run") -> GraphSummary:
    """Build, store and summarise the attribution graph of `prompt` (steps 1-2)."""
    from interp.methods.circuits.attribution_graph import AttributionConfig, attribution_graph
    from interp.methods.circuits.store import save_attribution_graph

    transcoders, labels = _stored_transcoders(adapter, store)
    config = AttributionConfig(max_feature_nodes=max_feature_nodes)
    meta = {"model": adapter.store_name, "dictionaries": {str(k): v for k, v in sorted(labels.items())}}
    graph = attribution_graph(adapter, transcoders, prompt, config, None, meta)
    split, direct, influence = graph_split(graph)
    graph.meta["stats"] = {"top_split": split, "direct_shares": direct, "influence_shares": influence}
    with store.run(command, {**meta, "prompt": prompt, "config": graph.meta["config"]}, seed=0) as run:
        key = save_attribution_graph(store, graph, run)
    s = graph.meta["scores"]
    return GraphSummary(key, graph.n_features, graph.n_nodes, graph.logit_strings[0],
                        float(graph.node_value[graph.n_nodes - graph.n_logits]), split, direct, influence,
                        float(s["replacement"]), float(s["completeness"]), float(graph.meta["seconds"]))


def _stored_transcoders(adapter, store):
    from interp.methods.circuits.transcoders import load_transcoders, transcoders_of

    names = transcoders_of(store, adapter.store_name)
    if not names:
        raise ValueError(f"no transcoders of {adapter.store_name} in store {store.root}; the transcoder step trains them")
    return load_transcoders(store, names, adapter)


def demo_circuit(adapter, store, prompt: str = DEMO_PROMPT, target: str = DEMO_TARGET, *, hops: int = 3,
                 top_k: int = 8, share: float = 0.8, command: str = "interp run") -> CircuitSummary:
    """Build, store and summarise the path-search graph of `target` on `prompt` (steps 1 and 3)."""
    from interp.methods.circuits.attribution import attribute, trace
    from interp.methods.circuits.graph import GraphConfig, build_graph
    from interp.methods.circuits.store import save_graph
    from interp.methods.circuits.targets import parse_target

    transcoders, labels = _stored_transcoders(adapter, store)
    spec = parse_target(adapter, target, {v: k for k, v in labels.items()})
    meta = {"model": adapter.store_name, "prompt": prompt, "target": {"spec": target},
            "dictionaries": {str(k): v for k, v in sorted(labels.items())}}
    config = GraphConfig(hops=hops, top_k=top_k, share=share)
    with store.run(command, {**meta, "config": {"hops": hops, "top_k": top_k, "share": share}}, seed=0) as run:
        tr = trace(adapter, transcoders, prompt)
        graph = build_graph(adapter, tr, spec, config, meta)
        direct = attribute(adapter, transcoders, None, spec, tr=tr).frame
        summary_direct = _shares(zip(direct["kind"], direct["contribution"]))
        summary_graph = _shares((n.type, n.influence) for n in graph.nodes if n.type != "target")
        graph.meta["stats"].update(latent_share_direct=summary_direct["latent"],
                                   latent_share_graph=summary_graph["latent"])
        key = save_graph(store, graph, run)
    return CircuitSummary(key, len(graph.nodes), len(graph.edges), float(graph.meta["target"]["value"]),
                          summary_direct, summary_graph, sorted(transcoders))
