"""Feature lists: open a named list as a table, remove features, export it, share it by URL (?list=NAME)."""

import streamlit as st

from app import state
from interp.features import FeatureId
from interp.store.lists import export_list, remove_from_list

with state.page():
    st.title("Feature lists")

    names = list(state.query("list_names")["list"])
    wanted = st.query_params.get("list", "")
    if wanted and wanted not in names:
        st.warning(f"There is no list {wanted[:80]!r} in this store (or it is empty).")
    if not names:
        st.info("No lists yet: open a feature and use **Add to a list** on its page.")
        st.stop()

    name = st.selectbox("List", names, index=names.index(wanted) if wanted in names else 0, key="list-name")
    if st.query_params.get("list") != name:
        st.query_params["list"] = name

    frame = state.query("read_list", name)
    st.markdown(f"**{len(frame)}** features on list **{name}** - share it: [`{state.list_link(name)}`]"
                f"({state.list_link(name)})")
    shown = frame.drop(columns=["key"])
    shown.insert(0, "open", [state.feature_link(k) for k in frame["key"]])
    st.dataframe(shown, hide_index=True, width="stretch",
                 column_config={"open": st.column_config.LinkColumn("feature", display_text="open")})

    csv_col, json_col, _ = st.columns([1, 1, 4])
    csv_col.download_button("Download CSV", export_list(frame, "csv"), file_name=f"{name}.csv", mime="text/csv")
    json_col.download_button("Download JSON", export_list(frame, "json"), file_name=f"{name}.json",
                             mime="application/json")

    if len(frame):
        drop = st.selectbox("Remove a feature", list(frame["key"]), key="list-drop")
        if st.button("Remove from list"):
            with state.guard("Not removed: "):
                state.write(remove_from_list, name, FeatureId.from_record(
                    frame[frame["key"] == drop].iloc[0].to_dict()))
                st.rerun()
