"""Token attribution: ReAGent and baselines per prompt, and their faithfulness."""

import pandas as pd
import streamlit as st

from app import state
from interp.viz import store_views

st.title("Token attribution")

attrs = state.query("attributions")
faith = state.query("results", prefix="faithfulness")
if attrs.empty and faith.empty:
    st.info(state.fill_hint("attributions"))
    st.stop()

st.subheader("Faithfulness")
extra = pd.json_normalize([e if isinstance(e, dict) else {} for e in attrs["extra"]]) if len(attrs) else pd.DataFrame()
metric_cols = [c for c in extra.columns if c.lower().startswith(("soft", "comp", "suff")) and extra[c].dtype.kind in "fiu"]
if metric_cols:
    table = pd.concat([attrs[["method"]].reset_index(drop=True), extra[metric_cols]], axis=1)
    st.dataframe(table.groupby("method").agg(["mean", "count"]).round(4), width="stretch")
elif faith.empty:
    st.info("No faithfulness metrics stored yet (they come with `interp attribute`).")
for name, part in faith.groupby("name", sort=True) if len(faith) else []:
    rows = [p if isinstance(p, dict) else {"value": p} for p in part["payload"]]
    st.caption(name)
    st.dataframe(pd.json_normalize(rows).assign(key=list(part["key"])), hide_index=True, width="stretch")

if not attrs.empty:
    st.subheader("Per prompt")
    prompts = list(dict.fromkeys(attrs["prompt"]))
    prompt = st.selectbox("Prompt", prompts)
    part = attrs[attrs["prompt"] == prompt]
    for target, rows in part.groupby("target", sort=False):
        tokens = list(rows.iloc[0]["tokens"])
        scores = {r.method: list(r.scores) for r in rows.itertuples() if len(r.scores) == len(tokens)}
        st.plotly_chart(store_views.attribution_heatmap(tokens, scores, title=f"towards {target!r}"), width="stretch")
state.show_stored_figures("attribution")
state.show_stored_figures("faithfulness")
