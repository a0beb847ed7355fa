"""Plotly figures of transcoder circuits (`interp.methods.circuits.graph.CircuitGraph`).

Layered layout: x = token position, y = where a node sits in the residual stream (embeddings
at the bottom, then per layer its attention heads and, above them, its MLP's latents, error
and bias terms; the target on top). Nodes sharing a cell are spread horizontally. Marker
size follows |influence|; edges are blue when they push the target up, red when down, with
width following |weight|.
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
