"""Circuits: stored attribution graphs (pin, group, annotate; saved with the graph) and path-search circuits."""

import pandas as pd
import streamlit as st

from app import state


def _feature_link(row: dict, dictionaries: dict, owners: dict) -> str | None:
    """Feature page of a latent node (its dictionary's input site, as the dashboards store it)."""
    from interp.features import FeatureId

    if row["kind"] != "feature" or pd.isna(row["layer"]) or pd.isna(row["index"]):
        return None
    owner = owners.get(dictionaries.get(str(int(row["layer"]))))  # a table's int column may read back as float
    if owner is None:
        return None
    return state.feature_link(FeatureId(owner["model"], owner["site"], owner["kind"], int(row["index"]),
                                        owner["name"]).key)


def _owners() -> dict:
    stored = state.query("dictionaries")
    return {r["name"]: r for r in stored.to_dict("records")} if len(stored) else {}


def _clicked(event) -> str | None:
    points = (event or {}).get("selection", {}).get("points", []) if isinstance(event, dict) else []
    ids = [p.get("customdata") for p in points if isinstance(p.get("customdata"), str)]
    return ids[0] if ids else None


def _node_panel(key: str, data: dict, nodes: pd.DataFrame, node: str, annotations: dict) -> None:
    from interp.methods.circuits.graph_view import node_edges

    row = nodes.set_index("node_id").loc[node].to_dict() | {"node_id": node}
    st.markdown(f"**{row['label']}** (`{node}`, {row['kind']}, layer {row['layer']}, position {row['position']} "
                f"{row['token']!r})")
    link = _feature_link(row, data["metadata"].get("dictionaries") or {}, _owners())
    if link:
        st.markdown(f"[Open the feature page]({link})")
    edges = node_edges(data, node, nodes)
    left, right = st.columns(2)
    left.caption(f"Incoming edges ({len(edges.incoming)})")
    left.dataframe(edges.incoming, hide_index=True, width="stretch")
    right.caption(f"Outgoing edges ({len(edges.outgoing)})")
    right.dataframe(edges.outgoing, hide_index=True, width="stretch")
    text = st.text_input("Annotation", value=annotations.get(node, ""), key=f"note-{key}-{node}")
    if st.button("Save annotation", key=f"save-note-{key}"):
        with state.guard("The annotation was not saved: "):
            state.save_graph_params(key, annotations={**annotations, node: text})
            st.rerun()


def _supernode_panel(key: str, ids: list, name, supernodes: list) -> None:
    st.subheader("Supernodes")
    if supernodes:
        st.dataframe(pd.DataFrame([{"label": s[0], "nodes": ", ".join(s[1:]), "size": len(s) - 1}
                                   for s in supernodes]), hide_index=True, width="stretch")
    with st.form(f"supernode-{key}", clear_on_submit=True):
        label = st.text_input("Label", key=f"sn-label-{key}")
        members = st.multiselect("Nodes", ids, format_func=name, key=f"sn-nodes-{key}")
        if st.form_submit_button("Add supernode"):
            with state.guard("The supernode was not saved: "):
                state.save_graph_params(key, supernodes=[*supernodes, [label, *members]])
                st.rerun()
    if supernodes:
        drop = st.selectbox("Remove supernode", [s[0] for s in supernodes], key=f"sn-drop-{key}")
        if st.button("Remove", key=f"sn-remove-{key}"):
            state.save_graph_params(key, supernodes=[s for s in supernodes if s[0] != drop])
            st.rerun()


def _pick_graph(label: str, keys: list, widget_key: str) -> str:
    """The graph picked (first ?graph=KEY when it names one), written back into the URL."""
    wanted = st.query_params.get("graph")
    key = st.selectbox(label, keys, index=keys.index(wanted) if wanted in keys else 0, key=widget_key)
    if st.query_params.get("graph") != key:
        st.query_params["graph"] = key
    return key


