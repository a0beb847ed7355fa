"""Prompt view: a prompt's prediction, active units, lens grid, attributions and continuations.

Nothing runs while a prompt is typed: the model reads it when the form is submitted, and
the prompt (with the model) then goes into the URL, so a link reproduces the page. Every
view reads one cached forward pass per (model, prompt) (`state.prompt_pass`); a tab's view
runs only while its tab is open (the open tab is the URL's ``view``), and continuations only
on their button.
"""

import pandas as pd
import streamlit as st

from app import live, state
from interp.viz import attribution as attribution_viz
from interp.viz import lenses as lens_viz
from interp.viz import store_views

EXAMPLE = "The capital of France is"
VIEWS = ["Active units", "Lens", "Attributions", "Generate"]


def prompt_form(default_model: str) -> tuple[str, str]:
    """The form; on submit its values go into the URL. Returns the submitted (model, prompt).

    The inputs have keys, so a submit (which changes the URL they start from) keeps them as typed."""
    params = st.query_params
    with st.form("prompt-form"):
        c1, c2 = st.columns([1, 3])
        model_name = c1.text_input("Model", value=params.get("model", default_model),
                                   help="a model alias, local model directory or hub id", key="prompt-model")
        text = c2.text_input("Prompt", value=params.get("prompt", EXAMPLE), key="prompt-text")
        if st.form_submit_button("Run", type="primary"):
            st.query_params["model"], st.query_params["prompt"] = model_name.strip(), text
    return st.query_params.get("model", default_model), st.query_params.get("prompt", "")


def show_prediction(adapter, found) -> None:
    st.subheader("Next token")
    st.dataframe(live.prediction(adapter, found), hide_index=True,
                 column_config={"prob": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="%.3f")})


