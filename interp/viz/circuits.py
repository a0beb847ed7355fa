"""Plotly figures of transcoder circuits (`interp.methods.circuits.graph.CircuitGraph`).

Layered layout: x = token position, y = where a node sits in the residual stream (embeddings
at the bottom, then per layer its attention heads and, above them, its MLP's latents, error
and bias terms; the target on top). Nodes sharing a cell are spread horizontally. Marker
size follows |influence|; edges are blue when they push the target up, red when down, with
width following |weight|.

Attribution graphs (`attribution_graph_figure`, `subgraph_figure`) are drawn from their pruned
circuit-tracer file (`interp.methods.circuits.graph_view`): x = position, y = layer
(embeddings at -1, logits on top), edge width by |weight| in `EDGE_BINS` classes, pinned
nodes as stars; the subgraph shows the pinned nodes with each supernode merged into one.
"""

from __future__ import annotations

import plotly.graph_objects as go

from interp.methods.circuits.graph import CircuitGraph, Node

COLORS = {"target": "#222222", "latent": "#1f77b4", "head": "#ff7f0e", "embed": "#2ca02c", "pos_embed": "#98df8a",
          "error": "#d62728", "mlp": "#e377c2", "attn_bias": "#c7c7c7", "tc_bias": "#c7c7c7", "enc_bias": "#c7c7c7",
          "skip": "#9467bd", "bias": "#c7c7c7"}


def _level(n: Node, n_layers: int) -> float:
    if n.type in ("embed", "pos_embed"):
        return -1.0
    if n.type in ("target", "bias"):
        return n_layers + 0.0
    return n.layer + (0.3 if n.type in ("head", "attn_bias") else 0.65)


def layout(graph: CircuitGraph) -> dict[str, tuple[float, float]]:
    """Node id -> (x, y) of the layered layout (see the module docstring)."""
    layers = [n.layer for n in graph.nodes if n.layer is not None]
    n_layers = max(layers) + 1 if layers else 1
    cells: dict[tuple[int, float], list[Node]] = {}
    for n in graph.nodes:
        cells.setdefault((n.position or 0, _level(n, n_layers)), []).append(n)
    pos = {}
    for (x, y), members in cells.items():
        members.sort(key=lambda n: -abs(n.influence))
        for i, n in enumerate(members):
            pos[n.id] = (x + (i - (len(members) - 1) / 2) * 0.8 / max(len(members), 1), y)
    return pos


def circuit_figure(graph: CircuitGraph, title: str | None = None) -> go.Figure:
    """The circuit as a layered node-link diagram with hover labels."""
    xy = layout(graph)
    big = max((abs(e.weight) for e in graph.edges), default=1.0) or 1.0
    fig = go.Figure()
    for e in sorted(graph.edges, key=lambda e: abs(e.weight)):
        (x0, y0), (x1, y1) = xy[e.source], xy[e.target]
        fig.add_trace(go.Scatter(
            x=[x0, x1], y=[y0, y1], mode="lines", hoverinfo="text", showlegend=False,
            text=f"{e.source} -> {e.target}: {e.weight:+.4f}",
            line=dict(width=0.5 + 6 * abs(e.weight) / big, color="rgba(31,119,180,0.5)" if e.weight > 0
                      else "rgba(214,39,40,0.5)")))
    top = max((abs(n.influence) for n in graph.nodes if n.type != "target"), default=1.0) or 1.0
    for kind in sorted({n.type for n in graph.nodes}):
        nodes = [n for n in graph.nodes if n.type == kind]
        fig.add_trace(go.Scatter(
            x=[xy[n.id][0] for n in nodes], y=[xy[n.id][1] for n in nodes], mode="markers", name=kind,
            marker=dict(size=[8 + 22 * min(abs(n.influence) / top, 1) for n in nodes], color=COLORS.get(kind, "#7f7f7f"),
                        line=dict(width=1, color="white")),
            text=[f"{n.label}<br>influence {n.influence:+.4f}<br>activation {n.activation if n.activation is not None else '-'}"
                  f"<br>rest {n.rest:+.4f}, error in {n.error_in:+.4f}" for n in nodes], hoverinfo="text"))
    tokens = graph.meta.get("tokens") or []
    stats = graph.meta.get("stats", {})
    target = graph.meta.get("target", {})
    head = title or (f"{target.get('label', 'target')} = {target.get('value', float('nan')):.3f}; "
                     f"error share {stats.get('error_share', float('nan')):.0%}")
    fig.update_layout(
        title=head, template="plotly_white", height=560, hovermode="closest",
        xaxis=dict(tickmode="array", tickvals=list(range(len(tokens))), ticktext=[repr(t)[1:-1] for t in tokens],
                   title="position"),
        yaxis=dict(title="layer (embeddings at -1)", zeroline=False))
    return fig


