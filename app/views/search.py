"""Feature search: filter the features table in DuckDB and page through the matches."""

import streamlit as st

from app import state
from interp.store.read import SORTABLE, SearchQuery

PAGE_SIZES = (25, 50, 100, 250)


def _range(name: str):
    """A ``lo,hi`` range of the URL (None when absent or malformed)."""
    try:
        lo, hi = (float(v) for v in st.query_params.get(name, "").split(","))
        return (min(max(lo, 0.0), 1.0), min(max(hi, 0.0), 1.0))
    except ValueError:
        return None


def _int_param(name: str, default: int) -> int:
    raw = st.query_params.get(name, "")
    return int(raw) if raw.isdigit() else default


def _to_url(q: SearchQuery, page: int) -> None:
    """Every filter of `q` and the page into the URL, so a link reproduces this search."""
    values = {"model": list(q.models), "kind": list(q.kinds), "site": list(q.sites), "source": list(q.sources),
              "token": q.token, "context": q.context, "label": q.label, "order": q.order,
              "desc": "1" if q.descending else "0", "size": str(q.limit), "page": str(page)}
    for name in ("complexity", "specialisation"):
        bounds = getattr(q, name)
        values[name] = f"{bounds[0]:g},{bounds[1]:g}" if bounds is not None else ""
    wanted = {k: v for k, v in values.items() if v not in ("", [])}
    current = {k: (st.query_params.get_all(k) if isinstance(wanted.get(k), list) else st.query_params.get(k))
               for k in st.query_params}
    if current != wanted:
        st.query_params.from_dict(wanted)


with state.page():
    st.title("Feature search")

    facets = state.query("facets")
    if not facets["model"]:
        st.info(state.fill_hint("features"))
        st.stop()

    params = st.query_params
    cx_range, sp_range = _range("complexity"), _range("specialisation")
    size = _int_param("size", 50)
    with st.form("search"):
        c1, c2, c3 = st.columns(3)
        models = c1.multiselect("Model", facets["model"], default=[m for m in params.get_all("model") if m in facets["model"]])
        kinds = c2.multiselect("Kind", facets["kind"], default=[k for k in params.get_all("kind") if k in facets["kind"]])
        source_options = [s for s in facets["source"] if s]
        sources = c3.multiselect("Dictionary / source", source_options,
                                 default=[s for s in params.get_all("source") if s in source_options])
        sites = st.multiselect("Site", facets["site"], default=[s for s in params.get_all("site") if s in facets["site"]])
        c1, c2, c3 = st.columns(3)
        token = c1.text_input("Decoded token (among the top 10)", value=params.get("token", ""),
                              help="e.g. ' Paris' or 'dog': case and surrounding spaces are ignored")
        context = c2.text_input("Text in top-activation contexts", value=params.get("context", ""))
        label = c3.text_input("Text in label", value=params.get("label", ""),
                              help="the label shown (an edit, else the automatic one) or its input / output label")
        c1, c2 = st.columns(2)
        use_cx = c1.checkbox("Filter by complexity", value=cx_range is not None)
        complexity = c1.slider("Complexity K", 0.0, 1.0, cx_range or (0.0, 1.0), 0.01)
        use_sp = c2.checkbox("Filter by specialisation", value=sp_range is not None)
        specialisation = c2.slider("Specialisation", 0.0, 1.0, sp_range or (0.0, 1.0), 0.01)
        c1, c2, c3 = st.columns(3)
        wanted_order = params.get("order", "")
        order = c1.selectbox("Sort by", SORTABLE, index=SORTABLE.index(wanted_order) if wanted_order in SORTABLE else 0)
        descending = c2.toggle("Descending", value=params.get("desc", "1") != "0")
        page_size = c3.selectbox("Page size", PAGE_SIZES, index=PAGE_SIZES.index(size) if size in PAGE_SIZES else 1)
        submitted = st.form_submit_button("Search", type="primary")

    if submitted:
        state.remember("search_page", 0)
    page = int(state.recall("search_page", _int_param("page", 0)))

    query = None
    with state.guard("Invalid search: "):
        query = SearchQuery(models=tuple(models), kinds=tuple(kinds), sites=tuple(sites), sources=tuple(sources),
                            token=token, context=context, label=label,
                            complexity=tuple(complexity) if use_cx else None,
                            specialisation=tuple(specialisation) if use_sp else None,
                            order=order, descending=descending, limit=page_size, offset=page * page_size)
    if query is None:
        st.stop()
    _to_url(query, page)

    frame, total = state.query("search", query)
    n_pages = max(1, -(-total // page_size))
    st.markdown(f"**{total:,}** matching features - page {page + 1} of {n_pages}")
    if frame.empty:
        st.info("No feature matches these filters; widen them (or clear the token / context text).")
        st.stop()

    frame.insert(0, "open", [state.feature_link(k) for k in frame["key"]])
    st.dataframe(
        frame.drop(columns=["key"]), hide_index=True, width="stretch",
        column_config={
            "open": st.column_config.LinkColumn("feature", display_text="open"),
            "logit_z": st.column_config.NumberColumn("logit z", format="%.1f"),
            "specialisation": st.column_config.NumberColumn(format="%.3f"),
            "complexity": st.column_config.NumberColumn(format="%.3f"),
            "max_act": st.column_config.NumberColumn(format="%.3g"),
            "density": st.column_config.NumberColumn(format="%.2e"),
        },
    )

    prev_col, next_col, _ = st.columns([1, 1, 6])
    if prev_col.button("Previous", disabled=page == 0):
        state.remember("search_page", page - 1)
        st.rerun()
    if next_col.button("Next", disabled=page + 1 >= n_pages):
        state.remember("search_page", page + 1)
        st.rerun()
