"""Plotly figures for dictionaries: the L0 vs spliced-CE comparison, latent density, the
downstream evals (k-sparse probing, TPP, meta-structure) and the data for rendering a latent's
activation contexts."""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

_COLORS = {"transcoder": "#1f77b4", "sae": "#d62728"}


def no_fit_note(table: pd.DataFrame) -> str | None:
    """One line naming the dictionaries of `table` (columns name, fvu) whose held-out FVU is not
    below 1 (`interp.dictionaries.evaluation.fits`), worst first; None when there are none."""
    from interp.dictionaries.evaluation import NO_FIT_FVU, fits

    if "fvu" not in table.columns:
        return None
    bad = table[[not fits(v) for v in table["fvu"].fillna(0.0)]].sort_values("fvu", ascending=False)
    if bad.empty:
        return None
    names = ", ".join(f"{n} (FVU {v:.3g})" for n, v in zip(bad["name"], bad["fvu"]))
    return (f"{len(bad)} of {len(table)} dictionaries reconstruct their target no better than its mean "
            f"(held-out FVU >= {NO_FIT_FVU:g}): {names}. Training did not fit or diverged; their latents are "
            "not features to read.")


def kind_differences(table: pd.DataFrame) -> pd.DataFrame:
    """Transcoder against SAE at each k of a comparison table (columns kind, k, l0, ce_spliced,
    ce_recovered and its ``_lo`` / ``_hi`` interval): one row per k measured for both kinds, with
    both L0s, transcoder - SAE spliced CE (negative: the transcoder is better), both CE recovered
    with intervals, and whether those intervals overlap."""
    rows = []
    for k, pair in table.groupby("k"):
        if set(pair["kind"]) != {"transcoder", "sae"}:
            continue  # a k measured for one kind only has no difference to show
        t, s = (pair[pair["kind"] == kind].iloc[0] for kind in ("transcoder", "sae"))
        overlap = t["ce_recovered_lo"] <= s["ce_recovered_hi"] and s["ce_recovered_lo"] <= t["ce_recovered_hi"]
        rows.append({"k": k, "L0 transcoder": t["l0"], "L0 SAE": s["l0"],
                     "spliced CE transcoder - SAE": t["ce_spliced"] - s["ce_spliced"],
                     "CE recovered transcoder": _with_interval(t, "ce_recovered"),
                     "CE recovered SAE": _with_interval(s, "ce_recovered"),
                     "intervals": "overlap" if overlap else "disjoint"})
    return pd.DataFrame(rows)


def _with_interval(row, key: str) -> str:
    return f"{row[key]:.3f} [{row[f'{key}_lo']:.3f}, {row[f'{key}_hi']:.3f}]"


def l0_vs_ce_figure(table: pd.DataFrame, title: str = "L0 vs spliced CE") -> go.Figure:
    """Two panels over L0 (log x): spliced CE (with the clean CE as a dashed line) and CE
    loss recovered, one line per dictionary kind. `table` needs kind, l0, ce_spliced,
    ce_clean, ce_recovered (and optionally name, k)."""
    missing = {"kind", "l0", "ce_spliced", "ce_clean", "ce_recovered"} - set(table.columns)
    if missing:
        raise ValueError(f"table lacks columns {sorted(missing)}")
    fig = make_subplots(rows=1, cols=2, subplot_titles=("spliced next-token CE (nats)", "CE loss recovered"))
    for kind, rows in table.sort_values("l0").groupby("kind", sort=False):
        text = rows["name"] if "name" in rows else None
        style = dict(mode="lines+markers", name=kind, legendgroup=kind, text=text,
                     line=dict(color=_COLORS.get(kind)))
        fig.add_trace(go.Scatter(x=rows["l0"], y=rows["ce_spliced"], **style), row=1, col=1)
        fig.add_trace(go.Scatter(x=rows["l0"], y=rows["ce_recovered"], showlegend=False, **style), row=1, col=2)
    clean = float(table["ce_clean"].mean())
    fig.add_hline(y=clean, line_dash="dash", line_color="gray", annotation_text="clean", row=1, col=1)
    fig.update_xaxes(type="log", title_text="L0 (active latents per token)")
    fig.update_layout(title=title, template="plotly_white", height=420)
    return fig


def density_histogram_figure(histogram: dict, title: str = "latent density") -> go.Figure:
    """Bar chart of a `density_histogram` dict (log10 density bins; dead latents noted)."""
    edges, counts = histogram["log10_edges"], histogram["counts"]
    centres = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:])]
    fig = go.Figure(go.Bar(x=centres, y=counts, width=[b - a for a, b in zip(edges[:-1], edges[1:])]))
    fig.update_layout(title=f"{title} ({histogram.get('dead', 0)} dead latents not shown)", template="plotly_white",
                      xaxis_title="log10 firing frequency", yaxis_title="latents", height=320)
    return fig


def context_spans(tokens: list[str], acts: list[float], max_act: float | None = None) -> list[dict]:
    """Per token: text, activation and a 0-1 intensity (for highlighting); shared by the app
    and notebooks so both colour a context the same way."""
    if len(tokens) != len(acts):
        raise ValueError(f"{len(tokens)} tokens but {len(acts)} activations")
    top = max_act if max_act else max([a for a in acts if not math.isnan(a)] + [0.0])
    return [{"text": t, "act": float(a), "intensity": 0.0 if top <= 0 else max(0.0, min(1.0, a / top))}
            for t, a in zip(tokens, acts)]