# ----------------------------------------------------------------------------- attribution graphs
GRAPH_COLORS = {"feature": "#1f77b4", "error": "#d62728", "embedding": "#2ca02c", "logit": "#222222",
                "supernode": "#9467bd"}
EDGE_BINS = 5
"""Edges are drawn in this many width classes per sign (one trace each, not one per edge)."""


def graph_layout(nodes) -> dict[str, tuple[float, float]]:
    """node_id -> (x, y): x = position, y = layer (embeddings -1, logits n_layers); nodes
    sharing a (position, layer) cell spread across 0.8 of a position, most influential first."""
    xy = {}
    for (pos, layer), cell in nodes.groupby(["position", "layer"], sort=False):
        cell = cell.sort_values("influence", na_position="last")  # cumulative influence: small = most
        n = len(cell)
        for i, nid in enumerate(cell["node_id"]):
            xy[nid] = (float(pos) + (i - (n - 1) / 2) * 0.8 / max(n, 1), float(layer))
    return xy


def _as_file(graph) -> dict:
    from interp.methods.circuits.attribution_graph import AttributionGraph
    from interp.methods.circuits.graph_files import to_circuit_tracer

    return to_circuit_tracer(graph) if isinstance(graph, AttributionGraph) else graph


def _fmt(x) -> str:
    return "-" if x is None or x != x else f"{x:.4g}"


def _edge_traces(fig, links, xy, big: float) -> None:
    """Links as line segments, grouped by sign and |weight| class (width 0.5..6.5)."""
    groups: dict[tuple[bool, int], list] = {}
    for l in links:
        if l["source"] in xy and l["target"] in xy:
            b = min(int(EDGE_BINS * abs(l["weight"]) / big), EDGE_BINS - 1)
            groups.setdefault((l["weight"] >= 0, b), []).append(l)
    for (positive, b), group in sorted(groups.items()):
        xs, ys = [], []
        for l in group:
            (x0, y0), (x1, y1) = xy[l["source"]], xy[l["target"]]
            xs += [x0, x1, None]
            ys += [y0, y1, None]
        fig.add_trace(go.Scatter(
            x=xs, y=ys, mode="lines", hoverinfo="skip", showlegend=False,
            name=f"{'+' if positive else '-'}|w| class {b}",
            line=dict(width=0.5 + 6 * (b + 1) / EDGE_BINS,
                      color="rgba(31,119,180,0.45)" if positive else "rgba(214,39,40,0.45)")))


def _node_traces(fig, nodes, xy, pinned=(), selected=None) -> None:
    pinned = set(pinned)
    for kind in ("embedding", "error", "feature", "logit", "supernode"):
        part = nodes[nodes["kind"] == kind]
        if part.empty:
            continue
        ids = list(part["node_id"])
        fig.add_trace(go.Scatter(
            x=[xy[i][0] for i in ids], y=[xy[i][1] for i in ids], mode="markers", name=kind,
            customdata=ids,
            marker=dict(size=[16 if i == selected else 12 if i in pinned else 9 for i in ids],
                        color=GRAPH_COLORS.get(kind, "#7f7f7f"),
                        symbol=["star" if i in pinned else "circle" for i in ids],
                        line=dict(width=[3 if i == selected else 1 for i in ids],
                                  color=["#ff7f0e" if i == selected else "white" for i in ids])),
            text=[f"{r.label}<br>{r.node_id}<br>activation {_fmt(r.activation)}<br>influence {_fmt(r.influence)}"
                  for r in part.itertuples()], hoverinfo="text"))


