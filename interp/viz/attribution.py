"""Plotly figures for token attributions (shared by notebooks and the app).

- `token_heatmap(result)`            - one attribution as coloured tokens (a 1-row heatmap).
- `continuation_heatmap(cont)`       - generated token x prefix token matrix.
- `faithfulness_figure(table)`       - Soft-NS / Soft-NC per method with 95% intervals.
- `faithfulness_table(table)`        - the same numbers as a plotly table.
"""

from __future__ import annotations

import plotly.graph_objects as go


def _label(tokens: list[str]) -> list[str]:
    # Unique, visible labels: plotly merges equal category names and hides leading spaces.
    return [f"{i}:{t.replace(' ', '␣').replace(chr(10), '⏎')}" for i, t in enumerate(tokens)]


def token_heatmap(result, title: str | None = None) -> go.Figure:
    """One `AttributionResult` as a 1 x pos heatmap with the tokens on the x axis."""
    scores = [float(s) for s in result.scores]
    fig = go.Figure(go.Heatmap(
        z=[scores], x=_label(result.tokens), y=[result.method], colorscale="RdBu", zmid=0,
        text=[[f"{s:.3f}" for s in scores]], texttemplate="%{text}",
        hovertemplate="%{x}<br>score %{z:.4f}<extra></extra>"))
    fig.update_layout(title=title or f"{result.method} attribution towards {result.target}", height=220,
                      xaxis=dict(tickangle=-45), margin=dict(l=40, r=20, t=50, b=80))
    return fig


def methods_heatmap(results, title: str = "token attributions by method") -> go.Figure:
    """Several `AttributionResult`s of the same input, one row each, min-max scaled per row."""
    rows, names = [], []
    for r in results:
        s = [float(v) for v in r.scores]
        lo, hi = min(s), max(s)
        rows.append([(v - lo) / (hi - lo) if hi > lo else 0.0 for v in s])
        names.append(r.method)
    fig = go.Figure(go.Heatmap(z=rows, x=_label(results[0].tokens), y=names, colorscale="Viridis",
                               hovertemplate="%{y} %{x}<br>scaled %{z:.3f}<extra></extra>"))
    fig.update_layout(title=title, height=120 + 30 * len(rows), xaxis=dict(tickangle=-45))
    return fig


def continuation_heatmap(cont, title: str | None = None) -> go.Figure:
    """A `ContinuationAttribution` matrix: rows generated tokens, columns prefix tokens."""
    labels = _label(cont.tokens)
    fig = go.Figure(go.Heatmap(
        z=cont.matrix.tolist(), x=labels[:-1], y=labels[cont.prompt_len:], colorscale="Blues",
        hovertemplate="generated %{y}<br>from %{x}<br>score %{z:.4f}<extra></extra>"))
    fig.update_layout(title=title or f"{cont.method}: each generated token attributed to its prefix",
                      xaxis=dict(tickangle=-45), yaxis=dict(autorange="reversed"),
                      height=200 + 25 * cont.matrix.shape[0])
    return fig


def faithfulness_figure(table, title: str = "Faithfulness of token attributions (higher is better)") -> go.Figure:
    """Bar chart of Soft-NS and Soft-NC per method.

    `table`: rows with ``method``, ``soft_ns``, ``soft_ns_lo``, ``soft_ns_hi``, ``soft_nc``,
    ``soft_nc_lo``, ``soft_nc_hi`` (a DataFrame or a list of dicts).
    """
    rows = table.to_dict("records") if hasattr(table, "to_dict") else list(table)
    fig = go.Figure()
    for metric, name in (("soft_ns", "Soft-NS"), ("soft_nc", "Soft-NC")):
        fig.add_bar(
            name=name, x=[r["method"] for r in rows], y=[r[metric] for r in rows],
            error_y=dict(type="data", symmetric=False,
                         array=[r[f"{metric}_hi"] - r[metric] for r in rows],
                         arrayminus=[r[metric] - r[f"{metric}_lo"] for r in rows]))
    fig.update_layout(title=title, barmode="group", yaxis_title="score (95% bootstrap interval)")
    return fig


def faithfulness_table(table) -> go.Figure:
    """The faithfulness summary as a plotly table (means with intervals)."""
    rows = table.to_dict("records") if hasattr(table, "to_dict") else list(table)

    def cell(r, m):
        return f"{r[m]:.3f} [{r[m + '_lo']:.3f}, {r[m + '_hi']:.3f}]"

    cols = ["method", "n", "Soft-NS", "Soft-NC"]
    values = [[r["method"] for r in rows], [r.get("n", "") for r in rows],
              [cell(r, "soft_ns") for r in rows], [cell(r, "soft_nc") for r in rows]]
    return go.Figure(go.Table(header=dict(values=cols), cells=dict(values=values)))
