"""Token attribution: faithfulness of ReAGent and the baselines, and each prompt's heatmap."""

import pandas as pd
import streamlit as st

from app import state
from interp.viz import attribution as attribution_viz

with state.page():
    st.title("Token attribution")

    attrs = state.query("attributions")
    benchmark = state.query("results", name="reagent_faithfulness")
    if attrs.empty and benchmark.empty:
        st.info(state.fill_hint("attributions"))
        st.stop()

    st.subheader("Faithfulness")
    CONVENTIONS = {"reagent": "the ReAGent authors' convention (sum-to-1 weights, squared Hellinger, BOS masked; "
                               "comparable with the paper's tables)",
                   "interp": "interp's earlier convention (min-max weights, Hellinger, BOS kept; not comparable with "
                             "the paper's tables)"}
    summary = state.query("faithfulness_summary")
    for convention, part in (summary.groupby("convention", sort=False) if not summary.empty else []):
        n_bad = int(part["not_converged"].sum())
        st.caption(f"Over the prompts attributed by `interp attribute`: Soft-NS / Soft-NC under "
                   f"{CONVENTIONS.get(convention, convention)}; n = prompts per method, [lo, hi] = 95% bootstrap "
                   "interval over prompts" + (f"; {n_bad} non-converged ReAGent attribution(s) left out of the means"
                                              if n_bad else ""))
        st.plotly_chart(attribution_viz.faithfulness_figure(part), width="stretch", key=f"summary-{convention}")
        st.dataframe(part.round(4), hide_index=True, width="stretch")
    order = {"table": 0, "paired": 1}  # each benchmark's summary, then its paired comparison
    for row in sorted(benchmark.itertuples(), key=lambda r: (r.key.rsplit(":", 1)[0], order.get(r.key.split(":")[-1], 2))):
        if row.key.split(":")[-1] == "table" and isinstance(row.payload, list) and row.payload:
            table = pd.DataFrame(row.payload)
            convention = table["convention"].iloc[0] if "convention" in table else "interp"
            st.caption(f"ReAGent benchmark `{row.key}` (benchmarks/bench_reagent.py): Soft-NS / Soft-NC under "
                       f"{CONVENTIONS.get(convention, convention)}; n = prompts, [lo, hi] = 95% bootstrap interval")
            with state.guard("The stored benchmark table is incomplete: "):
                st.plotly_chart(attribution_viz.faithfulness_figure(table, title="Faithfulness (benchmark)"),
                                width="stretch", key=f"bench-{row.key}")
            st.dataframe(table.round(4), hide_index=True, width="stretch")
        elif row.key.split(":")[-1] == "paired" and isinstance(row.payload, list) and row.payload:
            st.caption(f"`{row.key}`: ReAGent minus each method, paired per prompt (95% bootstrap interval; "
                       "wins = share of prompts on which ReAGent scores higher)")
            st.dataframe(pd.DataFrame(row.payload).round(4), hide_index=True, width="stretch")
    if summary.empty and benchmark.empty:
        st.info("The stored attributions carry no faithfulness scores; `interp attribute` computes them.")

    if not attrs.empty:
        st.subheader("Per prompt")
        prompts = list(dict.fromkeys(attrs["prompt"]))
        prompt = st.selectbox("Prompt", prompts)
        part = attrs[attrs["prompt"] == prompt]
        for (model, target), rows in part.groupby(["model", "target"], sort=False):
            for r in rows.itertuples():
                flag = getattr(r, "converged", None)
                flag = None if flag is None or pd.isna(flag) else bool(flag)  # null for methods without a stopping rule
                if flag is False:
                    st.badge(f"{r.method}: not converged ({r.converged_probes} probes met the stopping rule; "
                             "the scores average all probes)", icon=":material/warning:", color="orange")
                elif flag:
                    st.badge(f"{r.method}: converged ({r.converged_probes} probes)", icon=":material/check:",
                             color="green")
            fig = attribution_viz.methods_heatmap(state.attribution_results(rows), title=f"towards {target} ({model})")
            st.plotly_chart(state.heatmap_rows(fig, len(rows)), width="stretch")
            faith = [{"method": r.method, **{k: v for k, v in (r.extra.get("faithfulness") or {}).items()
                                              if k in ("convention", "n_masks", "soft_ns", "soft_ns_lo", "soft_ns_hi",
                                                       "soft_nc", "soft_nc_lo", "soft_nc_hi")}}
                     for r in rows.itertuples() if isinstance(r.extra, dict) and r.extra.get("faithfulness")]
            if faith:
                st.caption("This prompt's faithfulness: n_masks = Bernoulli masks per soft metric, [lo, hi] = 95% "
                           "bootstrap interval over them")
                st.dataframe(pd.DataFrame(faith).round(4), hide_index=True, width="stretch")
