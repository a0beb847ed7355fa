"""Neuron map: per-layer specialisation of the decoded MLP neurons, most specialised neurons."""

import streamlit as st

from app import state
from interp.store.read import SearchQuery
from interp.viz import store_views

with state.page():
    st.title("Neuron map")

    facets = state.query("facets")
    if "neuron" not in facets["kind"]:
        st.info(state.fill_hint("neurons"))
        st.stop()
    model = st.selectbox("Model", facets["model"])
    stats = state.query("layer_stats", model)
    stats = stats[stats["kind"] == "neuron"]  # ordered by layer as a number (`read.layer_stats`)
    st.plotly_chart(store_views.layer_summary(stats.dropna(subset=["layer"]), "mean_logit_z",
                                              "Mean specialisation (logit z) per layer"), width="stretch")
    sample = state.query("feature_sample", model, "neuron", n=5000)
    with state.guard():
        from interp.viz.neurons import specialisation_overview

        st.plotly_chart(specialisation_overview(sample, title="Specialisation per layer (sample of up to 5,000 neurons)"),
                        width="stretch")
    st.dataframe(stats, hide_index=True, width="stretch")

    st.subheader("Most specialised neurons")
    top, total = state.query("search", SearchQuery(models=(model,), kinds=("neuron",), limit=25))
    top.insert(0, "open", [state.feature_link(k) for k in top["key"]])
    st.dataframe(top.drop(columns=["key"]), hide_index=True, width="stretch",
                 column_config={"open": st.column_config.LinkColumn("feature", display_text="open")})
    reports = state.query("results", name="clamp_report")
    if not reports.empty:
        import pandas as pd

        st.subheader("Clamping checks")
        for r in reports.itertuples():
            p = r.payload
            st.markdown(f"**{r.key}**: {p.get('fraction_beats_mean', float('nan')):.0%} of {p.get('n')} neurons raise "
                        f"their token more than the mean random control, {p.get('fraction_beats_all', float('nan')):.0%} "
                        "more than every control")
            st.dataframe(pd.DataFrame(p.get("neurons", [])), hide_index=True, width="stretch")
    else:
        st.info("No clamping report yet: `interp clamp-report --model "
                f"{model}` checks the most specialised neurons against random controls.")
