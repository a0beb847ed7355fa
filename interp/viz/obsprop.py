"""Plotly figures for ObsProp: component ranking, coupling scatter, data-efficiency curves.

Each builder takes plain tables/arrays (as returned by `interp.methods.obsprop.propagation*`) and
returns a ``plotly.graph_objects.Figure``, so a notebook and the app show the same thing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from interp.viz.store_views import binned_histogram

_METHOD_COLORS = {"obsprop": "#d62728", "probe": "#1f77b4", "diff_means": "#2ca02c"}


def component_ranking_figure(table: pd.DataFrame, top: int = 25, title: str = "ObsProp feature norms") -> go.Figure:
    """Bar chart of the `top` components by feature norm; with an ``effect`` column, the
    measured ablation effect is drawn beside it on a second axis."""
    if table.empty:
        raise ValueError("component_ranking_figure needs a non-empty table (columns: component, norm)")
    t = table.sort_values("norm", ascending=False).head(top)
    fig = go.Figure(go.Bar(x=t["component"], y=t["norm"], name="||y|| (feature norm)", marker_color="#d62728"))
    if "effect" in t:
        fig.add_trace(go.Bar(x=t["component"], y=t["effect"].abs(), name="|ablation effect|", yaxis="y2",
                             marker_color="#7f7f7f", opacity=0.7))
        fig.update_layout(yaxis2=dict(title="|change of observable|", overlaying="y", side="right"), barmode="group")
    fig.update_layout(title=title, xaxis_title="component", yaxis_title="feature norm", template="plotly_white",
                      legend=dict(orientation="h", y=1.1))
    return fig


def coupling_scatter(scores: np.ndarray, predicted: float, slope: float, intercept: float = 0.0,
                     labels: tuple[str, str] = ("y1 score", "y2 score"), max_points: int = 5000) -> go.Figure:
    """Real y2-scores against y1-scores (n, 2), with the fitted line and the coupling prediction."""
    scores = np.asarray(scores)
    if scores.ndim != 2 or scores.shape[1] != 2:
        raise ValueError(f"scores must be (n, 2), got shape {scores.shape}")
    pts = scores[np.random.default_rng(0).permutation(len(scores))[:max_points]]
    xs = np.linspace(scores[:, 0].min(), scores[:, 0].max(), 2)
    fig = go.Figure(go.Scattergl(x=pts[:, 0], y=pts[:, 1], mode="markers", name="inputs",
                                 marker=dict(size=3, opacity=0.4, color="#1f77b4")))
    fig.add_trace(go.Scatter(x=xs, y=slope * xs + intercept, mode="lines", name=f"fit: slope {slope:.3f}"))
    fig.add_trace(go.Scatter(x=xs, y=predicted * xs + intercept, mode="lines", line=dict(dash="dash"),
                             name=f"coupling C = {predicted:.3f}"))
    fig.update_layout(xaxis_title=labels[0], yaxis_title=labels[1], template="plotly_white",
                      title="Coupling coefficient vs best-fit slope")
    return fig


def data_efficiency_figure(table: pd.DataFrame, metric: str = "auroc", title: str = "Data efficiency",
                           ceiling: float | None = None) -> go.Figure:
    """Held-out `metric` ('auroc' or 'corr') against k per class, mean +- std over seeds."""
    if metric not in ("auroc", "corr"):
        raise ValueError(f"metric {metric!r} is not valid; valid: auroc, corr")
    agg = table.groupby(["method", "k"])[metric].agg(["mean", "std"]).reset_index()
    fig = go.Figure()
    for method, g in agg.groupby("method"):
        fig.add_trace(go.Scatter(x=g["k"], y=g["mean"], error_y=dict(type="data", array=g["std"].fillna(0)),
                                 mode="lines+markers", name=method, line=dict(color=_METHOD_COLORS.get(method))))
    if ceiling is not None and metric == "auroc":
        fig.add_hline(y=ceiling, line_dash="dot", annotation_text="true observable", line_color="#7f7f7f")
    fig.update_layout(title=title, xaxis=dict(title="labelled examples per class (k)", type="log"),
                      yaxis_title="held-out AUROC" if metric == "auroc" else "corr. with true observable",
                      template="plotly_white")
    return fig


def check_headlines(angles: dict, ablation: dict) -> list[str]:
    """One line per stored ObsProp check with its sample size and 95% interval (the app and the
    notebook show these). `angles` / `ablation`: the ``obsprop_norm_angles`` / ``obsprop_ablation``
    payloads ({} when missing)."""

    def ci(pair) -> str:
        return "" if not pair or any(v is None for v in pair) else f", 95% CI [{pair[0]:.3f}, {pair[1]:.3f}]"

    lines = []
    if "mean_cos" in angles:
        n = angles.get("n", sum(r.get("n", 0) for r in angles.get("rows", [])))
        lines.append(f"Norm approximation: mean cosine {angles['mean_cos']:.4f}{ci(angles.get('mean_cos_ci'))}, "
                     f"n = {n:,} token positions")
    if "spearman_norm" in ablation:
        n = ablation.get("n", len(ablation.get("rows", [])))
        intervals = ablation.get("intervals", {})
        lines.append(f"Ranking ({ablation.get('ablation', '?')} ablation): Spearman(norm, |effect|) "
                     f"{ablation['spearman_norm']:.3f}{ci(intervals.get('spearman_norm'))}; Spearman(|direct|, "
                     f"|effect|) {ablation['spearman_direct']:.3f}{ci(intervals.get('spearman_direct'))}, "
                     f"n = {n} components")
    return lines


def score_histogram_figure(edges, counts, n_tokens: int, mean: float | None = None,
                           title: str = "ObsProp score distribution") -> go.Figure:
    """An ObsProp vector's corpus score histogram (``x . y`` per token; the stored bins of
    `interp.store.read.feature_histogram`), signed scores on x, a dashed line at 0 (where the
    vector's push on the observable changes sign) and, given, one at the mean."""
    fig = binned_histogram(edges, counts, title=f"{title} over {int(n_tokens):,} corpus tokens")
    fig.update_layout(xaxis_title="score x . y")
    fig.add_vline(x=0.0, line_dash="dash", line_color="gray")
    if mean is not None:
        fig.add_vline(x=float(mean), line_dash="dot", line_color="#d62728", annotation_text=f"mean {mean:.3g}")
    return fig
