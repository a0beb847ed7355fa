"""Neuron map: per-layer specialisation of the decoded MLP neurons, most specialised neurons."""

import streamlit as st

from app import state
from app.queries import SearchQuery
from interp.viz import store_views

st.title("Neuron map")

facets = state.query("facets")
if "neuron" not in facets["kind"]:
    st.info(state.fill_hint("neurons"))
    st.stop()
model = st.selectbox("Model", facets["model"])
stats = state.query("layer_stats", model)
stats = stats[stats["kind"] == "neuron"]
stats = stats.assign(layer=[store_views._layer_of(s) for s in stats["site"]])
st.plotly_chart(store_views.layer_summary(stats.dropna(subset=["layer"]), "mean_specialisation",
                                          "Mean specialisation per layer"), width="stretch")
sample = state.query("feature_sample", model, "neuron", n=5000)
st.plotly_chart(store_views.specialisation_by_layer(sample, title="Specialisation per layer (sample of 5,000 neurons)"),
                width="stretch")
st.dataframe(stats.drop(columns=["layer"]), hide_index=True, width="stretch")

st.subheader("Most specialised neurons")
top, total = state.query("search", SearchQuery(models=(model,), kinds=("neuron",), order="specialisation", limit=25))
top.insert(0, "open", [state.feature_link(k) for k in top["key"]])
st.dataframe(top.drop(columns=["key"]), hide_index=True, width="stretch",
             column_config={"open": st.column_config.LinkColumn("feature", display_text="open")})
state.show_stored_figures("neuron")
