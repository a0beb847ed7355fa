"""One feature: decoded tokens, top contexts, activations, complexity, clamping, neighbours."""

import numpy as np
import pandas as pd
import streamlit as st

from app import feature_cards, obsprop_feature, state
from interp.features import FeatureId
from interp.sites import layer_of
from interp.viz import store_views

EXAMPLE_KINDS = ("neuron", "sae", "transcoder")
"""Kinds the corpus-examples job covers (MLP neurons and dictionary latents)."""


def _examples_hint(fid: FeatureId) -> str:
    """What fills the examples / histogram / direction views for this feature's kind."""
    kind = fid.kind.value
    if kind not in EXAMPLE_KINDS:
        return (f"corpus examples are collected for MLP neurons and dictionary latents; this {kind} feature "
                f"has none (its page shows what its own method stores).")
    return (f"run `interp examples --model {fid.model}` (every neuron and stored dictionary latent of the "
            f"model; `make run` does the neurons) to fill the store at `{state.store_root()}`.")


def _tokens_hint(fid: FeatureId) -> str:
    """Which command decodes this feature's kind."""
    what = {"neuron": "neurons", "sae": "dictionaries", "transcoder": "dictionaries", "obsprop": "obsprop"}
    return ("No decoded tokens stored for this feature. "
            + state.fill_hint(what.get(fid.kind.value, "features")))


def _steer_box(fid: FeatureId) -> None:
    """The suggested steering strength and a link opening the Steering page on this feature."""
    with st.container(border=True):
        suggestion = state.query("suggested_strength", fid, "add")
        if suggestion.strength is None:
            st.markdown(f"**Steer** - no suggested strength: {suggestion.rule}; pick one on the Steering page.")
        else:
            st.markdown(f"**Steer** - suggested strength **{suggestion.strength:g}** ({suggestion.rule})")
        st.markdown(f"[Steer this feature]({state.steering_link(fid.key, suggestion.strength)})")
def _labels_panel(fid: FeatureId) -> None:
    """The label shown, its two automatic sources and the edit box (an edit wins when read)."""
    labels = state.query("feature_labels", fid)
    auto, user = labels["auto"] or {}, labels["user"] or {}
    st.markdown(f"**Label:** {labels['label'] or '-'}")
    out_col, in_col, user_col = st.columns(3)
    out_col.caption("Output label (top decoded tokens: what it promotes)")
    out_col.markdown(auto.get("output_label") or "-")
    in_col.caption("Input label (tokens it fires on most in its top examples)")
    in_col.markdown(auto.get("input_label") or "-")
    user_col.caption("Edited label")
    when = f"{pd.Timestamp(user['created_at']):%Y-%m-%d %H:%M} UTC" if user.get("created_at") is not None else "?"
    user_col.markdown(f"{user['label']} (by {user.get('author') or '?'}, {when})" if user.get("label") else "-")
    if not auto:
        st.caption(f"No automatic label yet: run `interp label --model {fid.model}` to label every feature.")
    with st.form("label-edit", clear_on_submit=False):
        c1, c2 = st.columns([3, 1])
        text = c1.text_input("Your label", value=user.get("label") or "", key="label-text")
        author = c2.text_input("Your name (optional; default $USER)", key="label-author")
        if st.form_submit_button("Save label"):
            from interp.methods.labels.store import save_edit

            with state.guard("The label was not saved: "):
                state.write(save_edit, fid, text, author=author)
                st.rerun()


def _list_panel(fid: FeatureId) -> None:
    """Add this feature to a named list (new or existing) with a note."""
    from interp.store.lists import add_to_list

    names = list(state.query("list_names")["list"])
    with st.form("list-add", clear_on_submit=True):
        c1, c2, c3 = st.columns([2, 2, 3])
        picked = c1.selectbox("List", ["(new list)", *names], key="list-pick")
        new = c2.text_input("New list name", key="list-new")
        note = c3.text_input("Note", key="list-note")
        if st.form_submit_button("Add to list"):
            name = new.strip() or ("" if picked == "(new list)" else picked)
            with state.guard("Not added: "):
                state.write(add_to_list, name, fid, note=note)
                st.success(f"Added to list [{name}]({state.list_link(name)}).")


