"""Token attribution: faithfulness of ReAGent and the baselines, and each prompt's heatmap."""

import pandas as pd
import streamlit as st

from app import state
from interp.viz import attribution as attribution_viz

with state.page():
    st.title("Token attribution")

    attrs = state.query("attributions")
    benchmark = state.query("results", name="reagent_faithfulness")
    if attrs.empty and benchmark.empty:
        st.info(state.fill_hint("attributions"))
        st.stop()

    st.subheader("Faithfulness")
    summary = state.query("faithfulness_summary")
    if not summary.empty:
        st.caption("Over the prompts attributed by `interp attribute` (95% bootstrap intervals)")
        st.plotly_chart(attribution_viz.faithfulness_figure(summary), width="stretch")
        st.dataframe(summary.round(4), hide_index=True, width="stretch")
    order = {"table": 0, "paired": 1}  # each benchmark's summary, then its paired comparison
    for row in sorted(benchmark.itertuples(), key=lambda r: (r.key.rsplit(":", 1)[0], order.get(r.key.split(":")[-1], 2))):
        if row.key.split(":")[-1] == "table" and isinstance(row.payload, list) and row.payload:
            table = pd.DataFrame(row.payload)
            st.caption(f"ReAGent benchmark `{row.key}` (benchmarks/bench_reagent.py)")
            with state.guard("The stored benchmark table is incomplete: "):
                st.plotly_chart(attribution_viz.faithfulness_figure(table, title="Faithfulness (benchmark)"),
                                width="stretch", key=f"bench-{row.key}")
            st.dataframe(table.round(4), hide_index=True, width="stretch")
        elif row.key.split(":")[-1] == "paired" and isinstance(row.payload, list) and row.payload:
            st.caption(f"`{row.key}`: ReAGent minus each method, paired per prompt (95% bootstrap interval; "
                       "wins = share of prompts on which ReAGent scores higher)")
            st.dataframe(pd.DataFrame(row.payload).round(4), hide_index=True, width="stretch")
    if summary.empty and benchmark.empty:
        st.info("The stored attributions carry no faithfulness scores; `interp attribute` computes them.")

    if not attrs.empty:
        st.subheader("Per prompt")
        prompts = list(dict.fromkeys(attrs["prompt"]))
        prompt = st.selectbox("Prompt", prompts)
        part = attrs[attrs["prompt"] == prompt]
        for (model, target), rows in part.groupby(["model", "target"], sort=False):
            fig = attribution_viz.methods_heatmap(state.attribution_results(rows), title=f"towards {target} ({model})")
            st.plotly_chart(state.heatmap_rows(fig, len(rows)), width="stretch")