def contexts_figure(examples: pd.DataFrame, title: str = "top activating contexts") -> go.Figure:
    """A heatmap of activation examples (rows = examples, columns = token positions, the
    token strings as cell text); `examples` holds `tokens` and `acts` lists per row."""
    width = max((len(t) for t in examples["tokens"]), default=0)
    z, text = [], []
    for toks, acts in zip(examples["tokens"], examples["acts"]):
        pad = width - len(toks)
        z.append(list(acts) + [None] * pad)
        text.append([t.replace("\n", "\\n") for t in toks] + [""] * pad)
    fig = go.Figure(go.Heatmap(z=z, text=text, texttemplate="%{text}", colorscale="Oranges", showscale=True,
                               hovertemplate="%{text}: %{z:.3f}<extra></extra>"))
    fig.update_layout(title=title, template="plotly_white", yaxis=dict(autorange="reversed", showticklabels=False),
                      xaxis=dict(showticklabels=False), height=40 * max(3, len(z)) + 100)
    return fig


def sparse_probing_figure(table: pd.DataFrame, title: str = "k-sparse probing") -> go.Figure:
    """Test accuracy against k (log x), one panel per dataset, one line per dictionary; the
    raw-activation probe of each dictionary's site as a dashed line. `table`:
    `interp.store.read.probing_results` (dictionary, dataset, k, accuracy, raw_accuracy)."""
    missing = {"dictionary", "dataset", "k", "accuracy", "raw_accuracy"} - set(table.columns)
    if missing:
        raise ValueError(f"table lacks columns {sorted(missing)}")
    datasets = list(dict.fromkeys(table["dataset"]))
    fig = make_subplots(rows=1, cols=max(1, len(datasets)), subplot_titles=datasets, shared_yaxes=True)
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
    names = list(dict.fromkeys(table["dictionary"]))
    for col, dataset in enumerate(datasets, start=1):
        for i, name in enumerate(names):
            rows = table[(table["dataset"] == dataset) & (table["dictionary"] == name)].sort_values("k")
            if rows.empty:
                continue
            color = palette[i % len(palette)]
            fig.add_trace(go.Scatter(x=rows["k"], y=rows["accuracy"], mode="lines+markers", name=name,
                                     legendgroup=name, showlegend=col == 1, line=dict(color=color)), row=1, col=col)
            fig.add_trace(go.Scatter(x=rows["k"], y=rows["raw_accuracy"], mode="lines", name=f"{name} (raw probe)",
                                     legendgroup=name, showlegend=False, hoverinfo="name+y",
                                     line=dict(color=color, dash="dash")), row=1, col=col)
    fig.update_xaxes(type="log", title_text="k (latents in the probe)")
    fig.update_yaxes(title_text="test accuracy", row=1, col=1)
    fig.update_layout(title=f"{title} (dashed: probe on the raw activations)", template="plotly_white", height=380)
    return fig


def tpp_figure(table: pd.DataFrame, title: str = "targeted probe perturbation") -> go.Figure:
    """TPP against the number of latents ablated per task (log x), one line per dictionary.
    `table`: `interp.store.read.tpp_results` (dictionary, n, tpp, intended_drop, unintended_drop)."""
    missing = {"dictionary", "n", "tpp", "intended_drop", "unintended_drop"} - set(table.columns)
    if missing:
        raise ValueError(f"table lacks columns {sorted(missing)}")
    fig = go.Figure()
    for name, rows in table.sort_values("n").groupby("dictionary", sort=False):
        fig.add_trace(go.Scatter(x=rows["n"], y=rows["tpp"], mode="lines+markers", name=name,
                                 customdata=rows[["intended_drop", "unintended_drop"]].to_numpy(),
                                 hovertemplate="n=%{x}: TPP %{y:.3f} (intended %{customdata[0]:.3f}, "
                                               "unintended %{customdata[1]:.3f})<extra>%{fullData.name}</extra>"))
    fig.update_xaxes(type="log", title_text="latents ablated per task")
    fig.update_layout(title=title, yaxis_title="TPP (intended - unintended accuracy drop)", template="plotly_white",
                      height=360)
    return fig


def meta_structure_figure(table: pd.DataFrame, title: str = "meta-structure of the decoder") -> go.Figure:
    """Per dictionary: variance of its unit decoder rows explained by its meta-dictionary, beside
    the same meta-dictionary size on random directions (grey), and the share of meta-latents
    used. `table`: `interp.store.read.meta_results` (dictionary, explained_variance,
    baseline_explained_variance, used_fraction; width and k in the hover)."""
    missing = {"dictionary", "explained_variance", "baseline_explained_variance", "used_fraction"} - set(table.columns)
    if missing:
        raise ValueError(f"table lacks columns {sorted(missing)}")
    fig = make_subplots(rows=1, cols=2, subplot_titles=("decoder variance explained (1 - FVU)",
                                                        "share of meta-latents used"))
    names = table["dictionary"].tolist()
    hover = [f"width {w}, k {k}" for w, k in zip(table.get("width", [None] * len(table)),
                                                  table.get("k", [None] * len(table)))]
    fig.add_trace(go.Bar(x=names, y=table["explained_variance"], name="decoder rows", marker_color="#1f77b4",
                         hovertext=hover), row=1, col=1)
    fig.add_trace(go.Bar(x=names, y=table["baseline_explained_variance"], name="random directions",
                         marker_color="#bbbbbb", hovertext=hover), row=1, col=1)
    fig.add_trace(go.Bar(x=names, y=table["used_fraction"], name="meta-latents used", marker_color="#2ca02c",
                         showlegend=False, hovertext=hover), row=1, col=2)
    fig.update_yaxes(range=[0, 1])
    fig.update_layout(title=title, barmode="group", template="plotly_white", height=380)
    return fig
