"""ObsProp: feature vectors for observables, their ranking and data efficiency."""

import pandas as pd
import streamlit as st

from app import state
from app.queries import SearchQuery

st.title("Observable propagation")

res = state.query("results", prefix="obsprop")
feats, _ = state.query("search", SearchQuery(kinds=("obsprop",), order="max_act", limit=500))
if res.empty and feats.empty:
    st.info(state.fill_hint("obsprop"))
    st.stop()
if not feats.empty:
    st.subheader("ObsProp feature vectors")
    feats.insert(0, "open", [state.feature_link(k) for k in feats["key"]])
    st.dataframe(feats.drop(columns=["key"]), hide_index=True, width="stretch",
                 column_config={"open": st.column_config.LinkColumn("feature", display_text="open")})
tables = res[~res["name"].str.endswith("_figure")] if not res.empty else res
for name, part in tables.groupby("name", sort=True):
    st.subheader(name)
    rows = [p if isinstance(p, dict) else {"value": p} for p in part["payload"]]
    st.dataframe(pd.json_normalize(rows).assign(key=list(part["key"])), hide_index=True, width="stretch")
state.show_stored_figures("obsprop")
