"""Plotly figures of feature complexity: curves, distribution, importance, layer flow.

Each builder takes plain arrays / a per-feature DataFrame (as returned by
`interp.jobs.complexity.feature_frame` or read back from the store), so a notebook
and the app draw the same thing from the same data.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go


def _label(row) -> str:
    src = f"{row['source']}:" if row.get("source") else ""
    return f"{src}{row['site']}[{int(row['index'])}]"


def curve_figure(frame: pd.DataFrame, max_lines: int = 12, title: str = "Decodability per layer") -> go.Figure:
    """I_V(h_l -> z) against layer l for up to `max_lines` features (spread over the K range)."""
    ok = frame[frame["K"].notna()].sort_values("K")
    if len(ok) > max_lines:
        ok = ok.iloc[np.linspace(0, len(ok) - 1, max_lines).round().astype(int)]
    fig = go.Figure()
    for _, row in ok.iterrows():
        curve = list(row["curve"])
        fig.add_trace(go.Scatter(x=list(range(len(curve))), y=curve, mode="lines+markers",
                                 name=f"{_label(row)} K={row['K']:.2f}"))
    fig.update_layout(title=title, xaxis_title="layer l (h_0 = embeddings)", yaxis_title="I_V = held-out R^2",
                      yaxis_range=[0, 1.02])
    return fig


def distribution_figure(frame: pd.DataFrame, by: str = "site", nbins: int = 40) -> go.Figure:
    """Histogram of K, one overlaid trace per value of `by` (site by default)."""
    ok = frame[frame["K"].notna()]
    fig = go.Figure()
    for key, part in ok.groupby(by):
        fig.add_trace(go.Histogram(x=part["K"], name=f"{key} (n={len(part)})", opacity=0.6,
                                   xbins=dict(start=0, end=1, size=1 / nbins)))
    fig.update_layout(barmode="overlay", title="Complexity K = 1 - mean_l I_V", xaxis_title="K",
                      yaxis_title="features", xaxis_range=[0, 1])
    return fig


def importance_figure(frame: pd.DataFrame, rho: float | None = None) -> go.Figure:
    """Scatter of importance (log scale) against K, coloured by site, with Spearman rho, its 95% interval
    and the sample size in the title."""
    ok = frame[frame["K"].notna() & frame["importance"].notna() & (frame["importance"] > 0)]
    if rho is None and len(ok) >= 3:
        from scipy.stats import spearmanr

        rho = float(spearmanr(ok["K"], ok["importance"]).statistic)
    fig = go.Figure()
    for site, part in ok.groupby("site"):
        fig.add_trace(go.Scattergl(x=part["K"], y=part["importance"], mode="markers", name=site,
                                   marker=dict(size=4, opacity=0.6),
                                   text=[_label(r) for _, r in part.iterrows()]))
    if rho is None:
        rho_text = ""
    else:
        from interp.stats import spearman_interval

        lo, hi = spearman_interval(rho, len(ok))
        rho_text = f" (Spearman rho = {rho:.3f}, 95% CI [{lo:.3f}, {hi:.3f}], n = {len(ok)})"
    fig.update_layout(title=f"Importance vs complexity{rho_text}", xaxis_title="K",
                      yaxis_title="importance: mean |grad x act|", yaxis_type="log")
    return fig


def flow_figure(pre: np.ndarray, mid: np.ndarray, post: np.ndarray, K: np.ndarray,
                n_groups: int = 3) -> go.Figure:
    """Mean decodability at resid_pre / resid_mid / resid_post of each block, per K tercile.

    Args:
        pre, mid, post: (n_blocks, F) arrays (NaN where the block is past the feature).
        K: (F,) complexity; features are grouped into `n_groups` quantile bins of K.
    """
    K = np.asarray(K, dtype=float)
    ok = np.isfinite(K)
    edges = np.quantile(K[ok], np.linspace(0, 1, n_groups + 1)) if ok.any() else np.zeros(n_groups + 1)
    fig = go.Figure()
    names = {0: "simple", n_groups - 1: "complex"}
    for g in range(n_groups):
        sel = ok & (K >= edges[g]) & ((K <= edges[g + 1]) if g == n_groups - 1 else (K < edges[g + 1]))
        if not sel.any():
            continue
        xs, ys = [], []
        for b in range(pre.shape[0]):
            for off, arr in ((0.0, pre), (0.5, mid), (1.0, post)):
                vals = arr[b, sel]
                if np.isfinite(vals).any():
                    xs.append(b + off)
                    ys.append(float(np.nanmean(vals)))
        label = f"{names.get(g, f'bin {g}')} K in [{edges[g]:.2f}, {edges[g + 1]:.2f}] (n={int(sel.sum())})"
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=label))
    fig.update_layout(title="Layer flow: decodability at resid_pre (b), resid_mid (b+0.5), resid_post (b+1)",
                      xaxis_title="block (pre at b, after attention at b+0.5, after MLP at b+1)",
                      yaxis_title="mean I_V")
    return fig


def flow_split_figure(frame: pd.DataFrame, n_groups: int = 3) -> go.Figure:
    """Stacked bars: decodability carried from the embeddings vs written by attention vs MLPs."""
    ok = frame[frame["K"].notna()].copy()
    ok["bin"] = pd.qcut(ok["K"].rank(method="first"), n_groups, labels=False)
    agg = ok.groupby("bin")[["flow_embed", "flow_attn", "flow_mlp", "K"]].mean()
    x = [f"K~{k:.2f}" for k in agg["K"]]
    fig = go.Figure([go.Bar(x=x, y=agg[c], name=n) for c, n in
                     (("flow_embed", "embeddings (residual carry)"), ("flow_attn", "attention writes"),
                      ("flow_mlp", "MLP writes"))])
    fig.update_layout(barmode="relative", title="Where decodability comes from (mean per K bin)",
                      yaxis_title="I_V contribution")
    return fig


def all_figures(run) -> dict[str, go.Figure]:
    """The standard figures of a `ComplexityRun`, by name."""
    frame = run.frame
    figs = {"curves": curve_figure(frame), "distribution": distribution_figure(frame)}
    if frame["importance"].notna().any():
        rho = (run.summary.get("rank_correlation") or {}).get("rho")
        figs["importance"] = importance_figure(frame, rho)
    if run.flow is not None:
        figs["flow"] = flow_figure(run.flow.pre.numpy(), run.flow.mid.numpy(), run.flow.post.numpy(),
                                   run.result.K.numpy())
        figs["flow_split"] = flow_split_figure(frame)
    return figs
