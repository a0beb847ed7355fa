"""The main job's circuit: one attribution graph on a demo prompt, from the stored transcoders.

1. Load every stored transcoder of the model (one per layer; `transcoders_of`). Blocks without
   one enter the graph as whole-MLP nodes, and each transcoder's error ``mlp_out - y_hat`` is a
   node of its own, so the decomposition stays exact (`interp.methods.circuits.attribution`).
2. Trace the demo prompt once, build the greedy path graph from the target
   (`interp.methods.circuits.graph.build_graph`) and store it (`save_graph`): the Circuits
   page opens on it.
3. Report how the target divides between latents and error terms, twice: over the direct
   contributions to the target (every writer, before any search) and over the |influence| of
   the kept graph's nodes (paths through several layers included).
"""

from __future__ import annotations

from dataclasses import dataclass

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


def demo_circuit(adapter, store, prompt: str = DEMO_PROMPT, target: str = DEMO_TARGET, *, hops: int = 3,
                 top_k: int = 8, share: float = 0.8, command: str = "interp run") -> CircuitSummary:
    """Build, store and summarise the attribution graph of `target` on `prompt` (steps 1-3)."""
    from interp.methods.circuits.attribution import attribute, trace
    from interp.methods.circuits.graph import GraphConfig, build_graph
    from interp.methods.circuits.store import save_graph
    from interp.methods.circuits.targets import parse_target
    from interp.methods.circuits.transcoders import load_transcoders, transcoders_of

    names = transcoders_of(store, adapter.store_name)
    if not names:
        raise ValueError(f"no transcoders of {adapter.store_name} in store {store.root}; the transcoder step trains them")
    transcoders, labels = load_transcoders(store, names, adapter)
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
