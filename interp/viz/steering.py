"""Plotly figures and tables of a steering run (`interp.methods.steering.workbench.SteeringRun`).

`concept_probability_figure`: per generated token, the probability mass the model puts on
each direction's concept tokens, in the default run (dotted) and each steered run (solid for
live attention, dashed for frozen), one colour per direction. `comparison_frame`: the
continuations side by side with whether each samples a concept token; `side_effect_frame`:
the KL side effect per attention mode.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

_DASH = {"default": "dot", "live": "solid", "frozen": "dash"}
_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def _runs(run) -> list[tuple[str, str, object]]:
    """(name, dash key, continuation) of the default and every steered continuation."""
    return [("default", "default", run.default)] + [(f"steered ({mode} attention)", mode, c)
                                                    for mode, c in run.steered.items()]


def concept_probability_figure(run, title: str | None = None) -> go.Figure:
    """p(concept tokens) at each generated token, default vs steered (see the module docstring)."""
    fig = go.Figure()
    for k, direction in enumerate(run.directions):
        colour = _COLOURS[k % len(_COLOURS)]
        shown = ", ".join(repr(s) for s in direction.concept.strings[:3]) or "no concept tokens"
        for name, dash, cont in _runs(run):
            probs = cont.concept_probs[k] if len(cont.concept_probs) > k else []
            steps = list(range(1, len(probs) + 1))
            hover = [repr(t) for t in cont.tokens[:len(probs)]] or None
            fig.add_trace(go.Scatter(
                x=steps, y=list(probs), mode="lines+markers", name=f"{direction.label} - {name}",
                line=dict(color=colour, dash=_DASH.get(dash, "solid")), text=hover,
                hovertemplate="token %{x}: %{text}<br>p = %{y:.3g}<extra>" + f"{name}</extra>",
                legendgroup=direction.label, legendgrouptitle_text=f"{direction.label} ({shown})"))
    fig.update_layout(title=title or "Probability of each direction's concept tokens per generated token",
                      xaxis_title="generated token", yaxis_title="p(concept tokens)", yaxis_rangemode="tozero",
                      legend=dict(groupclick="toggleitem"))
    return fig


def comparison_frame(run) -> pd.DataFrame:
    """One row per continuation: run, attention, text, tokens, and whether it samples a concept token."""
    ids = run.concept_ids
    rows = [{"run": "default" if dash == "default" else "steered", "attention": "-" if dash == "default" else dash,
             "continuation": cont.text, "tokens": len(cont.token_ids), "concept token sampled": cont.hits(ids)}
            for _, dash, cont in _runs(run)]
    return pd.DataFrame(rows)


def side_effect_frame(run) -> pd.DataFrame:
    """One row per (attention mode, neutral prompt) plus the mean: KL(clean || steered) in nats."""
    rows = []
    for mode, effect in run.side_effects.items():
        rows += [{"attention": mode, "prompt": p, "kl": k} for p, k in zip(effect.prompts, effect.per_prompt)]
        rows.append({"attention": mode, "prompt": "(mean)", "kl": effect.mean})
    return pd.DataFrame(rows, columns=["attention", "prompt", "kl"])
