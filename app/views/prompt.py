"""Prompt view: live prediction, token attributions, active neurons and clamped continuations."""

import pandas as pd
import streamlit as st

from app import state
from interp.viz import attribution as attribution_viz
from interp.viz import store_views

with state.page():
    st.title("Prompt")

    default = state.default_model()
    c1, c2 = st.columns([1, 3])
    model_name = c1.text_input("Model", value=st.query_params.get("model", default),
                               help="a model alias, local model directory or hub id")
    prompt = c2.text_input("Prompt", value=st.query_params.get("prompt", "The capital of France is"))
    if not prompt.strip():
        st.info("Type a prompt to see the model's prediction.")
        st.stop()

    adapter = state.model(model_name) if model_name.strip() else None
    pred_tab, attr_tab, active_tab, clamp_tab = st.tabs(["Prediction", "Attributions", "Active neurons", "Clamp"])

    with pred_tab:
        if adapter is None:
            st.info("Prediction needs the model; it is not loaded (see the warning above).")
        else:
            with state.guard():
                st.dataframe(state.live("prediction", model_name, prompt), hide_index=True,
                             column_config={"prob": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0,
                                                                                    format="%.3f")})

    with attr_tab:
        stored = state.query("attributions", prompt=prompt)
        if stored.empty:
            st.info("No stored attributions for this exact prompt: " + state.fill_hint("attributions"))
        for (stored_model, target), part in stored.groupby(["model", "target"], sort=False):
            fig = attribution_viz.methods_heatmap(state.attribution_results(part),
                                                  title=f"Stored attributions towards {target} ({stored_model})")
            st.plotly_chart(state.heatmap_rows(fig, len(part)), width="stretch")
        if adapter is not None:
            if st.toggle("Compute ReAGent and baselines live (a few seconds)", key="live_attr"):
                with st.spinner("ReAGent probes and baselines..."), state.guard("Attribution failed: "):
                    results = state.live("attributions", model_name, prompt)
                    fig = attribution_viz.methods_heatmap(results, title=f"Live attributions towards {results[0].target}")
                    st.plotly_chart(state.heatmap_rows(fig, len(results)), width="stretch")

    with active_tab:
        if adapter is None:
            st.info("Active features need the model.")
        else:
            from interp.features import FeatureId

            dicts = state.query("dictionaries")
            dicts = dicts[dicts["model"] == model_name] if len(dicts) else dicts
            basis = st.radio("Features", ["MLP neurons", *dicts.get("name", [])], horizontal=True)
            found = None
            with state.guard():
                if basis == "MLP neurons":
                    n_layers = adapter.info.n_layers
                    layers = st.multiselect("Layers", list(range(n_layers)), default=[0, n_layers // 2, n_layers - 1])
                    if layers:
                        found = state.live("active_neurons", model_name, prompt, sorted(layers), k=3)
                    owner = (model_name, "neuron", "")
                else:
                    row = dicts[dicts["name"] == basis].iloc[0]
                    found = state.live_latents(model_name, basis, row["site"], prompt, k=3)
                    owner = (row["model"], row["kind"], basis)
            if found is not None:
                st.plotly_chart(store_views.feature_position_heatmap(found.tokens, found.labels, found.heat),
                                width="stretch")
                model_of, kind, source = owner
                keys = [FeatureId(model_of, r["site"], kind, r["index"], source).key for r in found.table.to_dict("records")]
                st.dataframe(found.table.assign(open=[state.feature_link(k) for k in keys]), hide_index=True,
                             column_config={"open": st.column_config.LinkColumn("feature", display_text="open")})

    with clamp_tab:
        if adapter is None:
            st.info("Clamping needs the model.")
        else:
            from interp.models import ClampUnit

            c1, c2, c3, c4 = st.columns(4)
            layer = c1.number_input("Layer", 0, adapter.info.n_layers - 1, value=min(3, adapter.info.n_layers - 1))
            index = c2.number_input("Neuron", 0, adapter.info.d_mlp - 1, value=0)
            value = c3.number_input("Clamp value", value=10.0, step=1.0)
            n_new = c4.number_input("New tokens", 1, 40, value=12)
            clamp = ClampUnit(adapter.sites(int(layer)).mlp_hidden, int(index), float(value))
            with st.spinner("Generating..."), state.guard():
                clean = state.live("continuation", model_name, prompt, int(n_new))
                clamped = state.live("continuation", model_name, prompt, int(n_new), clamp=clamp)
                st.dataframe(pd.DataFrame({"run": ["clean", f"clamped L{layer} N{index} = {value:g}"],
                                           "continuation": [clean, clamped]}), hide_index=True, width="stretch")
