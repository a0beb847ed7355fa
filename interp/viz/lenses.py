"""Plotly figures of the lenses: a prompt's (layer x position) grid and the per-layer KL table.

`lens_heatmap` draws a `LensGrid` (`interp.methods.lenses.lens_grid`); `kl_by_layer` draws the
comparison table `compare_lenses` returns and the store keeps (``tuned_lens`` results row).
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import plotly.graph_objects as go


def _cell_label(token: str, width: int = 8) -> str:
    shown = repr(token)[1:-1]
    return html.escape(shown if len(shown) <= width else shown[: width - 1] + "…")


def lens_heatmap(grid, title: str | None = None) -> go.Figure:
    """Top-token probability at every (layer, position), the token as the cell's text.

    Rows: ``embed`` at the bottom, the last layer (the model's own output) at the top. The
    hover shows the lens's top tokens, its probability of the model's final prediction and
    the KL to the output at that cell.
    """
    n_rows, pos, k = grid.top_probs.shape
    x = [f"{i}:{_cell_label(t, 12)}" for i, t in enumerate(grid.tokens)]
    final = [repr(grid.top_tokens[-1, c, 0]) for c in range(pos)]
    hover = [[("<br>".join(f"{html.escape(repr(grid.top_tokens[r, c, j]))} {grid.top_probs[r, c, j]:.3f}"
                           for j in range(k))
               + f"<br>p(final {html.escape(final[c])}) = {grid.final_prob[r, c]:.3f}<br>KL = {grid.kl[r, c]:.3f}")
              for c in range(pos)] for r in range(n_rows)]
    fig = go.Figure(go.Heatmap(
        z=grid.top_probs[:, :, 0], x=x, y=grid.labels, zmin=0.0, zmax=1.0, colorscale="Blues",
        text=[[_cell_label(grid.top_tokens[r, c, 0]) for c in range(pos)] for r in range(n_rows)],
        texttemplate="%{text}", textfont=dict(size=10), customdata=hover,
        hovertemplate="layer %{y}, position %{x}<br>%{customdata}<extra></extra>",
        colorbar=dict(title="top-token prob")))
    fig.update_layout(title=title or f"{grid.lens.capitalize()} lens: top token per layer and position",
                      xaxis=dict(title="position", tickangle=-45, side="bottom"),
                      yaxis=dict(title="layer", type="category"),
                      height=max(320, 120 + 18 * n_rows), margin=dict(b=110))
    return fig


def kl_by_layer(table: pd.DataFrame, title: str = "KL(final || lens) per layer on held-out tokens") -> go.Figure:
    """Mean KL per lens row with its 95% interval: the logit lens and, when present, the tuned lens."""
    fig = go.Figure()
    for name, label in (("logit", "logit lens"), ("tuned", "tuned lens")):
        if f"kl_{name}" not in table:
            continue
        mean = table[f"kl_{name}"].to_numpy(float)
        upper = np.nan_to_num(table[f"kl_{name}_hi"].to_numpy(float) - mean)
        lower = np.nan_to_num(mean - table[f"kl_{name}_lo"].to_numpy(float))
        fig.add_trace(go.Scatter(x=table["row"].astype(str), y=mean, mode="lines+markers", name=label,
                                 error_y=dict(type="data", array=upper, arrayminus=lower)))
    fig.update_layout(title=title, xaxis=dict(title="layer", type="category"), yaxis_title="KL (nats)")
    return fig
