"""Feature labels and lists in the app: both label sources and an edit that survives a new
session, search by a label, a list made on the feature page and opened by ?list=NAME, and
links that reproduce the search and Circuits views."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from helpers.app_store import LATENT, MODEL, TOP_NEURON, circuit_json, populate
from helpers.paths import REPO
from interp.methods.labels.store import build_labels, write_labels
from interp.store import Store

VIEWS = REPO / "app" / "views"


@pytest.fixture(scope="module")
def store_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("app_labels_store")
    store = populate(root)
    write_labels(store, MODEL, build_labels(store, MODEL))
    return root


@pytest.fixture
def page(monkeypatch, store_root):
    def run(name: str, **params) -> AppTest:
        monkeypatch.setenv("INTERP_STORE", str(store_root))
        at = AppTest.from_file(str(VIEWS / f"{name}.py"), default_timeout=60)
        for key, value in params.items():
            at.query_params[key] = value
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        assert not at.error, [e.value for e in at.error]
        return at
    return run


def _texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def test_feature_page_shows_both_sources_and_an_edit_survives_a_new_session(page):
    at = page("feature", feature=TOP_NEURON.key)
    shown = _texts(at.markdown)
    # the populated neuron's down/top tokens are ' Paris', ' the', ' dog', ...
    assert "Paris/the/dog" in shown
    assert "**Label:** Paris/the/dog" in shown or "**Label:** in: " in shown
    at.text_input(key="label-text").set_value("capital detector")
    at.text_input(key="label-author").set_value("ada")
    at.button(key="FormSubmitter:label-edit-Save label").click().run()
    assert not at.exception and not at.error
    again = page("feature", feature=TOP_NEURON.key)
    shown = _texts(again.markdown)
    assert "**Label:** capital detector" in shown
    assert "capital detector (by ada," in shown
    assert "Paris/the/dog" in shown  # the automatic output label is still shown


def test_search_by_an_edited_label_finds_the_feature(page):
    at = page("feature", feature=LATENT.key)
    at.text_input(key="label-text").set_value("zebra stripes")
    at.button(key="FormSubmitter:label-edit-Save label").click().run()
    found = page("search", label="zebra")
    assert "**1** matching features" in _texts(found.markdown)
    assert found.dataframe[0].value["label"].tolist() == ["zebra stripes"]


def test_a_list_made_on_the_feature_page_opens_by_url(page):
    at = page("feature", feature=TOP_NEURON.key)
    at.text_input(key="list-new").set_value("paris things")
    at.text_input(key="list-note").set_value("the Paris neuron")
    at.button(key="FormSubmitter:list-add-Add to list").click().run()
    assert "Added to list" in _texts(at.success)
    lists = page("lists", list="paris things")
    assert lists.selectbox(key="list-name").value == "paris things"
    table = lists.dataframe[0].value
    assert table["note"].tolist() == ["the Paris neuron"]
    assert table["index"].tolist() == [TOP_NEURON.index]
    assert "feature?feature=" in table["open"].iloc[0]
    assert "lists?list=paris%20things" in _texts(lists.markdown)


def test_search_filters_go_into_the_url_and_come_back(page):
    at = page("search", kind="neuron", label="detector", order="index", desc="0", size="25")
    assert at.multiselect[1].value == ["neuron"] and at.text_input[2].value == "detector"
    assert at.dataframe[0].value["index"].tolist()[:3] == [0, 0, 0]  # ascending by index, as the link asked
    at.text_input[2].set_value("dog")
    at.button(key="FormSubmitter:search-Search").click().run()
    url = {k: at.query_params[k] for k in at.query_params}
    assert url["label"] == "dog" and url["kind"] == "neuron" and url["order"] == "index" and url["desc"] == "0"
    rows = at.dataframe[0].value
    again = page("search", **url)  # the link in a new session shows the same page
    assert again.dataframe[0].value["index"].tolist() == rows["index"].tolist()
    assert len(rows) > 0 and set(rows["kind"]) == {"neuron"}


def test_circuits_page_keeps_the_picked_graph_in_the_url(page, store_root):
    store = Store(store_root)
    with store.run("interp circuit", {}) as run:
        store.write("results", [{"name": "circuit", "key": "circuit-two", "payload": circuit_json()}], run_id=run)
    at = page("circuits")
    keys = list(at.selectbox(key="path-key").options)
    assert set(keys) == {"circuit-demo", "circuit-two"}
    assert at.query_params["graph"] == at.selectbox(key="path-key").value
    other = next(k for k in keys if k != at.selectbox(key="path-key").value)
    assert page("circuits", graph=other).selectbox(key="path-key").value == other