def active_units(adapter, model_name: str, prompt: str, found) -> None:
    from interp.features import FeatureId

    dicts = state.query("dictionaries")
    dicts = dicts[dicts["model"] == adapter.store_name] if len(dicts) else dicts
    basis = st.radio("Units", ["MLP neurons", *dicts.get("name", [])], horizontal=True)
    c1, c2 = st.columns([3, 1])
    k = c2.number_input("Top units per layer", 1, 20, value=3)
    include_bos = c2.checkbox("Include the BOS position", value=False,
                              help="BOS holds the attention sink's outlier activations, which top every ranking")
    result = None
    with state.guard():
        if basis == "MLP neurons":
            n = adapter.info.n_layers
            layers = c1.multiselect("Layers", list(range(n)), default=sorted({0, n // 2, n - 1}))
            if layers:
                with st.spinner(f"Ranking the MLP neurons of layers {', '.join(map(str, sorted(layers)))}..."):
                    result = live.active_neurons(adapter, found, sorted(layers), int(k), include_bos)
            owner = (adapter.store_name, "neuron", "")
        else:
            row = dicts[dicts["name"] == basis].iloc[0]
            with st.spinner(f"Encoding the prompt with dictionary {basis}..."):
                result = state.live_latents(model_name, basis, row["site"], prompt, int(k), include_bos)
            owner = (row["model"], row["kind"], basis)
    if result is None:
        return
    st.plotly_chart(store_views.feature_position_heatmap(result.tokens, result.labels, result.heat), width="stretch")
    model_of, kind, source = owner
    keys = [FeatureId(model_of, r["site"], kind, r["index"], source).key for r in result.table.to_dict("records")]
    st.dataframe(result.table.assign(open=[state.feature_link(key) for key in keys]), hide_index=True,
                 column_config={"open": st.column_config.LinkColumn("feature", display_text="open")})


def lens_view(adapter, model_name: str, prompt: str) -> None:
    from interp.methods.lenses.store import comparison_table

    record = state.query("tuned_lens", adapter.store_name)
    which = st.radio("Lens", ["Logit lens", "Tuned lens"] if record else ["Logit lens"], horizontal=True)
    if record is None:
        st.caption(f"No tuned lens is stored for {adapter.store_name}: "
                   f"`interp lens train --model {adapter.store_name}` trains one.")
    with st.spinner(f"Reading all {adapter.info.n_layers + 1} residual streams through the {which.lower()}..."), \
            state.guard():
        grid = state.lens_grid(model_name, prompt, tuned=which == "Tuned lens")
        st.plotly_chart(lens_viz.lens_heatmap(grid), width="stretch")
        st.caption("Cell text: the lens's top token; colour: its probability. Hover for the top tokens, the "
                   "probability of the model's final prediction and KL(final || lens) in nats.")
        st.dataframe(pd.DataFrame({"layer": grid.labels, "mean KL (nats, BOS left out)": grid.kl_mean}),
                     hide_index=True)
    if record is not None:
        with st.expander("Held-out KL of the stored tuned lens vs the logit lens"):
            st.plotly_chart(lens_viz.kl_by_layer(comparison_table(record)), width="stretch")
            st.caption(f"{record['comparison']['n_tokens']:,} held-out tokens; {state.run_caption(record['run_id'])}")


def attributions(adapter, model_name: str, prompt: str) -> None:
    stored = state.query("attributions", prompt=prompt)
    if stored.empty:
        st.info("No stored attributions for this exact prompt: " + state.fill_hint("attributions"))
    for (stored_model, target), part in stored.groupby(["model", "target"], sort=False):
        fig = attribution_viz.methods_heatmap(state.attribution_results(part),
                                              title=f"Stored attributions towards {target} ({stored_model})")
        st.plotly_chart(state.heatmap_rows(fig, len(part)), width="stretch")
    if adapter is not None and st.toggle("Compute ReAGent and baselines live (a few seconds)", key="live_attr"):
        with st.spinner("ReAGent probes and baselines..."), state.guard("Attribution failed: "):
            results = state.live("attributions", model_name, prompt)
            fig = attribution_viz.methods_heatmap(results, title=f"Live attributions towards {results[0].target}")
            st.plotly_chart(state.heatmap_rows(fig, len(results)), width="stretch")


def generate(adapter, model_name: str, prompt: str) -> None:
    from interp.models import ClampUnit

    with st.form("generate-form"):
        c1, c2, c3, c4 = st.columns(4)
        layer = int(c1.number_input("Layer", 0, adapter.info.n_layers - 1, value=min(3, adapter.info.n_layers - 1)))
        index = int(c2.number_input("Neuron", 0, adapter.info.d_mlp - 1, value=0))
        value = float(c3.number_input("Clamp value", value=10.0, step=1.0))
        n_new = int(c4.number_input("New tokens", 1, 40, value=12))
        asked = st.form_submit_button("Generate")
    key = (model_name, prompt, layer, index, value, n_new)
    if asked:
        clamp = ClampUnit(adapter.sites(layer).mlp_hidden, index, value)
        with st.spinner(f"Generating {n_new} tokens greedily, clean and with L{layer}/N{index} clamped..."), \
                state.guard():
            clean = state.live("continuation", model_name, prompt, n_new)
            clamped = state.live("continuation", model_name, prompt, n_new, clamp=clamp)
            state.remember("generation", (key, pd.DataFrame({
                "run": ["clean", f"clamped L{layer} N{index} = {value:g}"], "continuation": [clean, clamped]})))
    shown = state.recall("generation")
    if shown is not None and shown[0] == key:
        st.dataframe(shown[1], hide_index=True, width="stretch")
    else:
        st.caption("Press Generate for the clean and the clamped greedy continuation.")


with state.page():
    st.title("Prompt")
    model_name, prompt = prompt_form(state.default_model())
    known = state.model(model_name, load=False) if model_name.strip() else None  # a bad name is said at once
    if not prompt.strip():
        st.info("Type a prompt and press Run: the model reads it once and every view below uses that pass.")
        st.stop()

    adapter = state.model(model_name) if known else None
    found = None
    if adapter is not None:
        with st.spinner(f"Running {adapter.store_name} on the prompt (one forward pass for every view)..."), \
                state.guard():
            found = state.prompt_pass(model_name, prompt)
    if found is not None:
        show_prediction(adapter, found)
    tabs = st.tabs(VIEWS, key="view", bind="query-params")
    for tab, view in zip(tabs, VIEWS):
        with tab:
            if not tab.open:
                continue
            if view == "Attributions":
                attributions(adapter, model_name, prompt)
            elif found is None:
                st.info(f"{view} needs the model; it is not loaded (see the message above).")
            elif view == "Active units":
                active_units(adapter, model_name, prompt, found)
            elif view == "Lens":
                lens_view(adapter, model_name, prompt)
            else:
                generate(adapter, model_name, prompt)
