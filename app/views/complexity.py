"""Feature complexity: distribution of K, curves, and complexity vs importance."""

import streamlit as st

from app import state
from interp.viz import complexity as cx_viz

with state.page():
    st.title("Feature complexity")

    frame = state.query("complexity_features")
    if frame.empty:
        st.info(state.fill_hint("complexity"))
        st.stop()

    summary = state.query("results", name="complexity")

    c1, c2 = st.columns(2)
    c1.plotly_chart(cx_viz.distribution_figure(frame), width="stretch")
    if "importance" in frame and frame["importance"].notna().any():
        c2.plotly_chart(cx_viz.importance_figure(frame), width="stretch")
    if "curve" in frame:
        st.plotly_chart(cx_viz.curve_figure(frame), width="stretch")
    if not summary.empty:
        with st.expander("Run summaries"):
            for row in summary.itertuples():
                st.json(row.payload, expanded=False)
    with st.expander("Figures stored with the runs"):
        state.show_stored_figures("complexity")
