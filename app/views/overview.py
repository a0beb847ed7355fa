"""Overview: what the store holds - models, dictionaries with their metrics, runs."""

import streamlit as st

from app import state

with state.page():
    st.title("interp feature store")
    st.caption(f"Store: `{state.store_root()}`")

    counts = state.query("table_counts")
    shown = {"features": counts.get("features", 0), "dictionaries": counts.get("dictionaries", 0),
             "attributions": counts.get("attributions", 0),
             "complexity scores": counts.get("complexity", 0) + counts.get("complexity_features", 0),
             "runs": counts.get("runs", 0)}
    for col, (name, n) in zip(st.columns(len(shown)), shown.items()):
        col.metric(name, f"{n:,}")

    if not any(counts.values()):
        st.info("The store is empty. Build it with `make run`, or run single jobs: "
                "`interp map-neurons` (neuron map), `interp train` (transcoders / SAEs), "
                "`interp obsprop`, `interp attribute` (ReAGent), `interp complexity`.")
        st.stop()

    st.subheader("Models")
    models = state.query("feature_summary")
    stored_models = state.query("read_table", "models")
    if not stored_models.empty:
        st.dataframe(stored_models.drop(columns=["architecture", "info"], errors="ignore"), hide_index=True)
    if models.empty:
        st.info(state.fill_hint("features"))
    else:
        per_model = models.groupby(["model", "kind", "source"], as_index=False).agg(
            sites=("site", "nunique"), features=("n", "sum"), mean_specialisation=("mean_specialisation", "mean"),
            mean_complexity=("mean_complexity", "mean"))
        st.dataframe(per_model, hide_index=True, width="stretch")

    st.subheader("Dictionaries")
    dicts = state.query("dictionaries")
    if dicts.empty:
        st.info(state.fill_hint("dictionaries"))
    else:
        st.dataframe(dicts.drop(columns=["config"], errors="ignore"), hide_index=True, width="stretch")

    st.subheader("Runs")
    runs = state.query("runs")
    if runs.empty:
        st.info("No runs recorded yet.")
    else:
        shown = runs[["run_id", "command", "status", "started_at", "finished_at", "seed", "git_revision", "host"]]
        st.dataframe(shown, hide_index=True, width="stretch")
        run_id = st.selectbox("Provenance of run", runs["run_id"], index=0)
        row = runs[runs["run_id"] == run_id].iloc[0]
        c1, c2, c3 = st.columns(3)
        for col, name in zip((c1, c2, c3), ("config", "corpus", "packages")):
            col.markdown(f"**{name}**")
            col.json(state.parse_json(row.get(name)), expanded=False)

    results = state.query("result_names")
    if not results.empty:
        st.subheader("Method results")
        st.dataframe(results, hide_index=True)
