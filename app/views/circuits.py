"""Circuits: stored transcoder attribution graphs, drawn layer by layer."""

import pandas as pd
import streamlit as st

from app import state

with state.page():
    st.title("Circuits")

    graphs = state.query("circuits")
    if graphs.empty:
        st.info("No attribution graphs are stored yet. Build one with "
                f"`{state.FILL_COMMANDS['circuits']} --prompt \"The capital of France is\"` "
                "(it needs transcoders from `interp train`).")
        st.stop()

    st.dataframe(graphs, hide_index=True, width="stretch")
    key = st.selectbox("Graph", list(graphs["key"]), index=0)
    payload = None
    with state.guard():
        payload = state.query("circuit_payload", key)
    if payload is None:
        st.stop()

    from interp.methods.circuits.graph import CircuitGraph  # noqa: E402
    from interp.viz.circuits import circuit_figure  # noqa: E402

    graph = None
    with state.guard(f"Circuit {key} cannot be drawn: "):
        graph = CircuitGraph.from_json(payload)
    if graph is not None:
        st.plotly_chart(circuit_figure(graph), width="stretch")
        meta = graph.meta
        dictionaries = {int(l): name for l, name in (meta.get("dictionaries") or {}).items()}
        nodes = pd.DataFrame([n.__dict__ for n in graph.nodes]).sort_values("influence", key=abs, ascending=False)
        from interp.features import FeatureId  # noqa: E402

        stored = state.query("dictionaries")
        owners = {name: r for name, r in zip(stored["name"], stored.to_dict("records"))} if len(stored) else {}

        def link(node: dict) -> str | None:
            """Feature page of a latent node (its dictionary's input site, as the dashboards store it)."""
            owner = owners.get(dictionaries.get(node["layer"])) if node["type"] == "latent" else None
            if owner is None or node["index"] is None:
                return None
            return state.feature_link(FeatureId(owner["model"], owner["site"], owner["kind"], int(node["index"]),
                                                owner["name"]).key)

        nodes.insert(0, "open", [link(r) for r in nodes.to_dict("records")])
        st.caption("Nodes by |influence| on the target")
        st.dataframe(nodes, hide_index=True, width="stretch",
                     column_config={"open": st.column_config.LinkColumn("feature", display_text="open")})
        with st.expander("Graph metadata"):
            st.json(meta, expanded=False)
