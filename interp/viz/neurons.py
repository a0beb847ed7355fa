"""Plotly figures of decoded neurons and clamping checks.

Builders take plain frames as the store returns them (``features`` rows with
``specialisation``, ``feature_tokens`` rows) or method results (`ClampResult`), so a
notebook and the app draw the same thing from the same data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from interp.sites import layer_of


def _layer(site: pd.Series) -> pd.Series:
    return site.map(layer_of).astype(int)


def specialisation_overview(features: pd.DataFrame, score: str = "logit_z", threshold: float | None = None,
                            title: str = "Neuron specialisation per layer") -> go.Figure:
    """Per layer: the spread of neurons' specialisation (box) and the share above `threshold`.

    `features`: the store's ``features`` rows of kind neuron (columns site and `score`).
    `score`: ``logit_z`` (default, the ranking score: z of the top logit over the vocabulary,
    range ``[0, sqrt(d_vocab - 1)]``) or ``specialisation`` (the saturating max softmax
    probability, kept for comparison). `threshold` defaults to 10 standard deviations for z
    and 0.1 for the probability.
    """
    labels = {"logit_z": ("logit z", "specialisation (z of the top logit, linear)", "linear", 10.0),
              "specialisation": ("max prob", "specialisation (max token prob, log)", "log", 0.1)}
    if score not in labels:
        raise ValueError(f"score must be one of {sorted(labels)}, got {score!r}")
    name, axis_title, axis_type, default_threshold = labels[score]
    threshold = default_threshold if threshold is None else threshold
    ok = features[features[score].notna()].copy() if score in features else features.iloc[0:0]
    if ok.empty:
        raise ValueError(f"no neurons with a {score} score; map the model with `interp map-neurons` first")
    ok["layer"] = _layer(ok["site"])
    share = ok.groupby("layer")[score].apply(lambda s: float((s > threshold).mean()))
    fig = go.Figure()
    fig.add_trace(go.Box(x=ok["layer"], y=ok[score], name=name, boxpoints=False))
    fig.add_trace(go.Scatter(x=share.index, y=share.values, mode="lines+markers", yaxis="y2",
                             name=f"share > {threshold:g}"))
    fig.update_layout(title=title, xaxis_title="layer", yaxis=dict(title=axis_title, type=axis_type),
                      yaxis2=dict(title="share of neurons", overlaying="y", side="right", range=[0, 1]))
    return fig


def dose_response_figure(result, target: str | None = None) -> go.Figure:
    """p(target) against the clamp value: the neuron, each control (grey) and the unclamped level."""
    fig = go.Figure()
    values = np.asarray(result.values)
    for j, idx in enumerate(result.control_indices):
        fig.add_trace(go.Scatter(x=values, y=result.control_probs[j], mode="lines", line=dict(color="lightgrey"),
                                 name=f"control {int(idx)}", showlegend=j == 0, legendgroup="controls"))
    fig.add_trace(go.Scatter(x=values, y=result.target_probs, mode="lines+markers", line=dict(width=3),
                             name=f"neuron {result.layer}:{result.index}"))
    fig.add_hline(y=result.baseline_prob, line_dash="dot", annotation_text="unclamped")
    label = target if target is not None else f"token {result.target_id}"
    fig.update_layout(title=f"Clamping neuron {result.layer}:{result.index}: p({label!r}) on {result.prompt!r}",
                      xaxis_title="clamp value", yaxis_title="next-token probability")
    return fig


def token_table_figure(tokens: pd.DataFrame, title: str | None = None) -> go.Figure:
    """Top and bottom tokens of one neuron, one column pair per (direction, variant).

    `tokens`: ``feature_tokens`` rows of one neuron (as from `Store.feature_tokens`).
    """
    if tokens.empty:
        raise ValueError("no token rows to show")
    headers, columns = [], []
    for (direction, variant), g in tokens.groupby(["direction", "variant"], sort=True):
        for end in ("top", "bottom"):
            e = g[g["end"] == end].sort_values("rank")
            headers.append(f"{direction}/{variant} {end}")
            columns.append([f"{s!r} {p:.3f}" for s, p in zip(e["token_str"], e["prob"])])
    depth = max(len(c) for c in columns)
    columns = [c + [""] * (depth - len(c)) for c in columns]
    fig = go.Figure(go.Table(header=dict(values=headers), cells=dict(values=columns, align="left")))
    row = tokens.iloc[0]
    fig.update_layout(title=title or f"{row['model']} {row['site']} neuron {int(row['index'])}")
    return fig
