"""ObsProp: feature vectors for observables, their ranking, checks and data efficiency."""

import pandas as pd
import streamlit as st

from app import state
from interp.store.read import SearchQuery
from interp.viz import obsprop as obsprop_viz

with state.page():
    st.title("Observable propagation")

    rankings = state.query("results", name="obsprop_ranking")
    efficiency = state.query("results", name="obsprop_data_efficiency")
    if rankings.empty and efficiency.empty:
        st.info(state.fill_hint("obsprop"))
        st.stop()


    def payload_of(name: str, key: str) -> dict:
        """The stored payload `name` of `key` ({} when missing)."""
        found = state.query("results", name=name)
        found = found[found["key"] == key] if len(found) else found
        return {} if found.empty else found.iloc[0]["payload"]


    def rows_of(name: str, key: str) -> tuple[pd.DataFrame, str | None]:
        """The stored table `name` of `key` and the run that wrote it."""
        found = state.query("results", name=name)
        found = found[found["key"] == key] if len(found) else found
        if found.empty:
            return pd.DataFrame(), None
        return pd.DataFrame(found.iloc[0]["payload"].get("rows", [])), found.iloc[0]["run_id"]


    if not rankings.empty:
        st.subheader("Component ranking")
        key = st.selectbox("Observable", list(rankings["key"]))
        chosen = rankings[rankings["key"] == key].iloc[0]
        payload = chosen["payload"]
        made_by = payload.get("provenance") or {}
        st.caption(f"Ranking and feature vectors {state.run_caption(chosen['run_id'])}"
                   + (f"; MLPs {made_by['mlp_method']}, positions {made_by['positions']}, "
                      f"{made_by['n_prompts']} reference prompts, config {made_by['config_hash']}" if made_by else ""))
        ranking = pd.DataFrame(payload.get("ranking", []))
        ablation, ablation_run = rows_of("obsprop_ablation", key)
        if ablation_run is not None:
            st.caption(f"Ablation effects {state.run_caption(ablation_run)}"
                       + (" - another run than the ranking's" if ablation_run != chosen["run_id"] else ""))
        if not ranking.empty and "component" in ablation and "effect" in ablation:
            ranking = ranking.merge(ablation[["component", "effect"]], on="component", how="left")
        if not ranking.empty:
            st.plotly_chart(obsprop_viz.component_ranking_figure(ranking, title=f"{key}: feature norms"), width="stretch")
        observable = payload.get("observable", {})
        if observable:
            with st.expander("Observable"):
                st.json(observable)
        for line in obsprop_viz.check_headlines(payload_of("obsprop_norm_angles", key),
                                                payload_of("obsprop_ablation", key)):
            st.markdown(f"- {line}")
        c1, c2 = st.columns(2)
        for col, name, title in ((c1, "obsprop_norm_angles", "Angles between feature vectors"),
                                 (c2, "obsprop_coupling", "Coupling (predicted vs measured)")):
            table, table_run = rows_of(name, key)
            if not table.empty:
                col.caption(f"{title}, {state.run_caption(table_run)}")
                col.dataframe(table, hide_index=True, width="stretch")
        model, _, source = key.partition("/")
        feats, total = state.query("search", SearchQuery(models=(model,), kinds=("obsprop",), limit=200,
                                                         order="index", descending=False))
        feats = feats[feats["source"].str.startswith(source)] if total else feats
        if len(feats):
            st.caption("Stored ObsProp feature vectors")
            feats.insert(0, "open", [state.feature_link(k) for k in feats["key"]])
            st.dataframe(feats.drop(columns=["key"]), hide_index=True, width="stretch",
                         column_config={"open": st.column_config.LinkColumn("feature", display_text="open")})

    if not efficiency.empty:
        st.subheader("Data efficiency")
        for r in efficiency.itertuples():
            st.caption(f"{r.key} {state.run_caption(r.run_id)}")
            table = pd.DataFrame(r.payload.get("rows", []))
            if {"method", "k"} <= set(table.columns):
                metric = "auroc" if "auroc" in table else "corr"
                st.plotly_chart(obsprop_viz.data_efficiency_figure(
                    table, metric=metric, title=f"{r.key}", ceiling=r.payload.get("ceiling_auroc")),
                    width="stretch", key=f"eff-{r.key}")
            summary = pd.DataFrame(r.payload.get("summary", []))
            if len(summary):
                st.dataframe(summary, hide_index=True, width="stretch")