def _axes(fig, words, n_layers, title, height=620) -> go.Figure:
    fig.update_layout(
        title=title, template="plotly_white", height=height, hovermode="closest",
        xaxis=dict(tickmode="array", tickvals=list(range(len(words))), ticktext=[repr(t)[1:-1] for t in words],
                   title="position"),
        yaxis=dict(tickmode="array", tickvals=list(range(-1, n_layers + 1)),
                   ticktext=["emb", *map(str, range(n_layers)), "logit"], title="layer", zeroline=False))
    return fig


def attribution_graph_figure(graph, pinned=None, selected: str | None = None, title: str | None = None) -> go.Figure:
    """The pruned attribution graph: nodes by position (x) and layer (y), edge width by |weight|.

    `graph`: an `AttributionGraph` (pruned by its thresholds) or a circuit-tracer graph file.
    Pinned nodes (default: the file's ``pinnedIds``) are stars, `selected` ringed; each node
    marker carries its node_id as ``customdata`` (what a click selection reports).
    """
    from interp.methods.circuits.graph_view import graph_params, node_table

    data = _as_file(graph)
    nodes = node_table(data)
    pinned = graph_params(data).pinned if pinned is None else pinned
    xy = graph_layout(nodes)
    big = max((abs(l["weight"]) for l in data.get("links", [])), default=1.0) or 1.0
    fig = go.Figure()
    _edge_traces(fig, data.get("links", []), xy, big)
    _node_traces(fig, nodes, xy, pinned, selected)
    meta = data.get("metadata", {})
    n_layers = int(nodes["layer"].max()) if len(nodes) else 0
    head = title or (f"{meta.get('prompt', '')!r}: {len(nodes)} nodes, {len(data.get('links', []))} edges "
                     f"(pruned at node threshold {meta.get('node_threshold', '-')})")
    return _axes(fig, meta.get("prompt_tokens") or [], n_layers, head)


def subgraph_figure(graph, pinned=None, supernodes=None, title: str | None = None) -> go.Figure:
    """The pinned nodes alone, each supernode drawn as one node (label, mean place) whose
    edges are the sums of its members' edges; links between pinned nodes only."""
    import pandas as pd

    from interp.methods.circuits.graph_view import graph_params, node_table

    data = _as_file(graph)
    params = graph_params(data)
    pinned = params.pinned if pinned is None else list(pinned)
    supernodes = params.supernodes if supernodes is None else [list(s) for s in supernodes]
    nodes = node_table(data).set_index("node_id", drop=False)
    group = {}
    for s in supernodes:
        for nid in s[1:]:
            group.setdefault(nid, f"supernode: {s[0]}")
    members = [n for n in dict.fromkeys([*pinned, *group]) if n in nodes.index]
    rows, seen = [], set()
    for nid in members:
        name = group.get(nid, nid)
        if name in seen:
            continue
        seen.add(name)
        if name == nid:
            rows.append(nodes.loc[nid].to_dict())
        else:
            part = nodes.loc[[m for m in members if group.get(m) == name]]
            rows.append({"node_id": name, "kind": "supernode", "layer": part["layer"].mean(),
                         "position": part["position"].mean(), "label": f"{name[11:]} ({len(part)} nodes)",
                         "activation": None, "influence": part["influence"].min()})
    sub = pd.DataFrame(rows, columns=nodes.columns)
    xy = graph_layout(sub)
    weights: dict[tuple[str, str], float] = {}
    for l in data.get("links", []):
        s, t = group.get(l["source"], l["source"]), group.get(l["target"], l["target"])
        if s in xy and t in xy and s != t and l["source"] in members and l["target"] in members:
            weights[s, t] = weights.get((s, t), 0.0) + float(l["weight"])
    links = [{"source": s, "target": t, "weight": w} for (s, t), w in weights.items()]
    fig = go.Figure()
    _edge_traces(fig, links, xy, max((abs(w) for w in weights.values()), default=1.0) or 1.0)
    _node_traces(fig, sub, xy)
    n_layers = int(node_table(data)["layer"].max()) if len(nodes) else 0
    head = title or f"subgraph: {len(sub)} node{'s' * (len(sub) != 1)}, {len(links)} edge{'s' * (len(links) != 1)}"
    return _axes(fig, (data.get("metadata") or {}).get("prompt_tokens") or [], n_layers, head, height=480)