def attribution_view(graphs: pd.DataFrame) -> None:
    from interp.methods.circuits.graph_view import graph_params, node_table
    from interp.viz.circuits import attribution_graph_figure, subgraph_figure

    st.dataframe(graphs, hide_index=True, width="stretch")
    key = _pick_graph("Attribution graph", list(graphs["key"]), "ag-key")
    data = None
    with state.guard(f"Graph {key} cannot be read: "):
        data = state.query("attribution_graph_file", key)
    if data is None:
        st.stop()
    nodes = node_table(data)
    params = graph_params(data)
    ids = list(nodes["node_id"])
    labels = dict(zip(nodes["node_id"], nodes["label"]))

    def name(nid: str) -> str:
        return f"{labels.get(nid, nid)} ({nid})"

    shown = [p for p in params.pinned if p in labels]
    hidden = [p for p in params.pinned if p not in labels]  # pins of nodes pruned away stay saved
    pinned = st.multiselect("Pinned nodes (saved with the graph)", ids, default=shown, format_func=name,
                            key=f"pins-{key}")
    if pinned != shown:
        with state.guard("The pins were not saved: "):
            params = params._replace(pinned=state.save_graph_params(key, pinned=pinned + hidden)["pinnedIds"])
    node_key = f"node-{key}"
    # The figure must not change with the picked node: a changed figure is a new chart to Streamlit, and the
    # click that picked the node would be lost in the rerun it triggers.
    event = st.plotly_chart(attribution_graph_figure(data, pinned=pinned), width="stretch", on_select="rerun",
                            selection_mode="points", key=f"fig-{key}")
    clicked = _clicked(event)
    if clicked in labels and clicked != state.recall(f"clicked-{key}"):
        state.remember(f"clicked-{key}", clicked)
        st.session_state[node_key] = clicked
    st.caption("Click a node (or pick it below) to see its edges; pinned nodes are stars.")
    node = st.selectbox("Node", ids, format_func=name, key=node_key)
    if node:
        _node_panel(key, data, nodes, node, params.annotations)
    if pinned or params.supernodes:
        st.subheader("Subgraph of the pinned nodes")
        st.plotly_chart(subgraph_figure(data, pinned, params.supernodes), width="stretch", key=f"sub-{key}")
    _supernode_panel(key, ids, name, params.supernodes)
    with st.expander("Graph metadata"):
        st.json(data["metadata"], expanded=False)


def path_view(graphs: pd.DataFrame) -> None:
    from interp.methods.circuits.graph import CircuitGraph
    from interp.viz.circuits import circuit_figure

    st.dataframe(graphs, hide_index=True, width="stretch")
    key = _pick_graph("Graph", list(graphs["key"]), "path-key")
    payload = None
    with state.guard():
        payload = state.query("circuit_payload", key)
    if payload is None:
        st.stop()
    graph = None
    with state.guard(f"Circuit {key} cannot be drawn: "):
        graph = CircuitGraph.from_json(payload)
    if graph is None:
        return
    st.plotly_chart(circuit_figure(graph), width="stretch")
    meta = graph.meta
    dictionaries = {str(l): name for l, name in (meta.get("dictionaries") or {}).items()}
    nodes = pd.DataFrame([n.__dict__ for n in graph.nodes]).sort_values("influence", key=abs, ascending=False)
    owners = _owners()
    nodes.insert(0, "open", [_feature_link({"kind": "feature" if r["type"] == "latent" else r["type"],
                                            "layer": r["layer"], "index": r["index"]}, dictionaries, owners)
                             for r in nodes.to_dict("records")])
    st.caption("Nodes by |influence| on the target")
    st.dataframe(nodes, hide_index=True, width="stretch",
                 column_config={"open": st.column_config.LinkColumn("feature", display_text="open")})
    with st.expander("Graph metadata"):
        st.json(meta, expanded=False)


with state.page():
    st.title("Circuits")

    attribution_graphs = state.query("attribution_graphs")
    paths = state.query("circuits")
    if attribution_graphs.empty and paths.empty:
        st.info("No graphs are stored yet. Build an attribution graph with "
                "`interp circuit graph --prompt \"The capital of France is\"`, or a path-search circuit with "
                f"`{state.FILL_COMMANDS['circuits']} --prompt \"The capital of France is\"` "
                "(both need transcoders from `interp train`).")
        st.stop()
    views = [v for v, frame in (("Attribution graph", attribution_graphs), ("Path search", paths)) if not frame.empty]
    wanted = st.query_params.get("graph")
    first = 1 if len(views) > 1 and wanted in set(paths["key"]) - set(attribution_graphs["key"]) else 0
    view = st.radio("View", views, index=first, horizontal=True, key="circuit-view") if len(views) > 1 else views[0]
    if view == "Attribution graph":
        attribution_view(attribution_graphs)
    else:
        path_view(paths)
