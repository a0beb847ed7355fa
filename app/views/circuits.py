"""Circuits: attribution graphs between features, when a job has stored them."""

import pandas as pd
import streamlit as st

from app import state

st.title("Circuits")

graphs = state.query("results", prefix="circuit")
if graphs.empty:
    st.info("No attribution graphs are stored yet. Transcoder circuits (weights-based paths between "
            f"latents) are written by `{state.FILL_COMMANDS['circuits']}`; this page shows them once it has run.")
    st.stop()
key = st.selectbox("Graph", list(graphs["key"]))
payload = graphs[graphs["key"] == key].iloc[0]["payload"]
edges = pd.DataFrame(payload.get("edges", [])) if isinstance(payload, dict) else pd.DataFrame()
if edges.empty:
    st.json(payload, expanded=False)
else:
    st.dataframe(edges, hide_index=True, width="stretch")
state.show_stored_figures("circuit")
