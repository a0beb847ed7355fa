"""Token attribution: faithfulness of ReAGent and the baselines, and each prompt's heatmap."""

import streamlit as st

from app import state
from interp.viz import attribution as attribution_viz

st.title("Token attribution")

attrs = state.query("attributions")
if attrs.empty:
    st.info(state.fill_hint("attributions"))
    st.stop()

st.subheader("Faithfulness")
summary = state.query("faithfulness_summary")
if summary.empty:
    st.info("The stored attributions carry no faithfulness scores; `interp attribute` computes them.")
else:
    st.plotly_chart(attribution_viz.faithfulness_figure(summary), width="stretch")
    st.dataframe(summary.round(4), hide_index=True, width="stretch")

st.subheader("Per prompt")
prompts = list(dict.fromkeys(attrs["prompt"]))
prompt = st.selectbox("Prompt", prompts)
part = attrs[attrs["prompt"] == prompt]
for (model, target), rows in part.groupby(["model", "target"], sort=False):
    fig = attribution_viz.methods_heatmap(state.attribution_results(rows), title=f"towards {target} ({model})")
    st.plotly_chart(state.heatmap_rows(fig, len(rows)), width="stretch")
