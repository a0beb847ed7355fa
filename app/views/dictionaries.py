"""Dictionaries (SAEs, transcoders): evaluation metrics and the L0 vs CE trade-off."""

import streamlit as st

from app import state
from interp.viz import store_views

st.title("Dictionaries")

dicts = state.query("dictionaries")
if dicts.empty:
    st.info(state.fill_hint("dictionaries"))
    st.stop()

metrics = [c for c in dicts.columns if c.startswith("metric.") and dicts[c].dtype.kind in "fiu"]
st.dataframe(dicts.drop(columns=["config"], errors="ignore"), hide_index=True, width="stretch")
if len(metrics) >= 2:
    def pick(words, fallback):
        return next((i for i, m in enumerate(metrics) for w in words if w in m.lower()), fallback)

    c1, c2 = st.columns(2)
    x = c1.selectbox("x", metrics, index=pick(["l0"], 0))
    y = c2.selectbox("y", metrics, index=pick(["ce_loss_recovered", "ce_recovered", "delta_ce", "ce"], 1))
    st.plotly_chart(store_views.metric_scatter(dicts, x, y, color="kind", hover="name",
                                               title=f"{y.removeprefix('metric.')} vs {x.removeprefix('metric.')}"),
                    width="stretch")
else:
    st.info("The dictionaries carry fewer than two numeric metrics; evaluate them to compare L0 with CE.")
state.show_stored_figures("dictionar")
state.show_stored_figures("transcoder")
