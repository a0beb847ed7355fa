"""Generic figures and HTML over store rows: what a feature page or overview shows.

Method-specific figures live beside their method (`interp.viz.neurons`, `.dictionaries`,
`.obsprop`, `.attribution`, `.complexity`); the builders here take plain rows from any
method so that a notebook shows what the dashboard shows with the same call.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

_HIGHLIGHT = "255, 140, 0"  # orange for positive activations
_NEGATIVE = "30, 110, 255"  # blue for negative ones
_LAYOUT = dict(template="plotly_white", margin=dict(l=50, r=20, t=50, b=45))


def context_html(tokens: Sequence[str], acts: Sequence[float], scale: float | None = None,
                 max_pos: int | None = None) -> str:
    """One token window as HTML spans whose background intensity follows the activation.

    tokens: (pos,) strings; acts: (pos,) activations. `scale` is the activation mapped to
    full intensity (default: the window's largest |act|). Text is HTML-escaped; the
    activation of each token shows as a tooltip. `max_pos` gets an underline.
    """
    if len(tokens) != len(acts):
        raise ValueError(f"context_html needs one activation per token, got {len(tokens)} tokens "
                         f"and {len(acts)} activations")
    values = np.asarray(acts, dtype=float)
    top = float(scale) if scale else float(np.nanmax(np.abs(values))) if len(values) else 0.0
    spans = []
    for i, (tok, act) in enumerate(zip(tokens, values)):
        alpha = 0.0 if top <= 0 or not np.isfinite(act) else min(abs(act) / top, 1.0)
        colour = _HIGHLIGHT if act >= 0 else _NEGATIVE
        text = html.escape(str(tok)).replace("\n", "&#8629;").replace(" ", "&nbsp;") or "&#8203;"
        underline = "border-bottom:2px solid #333;" if max_pos is not None and i == max_pos else ""
        spans.append(f'<span title="{act:.3g}" style="background:rgba({colour},{alpha:.2f});'
                     f'{underline}padding:1px 0;border-radius:2px">{text}</span>')
    return ('<div style="font-family:monospace;font-size:0.9em;line-height:1.8;white-space:normal">'
            + "".join(spans) + "</div>")


def activation_histogram(acts: Sequence[float], title: str = "Activation distribution",
                         log_y: bool = True, bins: int = 50) -> go.Figure:
    """Histogram of activation values (e.g. every token of the stored top examples)."""
    values = np.asarray([a for a in acts if a is not None and np.isfinite(a)], dtype=float)
    fig = go.Figure(go.Histogram(x=values, nbinsx=bins, marker_color="rgb(255,140,0)"))
    fig.update_layout(title=title, xaxis_title="activation", yaxis_title="count", **_LAYOUT)
    if log_y:
        fig.update_yaxes(type="log")
    return fig


def binned_histogram(edges: Sequence[float], counts: Sequence[float], title: str = "Activation distribution",
                     log_y: bool = True, density: float | None = None) -> go.Figure:
    """A histogram already binned (``edges`` (n + 1,), ``counts`` (n,)), e.g. a feature's corpus
    histogram from `interp.store.read.feature_histogram`; bars at their true widths."""
    edges, counts = np.asarray(edges, dtype=float), np.asarray(counts, dtype=float)
    if edges.shape != (len(counts) + 1,):
        raise ValueError(f"binned_histogram needs len(counts) + 1 edges, got {edges.shape[0]} edges for "
                         f"{len(counts)} counts")
    total = counts.sum()
    share = counts / total if total else counts
    fig = go.Figure(go.Bar(x=(edges[:-1] + edges[1:]) / 2, y=counts, width=np.diff(edges),
                           marker_color="rgb(255,140,0)", customdata=np.stack([edges[:-1], edges[1:], share], -1),
                           hovertemplate="[%{customdata[0]:.3g}, %{customdata[1]:.3g}): %{y:,} tokens "
                                         "(%{customdata[2]:.2%})<extra></extra>"))
    if density is not None:
        title = f"{title} - density {density:.2e} (share of tokens > 0)"
    fig.update_layout(title=title, xaxis_title="activation", yaxis_title="tokens", bargap=0, **_LAYOUT)
    if log_y:
        fig.update_yaxes(type="log")
    return fig


def layer_summary(summary: pd.DataFrame, y: str, title: str) -> go.Figure:
    """A line per kind of a per-layer aggregate (columns layer, kind and `y`)."""
    fig = go.Figure()
    for kind, part in summary.groupby("kind", sort=True):
        part = part.sort_values("layer")
        fig.add_trace(go.Scatter(x=part["layer"], y=part[y], mode="lines+markers", name=str(kind)))
    fig.update_layout(title=title, xaxis_title="layer", yaxis_title=y, **_LAYOUT)
    return fig


def metric_scatter(frame: pd.DataFrame, x: str, y: str, color: str | None = None, hover: str | None = None,
                   title: str = "", log_x: bool = False) -> go.Figure:
    """A scatter of two metric columns (e.g. dictionaries' L0 vs CE, complexity vs importance)."""
    fig = go.Figure()
    groups = frame.groupby(color, sort=True) if color else [("", frame)]
    for name, part in groups:
        text = part[hover].astype(str) if hover else None
        fig.add_trace(go.Scatter(x=part[x], y=part[y], mode="markers", name=str(name), text=text,
                                 hovertemplate=f"%{{text}}<br>{x}=%{{x:.4g}}<br>{y}=%{{y:.4g}}<extra></extra>"
                                 if hover else None))
    fig.update_layout(title=title, xaxis_title=x, yaxis_title=y, showlegend=bool(color), **_LAYOUT)
    if log_x:
        fig.update_xaxes(type="log")
    return fig


def feature_position_heatmap(tokens: Sequence[str], labels: Sequence[str], acts: np.ndarray,
                             title: str = "Most active features per position") -> go.Figure:
    """Features (rows) x positions (columns) activation heatmap; acts: (n_features, pos)."""
    acts = np.asarray(acts, dtype=float)
    if acts.shape != (len(labels), len(tokens)):
        raise ValueError(f"acts has shape {acts.shape}, expected ({len(labels)}, {len(tokens)})")
    fig = go.Figure(go.Heatmap(z=acts, x=[f"{i}:{t}" for i, t in enumerate(tokens)], y=list(labels),
                               colorscale="Oranges"))
    fig.update_layout(title=title, height=160 + 22 * len(labels), **_LAYOUT)
    return fig
