"""The feature page of an ObsProp vector: its origin, its decoded tokens, its corpus score
distribution, its top-scoring contexts and its nearest features.

An ObsProp vector is a direction, not a unit of the model: it has no activation of its own,
only a score ``x . y`` of each token's activation ``x`` at its site. The scores, contexts and
stored write direction are written by ``interp examples`` (it scores every stored vector), the
decoded tokens by ``interp obsprop`` when it stores the vector. Every card says what the store
holds for it and which run wrote it.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import feature_cards, state
from interp.features import FeatureId
from interp.viz import obsprop as obsprop_viz


def _examples_command(fid: FeatureId) -> str:
    return f"`interp examples --model {fid.model}` (it scores every stored ObsProp vector of the model)"


def _provenance(fid: FeatureId) -> tuple[dict, str | None]:
    """The ``obsprop_ranking`` provenance of this vector's source and the run that stored it."""
    base = fid.source.split("@", 1)[0]
    rankings = state.query("results", name="obsprop_ranking")
    found = rankings[rankings["key"] == f"{fid.model}/{base}"] if len(rankings) else rankings
    if found.empty:
        return {}, None
    return found.iloc[0]["payload"].get("provenance") or {}, found.iloc[0]["run_id"]


def _origin_card(fid: FeatureId, row: dict, hist: dict | None) -> None:
    metrics = row.get("metrics") or {}
    provenance, ranking_run = _provenance(fid)
    with st.container(border=True):
        st.markdown(f"**ObsProp vector** of observable `{metrics.get('observable', '?')}` through path "
                    f"`{metrics.get('path', '?')}`, read at `{fid.site}`")
        cols = st.columns(4)
        values = [("norm", metrics.get("norm"), "{:.3g}"),
                  ("max score", hist["max_act"] if hist else None, "{:.3g}"),
                  ("mean score", hist["mean_act"] if hist else None, "{:.3g}"),
                  ("share > 0", hist["density"] if hist else None, "{:.1%}")]
        for col, (name, value, fmt) in zip(cols, values):
            col.metric(name, "-" if value is None or pd.isna(value) else fmt.format(value))
        made = (f"MLPs {provenance.get('mlp_method')}, positions {provenance.get('positions')}, "
                f"{provenance.get('n_prompts')} reference prompts, config {provenance.get('config_hash')}"
                if provenance else f"MLPs {metrics.get('mlp_method', '?')}")
        st.caption(f"Vector stored in bundle `{metrics.get('bundle', '?')}` {state.run_caption(row.get('run_id'))}; "
                   f"{made}. The component ranking of its observable is on the [ObsProp page](obsprop)"
                   + (f" ({state.run_caption(ranking_run)})." if ranking_run else "."))


def _tokens_card(fid: FeatureId) -> None:
    toks = state.query("feature_tokens", fid)
    with st.container(border=True):
        st.markdown("**Decoded tokens**")
        if toks.empty:
            st.info("No decoded tokens stored for this vector: `interp obsprop` decodes the vectors it stores "
                    "(vectors stored before it did have none); run it again for this observable.")
            return
        k = int(toks["rank"].max()) + 1
        run = toks["run_id"].iloc[0] if "run_id" in toks else None
        st.caption(f"The vector's residual-stream direction through the final norm and the unembedding; the "
                   f"store holds its top and bottom {k} tokens ({state.run_caption(run)}).")
        feature_cards.token_tables(toks)


def _scores_card(fid: FeatureId, hist: dict | None) -> None:
    with st.container(border=True):
        st.markdown("**Score distribution**")
        if hist is None:
            st.info(f"No corpus scores stored for this vector: run {_examples_command(fid)}.")
            return
        settings = hist.get("settings") or {}
        st.plotly_chart(obsprop_viz.score_histogram_figure(hist["edges"], hist["counts"], hist["n_tokens"],
                                                           mean=hist["mean_act"]), width="stretch")
        st.caption(f"Scores x . y of the activations at `{fid.site}` over {hist['n_tokens']:,} held-out tokens "
                   f"of corpus {settings.get('corpus', '?')} (windows of {settings.get('ctx_len', '?')} tokens, "
                   f"their first {settings.get('skip_positions', '?')} left out); min {hist['min_act']:.3g}, "
                   f"mean {hist['mean_act']:.3g}, max {hist['max_act']:.3g}; {hist['density']:.1%} of the tokens "
                   f"score > 0.")


def _contexts_card(fid: FeatureId, hist: dict | None) -> None:
    examples = state.query("feature_examples", fid)
    with st.container(border=True):
        st.markdown("**Top-scoring contexts**")
        if examples.empty:
            st.info(f"No scored contexts stored for this vector: run {_examples_command(fid)}.")
            return
        n_top = int((examples["group"] == "top").sum())
        over = f" of the {hist['n_tokens']:,} scored tokens" if hist else ""
        st.caption(f"The store holds the {n_top} windows with the highest score{over} (and samples of each "
                   f"score range); the scored token is underlined, every token shaded by its score.")
        feature_cards.contexts(examples, value="score", key="obsprop-examples")


def _nearest_card(fid: FeatureId) -> None:
    with st.container(border=True):
        st.markdown("**Nearest features**")
        by_direction, by_tokens = st.tabs(["By direction (cosine)", "By shared decoded tokens"])
        with by_direction:
            near = state.query("nearest_by_direction", fid)
            if near.empty:
                st.info(f"No stored direction for this vector: run {_examples_command(fid)}; it stores the "
                        f"vector's residual-stream direction beside each neuron's W_out row and each latent's "
                        f"decoder row.")
            else:
                feature_cards.feature_table(near, "Features of this model whose direction in the residual stream "
                                                  "(neuron W_out row, latent decoder row, another ObsProp "
                                                  "vector) has the largest |cosine| with this vector's")
        with by_tokens:
            near = state.query("neighbours", fid)
            if near.empty:
                st.info("No other feature of this model shares a top decoded token with this vector "
                        "(or the vector has no decoded tokens stored).")
            else:
                feature_cards.feature_table(near, "Features whose top-20 decoded tokens overlap most with "
                                                  "this vector's")


def show(fid: FeatureId, row: dict) -> None:
    """Every card of an ObsProp vector's page."""
    hist = state.query("feature_histogram", fid)
    _origin_card(fid, row, hist)
    _tokens_card(fid)
    _scores_card(fid, hist)
    _contexts_card(fid, hist)
    _nearest_card(fid)
