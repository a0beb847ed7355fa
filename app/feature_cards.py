"""What the feature page draws for any kind of feature: decoded-token tables, example contexts
and nearest-feature tables, each from a frame the store read returned (`app.state.query`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from app import state
from interp.features import FeatureId
from interp.viz import store_views

LINK = {"open": st.column_config.LinkColumn("feature", display_text="open")}


def token_tables(toks: pd.DataFrame) -> None:
    """Top and bottom decoded tokens side by side, one pair per (direction, variant)."""
    for (direction, variant), part in toks.groupby(["direction", "variant"], sort=False):
        st.markdown(f"**{direction}** direction, {variant}")
        left, right = st.columns(2)
        for col, end in ((left, "top"), (right, "bottom")):
            shown = part[part["end"] == end][["rank", "token_str", "logit", "prob"]]
            col.caption(f"{end} tokens")
            col.table(shown.assign(token_str=shown["token_str"].map(repr)).set_index("rank"))


def contexts(examples: pd.DataFrame, value: str = "max", key: str | None = None) -> None:
    """The stored example windows of one group (picked with a radio), the example's token
    highlighted and every token shaded by its value; `value` names that value in each header."""
    scale = float(np.nanmax(np.abs(np.concatenate([np.asarray(a, float) for a in examples["acts"]]))))
    groups = list(dict.fromkeys(examples["group"]))
    group = st.radio("Examples", groups, horizontal=True, index=groups.index("top") if "top" in groups else 0,
                     key=key)
    for ex in examples[examples["group"] == group].itertuples():
        st.markdown(f"<small>#{ex.example_rank} {value} {ex.max_act:.3g}</small>" + store_views.context_html(
            list(ex.tokens), list(ex.acts), scale=scale, max_pos=ex.max_pos), unsafe_allow_html=True)


def feature_table(near: pd.DataFrame, caption: str) -> None:
    """Features (one identity per row) with a link opening each on the feature page."""
    near = near.copy()
    near.insert(0, "open", [state.feature_link(FeatureId.from_record(r).key) for r in near.to_dict("records")])
    st.caption(caption)
    st.dataframe(near, hide_index=True, width="stretch", column_config=LINK)
