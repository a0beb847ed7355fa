"""Dictionaries (SAEs, transcoders): evaluation metrics, L0 vs CE, latent density, and the
downstream evals (k-sparse probing, TPP, meta-structure) of several dictionaries side by side."""

import pandas as pd
import streamlit as st

from app import state
from interp.store.read import SearchQuery
from interp.viz import dictionaries as dict_viz
from interp.viz import store_views

with state.page():
    st.title("Dictionaries")

    dicts = state.query("dictionaries")
    if dicts.empty:
        st.info(state.fill_hint("dictionaries"))
        st.stop()

    metrics = {c.removeprefix("metric."): c for c in dicts.columns if c.startswith("metric.")}
    scalar = [c for c in metrics if dicts[metrics[c]].dtype.kind in "fiu"]
    table = dicts[["name", "model", "kind", "arch", "site", "hook_out"]].join(
        dicts[[metrics[c] for c in scalar]].rename(columns={v: k for k, v in metrics.items()}))
    st.dataframe(table, hide_index=True, width="stretch")
    if note := dict_viz.no_fit_note(table):
        st.warning(note)

    needed = {"l0", "ce_spliced", "ce_clean", "ce_recovered"}
    if needed <= set(table.columns):
        st.plotly_chart(dict_viz.l0_vs_ce_figure(table.dropna(subset=list(needed))), width="stretch")
    elif len(scalar) >= 2:
        x = st.selectbox("x", scalar, index=next((i for i, c in enumerate(scalar) if "l0" in c), 0))
        y = st.selectbox("y", scalar, index=next((i for i, c in enumerate(scalar) if "ce" in c and c != x), 1))
        st.plotly_chart(store_views.metric_scatter(table, x, y, color="kind", hover="name", title=f"{y} vs {x}"),
                        width="stretch")
    else:
        st.info("The dictionaries carry no L0 / CE metrics yet; `interp train` evaluates them when it publishes.")

    name = st.selectbox("Dictionary", list(dicts["name"]))
    row = dicts[dicts["name"] == name].iloc[0]
    hist = row.get("metric.density_histogram.counts")
    if isinstance(hist, list):
        st.plotly_chart(dict_viz.density_histogram_figure({
            "log10_edges": row["metric.density_histogram.log10_edges"], "counts": hist,
            "dead": row.get("metric.density_histogram.dead", 0)}, title=f"{name}: latent density"), width="stretch")
    latents, total = state.query("search", SearchQuery(sources=(name,), order="max_act", limit=50))
    if total:
        st.caption(f"{total:,} latents of {name} with dashboards (highest max activation first)")
        latents.insert(0, "open", [state.feature_link(k) for k in latents["key"]])
        st.dataframe(latents.drop(columns=["key"]), hide_index=True, width="stretch",
                     column_config={"open": st.column_config.LinkColumn("feature", display_text="open")})
    else:
        st.info(f"No latent dashboards stored for {name} (they are written when `interp train` publishes it).")

    sweeps = state.query("results", name="dictionary_sweep")
    for r in sweeps.itertuples():
        st.subheader(f"Sweep {r.key}")
        rows = pd.DataFrame(r.payload.get("table") or r.payload.get("rows") or [])
        if needed <= set(rows.columns):
            st.plotly_chart(dict_viz.l0_vs_ce_figure(rows, title=f"Sweep {r.key}"), width="stretch", key=f"sw-{r.key}")
        st.dataframe(rows, hide_index=True, width="stretch")

    st.header("Downstream evals")
    probing = state.query("probing_results")
    tpp = state.query("tpp_results")
    meta = state.query("meta_results")
    if probing.empty and tpp.empty and meta.empty:
        st.info("No downstream evals stored yet; run `interp dict-eval all <dictionary>` "
                "(k-sparse probing and TPP on the labelled sets, meta-structure of the decoder).")
    if not probing.empty:
        st.subheader("k-sparse probing")
        st.caption("Test accuracy of a logistic-regression probe on each dictionary's k latents with the largest "
                   "class-mean difference, against a probe on all raw activations of its input site.")
        st.plotly_chart(dict_viz.sparse_probing_figure(probing), width="stretch", key="probing")
        wide = probing.pivot_table(index=["dictionary", "dataset", "raw_accuracy"], columns="k",
                                   values="accuracy").reset_index()
        wide.columns = [f"k={c}" if isinstance(c, (int, float)) else c for c in wide.columns]
        st.dataframe(wide, hide_index=True, width="stretch")
    if not tpp.empty:
        st.subheader("Targeted probe perturbation (TPP)")
        st.caption("Ablate each labelled set's top latents: the drop in that set's probe accuracy minus the mean "
                   "drop of the other sets' probes (higher: latents specific to one concept).")
        st.plotly_chart(dict_viz.tpp_figure(tpp), width="stretch", key="tpp")
        st.dataframe(tpp, hide_index=True, width="stretch")
    if not meta.empty:
        st.subheader("Meta-structure")
        st.caption("A small BatchTopK meta-dictionary trained on each dictionary's unit decoder rows: the share of "
                   "their variance a few meta-latents per row explain (grey: the same meta-dictionary size on random "
                   "directions). High: latents are compositions of shared, coarser directions, not atomic.")
        st.plotly_chart(dict_viz.meta_structure_figure(meta), width="stretch", key="meta")
        st.dataframe(meta, hide_index=True, width="stretch")
