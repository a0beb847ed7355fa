"""Entry point of the interp dashboard: `interp app` (or `streamlit run app/Home.py`).

Pages live in `app/views/`; each reads the store only through `app.state`, which maps names
to the read API of `interp.store.read`.
"""

import sys
from pathlib import Path

_REPO = str(Path(__file__).resolve().parent.parent)
if _REPO not in sys.path:  # `streamlit run app/Home.py` puts only app/ on the path
    sys.path.insert(0, _REPO)

import streamlit as st  # noqa: E402

VIEWS = Path(__file__).resolve().parent / "views"

st.set_page_config(page_title="interp", page_icon=":material/biotech:", layout="wide")

PAGES = {
    "Browse": [
        st.Page(VIEWS / "overview.py", title="Overview", icon=":material/home:", default=True),  # served at /
        st.Page(VIEWS / "search.py", title="Feature search", icon=":material/search:", url_path="search"),
        st.Page(VIEWS / "feature.py", title="Feature", icon=":material/neurology:", url_path="feature"),
        st.Page(VIEWS / "prompt.py", title="Prompt", icon=":material/edit_note:", url_path="prompt"),
        st.Page(VIEWS / "lists.py", title="Lists", icon=":material/list:", url_path="lists"),
    ],
    "Methods": [
        st.Page(VIEWS / "neurons.py", title="Neuron map", icon=":material/grid_on:", url_path="neurons"),
        st.Page(VIEWS / "dictionaries.py", title="Dictionaries", icon=":material/menu_book:", url_path="dictionaries"),
        st.Page(VIEWS / "obsprop.py", title="ObsProp", icon=":material/call_split:", url_path="obsprop"),
        st.Page(VIEWS / "attribution.py", title="Attribution", icon=":material/highlight:", url_path="attribution"),
        st.Page(VIEWS / "complexity.py", title="Complexity", icon=":material/stacked_line_chart:",
                url_path="complexity"),
        st.Page(VIEWS / "circuits.py", title="Circuits", icon=":material/hub:", url_path="circuits"),
        st.Page(VIEWS / "steering.py", title="Steering", icon=":material/tune:", url_path="steering"),
    ],
}

st.navigation(PAGES).run()