with state.page():
    st.title("Feature")

    key = st.text_input("Feature key (model/source/site/kind/index)", value=st.query_params.get("feature", ""),
                        placeholder="smollm2-135m//blocks.3.mlp.hook_post/neuron/42")
    if not key.strip():
        st.info("Open a feature from the Search page, or paste its key above.")
        st.stop()

    fid = None
    with state.guard("Cannot open this feature: "):
        fid = state.query("parse_key", key)
    if fid is None:
        st.stop()
    if st.query_params.get("feature") != fid.key:
        st.query_params["feature"] = fid.key

    row = state.query("feature_row", fid)
    st.subheader(str(fid))
    _labels_panel(fid)
    with st.expander("Add to a list"):
        _list_panel(fid)
    if fid.kind.value == "obsprop":  # a vector, not a unit: its own cards (`app.obsprop_feature`)
        obsprop_feature.show(fid, row)
        _steer_box(fid)
        st.stop()
    hist = state.query("feature_histogram", fid)
    cols = st.columns(4)
    for col, name, fmt in zip(cols, ("specialisation", "complexity", "max_act", "density"),
                              ("{:.3f}", "{:.3f}", "{:.3g}", "{:.2e}")):
        value = row.get(name)
        if (value is None or pd.isna(value)) and hist is not None and name in hist:
            value = hist[name]  # the corpus statistics stored with the histogram
        col.metric(name, "-" if value is None or pd.isna(value) else fmt.format(value))
    if row.get("metrics"):
        with st.expander("All stored metrics"):
            st.json(row["metrics"])
    _steer_box(fid)

    found = state.query("feature_results", fid)
    tokens_tab, contexts_tab, acts_tab, cx_tab, clamp_tab, near_tab, circuit_tab = st.tabs(
        ["Decoded tokens", "Top contexts", "Activations", "Complexity", "Clamping", "Nearest features", "Circuits"])

    with tokens_tab:
        toks = state.query("feature_tokens", fid)
        if toks.empty:
            st.info(_tokens_hint(fid))
        feature_cards.token_tables(toks)

    examples = state.query("feature_examples", fid)
    with contexts_tab:
        if examples.empty:
            st.info("No stored activation examples for this feature: " + _examples_hint(fid))
        else:
            feature_cards.contexts(examples)

    with acts_tab:
        if hist is not None:
            over = "positive activations" if fid.source else "activations"
            st.plotly_chart(store_views.binned_histogram(
                hist["edges"], hist["counts"], density=hist["density"],
                title=f"Corpus {over} over {hist['n_tokens']:,} tokens"), width="stretch")
            st.caption(f"min {hist['min_act']:.3g} · mean {hist['mean_act']:.3g} · max {hist['max_act']:.3g} · "
                       f"density {hist['density']:.2e} (share of the {hist['n_tokens']:,} corpus tokens with "
                       f"activation > 0; corpus {hist['settings'].get('corpus', '?')})")
        elif not examples.empty:
            acts = np.concatenate([np.asarray(a, float) for a in examples["acts"]])
            st.plotly_chart(store_views.activation_histogram(
                acts, title="Activations over the stored example windows (every token)"), width="stretch")
            st.caption("Only the tokens of the stored example windows, not the corpus: " + _examples_hint(fid))
        else:
            st.info("No corpus activation histogram for this feature: " + _examples_hint(fid))

    with cx_tab:
        cx = state.query("feature_complexity", fid)
        if cx.empty or "curve" not in cx:
            st.info("No complexity curve for this feature: " + state.fill_hint("complexity"))
        else:
            from interp.viz.complexity import curve_figure

            st.plotly_chart(curve_figure(cx, title="Decodability of this feature per layer"), width="stretch")
            st.dataframe(cx.drop(columns=["curve"], errors="ignore"), hide_index=True)

    with clamp_tab:
        sweeps = state.query("clamp_sweeps", fid)
        if not sweeps:
            st.info("No clamping dose-response stored for this feature: " + state.fill_hint("clamp")
                    + (f" (e.g. `interp clamp --model {fid.model} --neuron {layer_of(fid.site)}:{fid.index} "
                       f"--value 0 --value 5 --value 10 --prompt \"...\"`)"
                       if fid.kind.value == "neuron" else " (clamp sweeps are run for neurons)"))
        for i, sweep in enumerate(sweeps):
            from interp.methods.neurons.store import ClampRecord
            from interp.viz.neurons import dose_response_figure

            with state.guard("A stored clamp sweep is unreadable: "):
                record = ClampRecord.from_payload(sweep)
                result = record.result
                st.plotly_chart(dose_response_figure(result, record.target), width="stretch", key=f"clamp-{i}")
                if result.generation:
                    st.markdown(f"**clamped generation:** {result.generation!r}  \n"
                                f"**unclamped:** {result.baseline_generation!r}")

    with near_tab:
        by_direction, by_tokens = st.tabs(["By direction (cosine)", "By shared decoded tokens"])
        with by_direction:
            near = state.query("nearest_by_direction", fid)
            if near.empty:
                st.info("No stored write direction for this feature: " + _examples_hint(fid)
                        + " (the job stores each neuron's W_out row and each latent's decoder row).")
            else:
                feature_cards.feature_table(near, "Features of this model whose write direction (neuron W_out "
                                                  "row, latent decoder row) has the largest |cosine| with this "
                                                  "feature's")
        with by_tokens:
            near = state.query("neighbours", fid)
            if near.empty:
                st.info("No other feature of this model shares a top decoded token with this one.")
            else:
                feature_cards.feature_table(near, "Features whose top-20 decoded tokens overlap most with this "
                                                  "feature's")

    with circuit_tab:
        graphs = state.query("circuits_with", fid)
        if graphs.empty:
            why = ("" if fid.source else " Circuit graphs are built over dictionary latents, so a "
                   f"{fid.kind.value} appears in them only through the latents that read it.")
            st.info(f"This feature appears in no stored attribution graph yet (graphs are written by "
                    f"`{state.FILL_COMMANDS['circuits']}`).{why}")
        else:
            st.caption("Circuits that hold this latent as a node; open them on the Circuits page")
            st.dataframe(graphs, hide_index=True, width="stretch")
