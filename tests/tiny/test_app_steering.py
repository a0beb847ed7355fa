"""The Steering page under AppTest on a tiny model: submit, both continuations, save, reopen by ?run=KEY."""

from __future__ import annotations

import re
import urllib.parse

import pytest
from streamlit.testing.v1 import AppTest

from helpers.paths import REPO
from interp.features import FeatureId
from interp.store import Store

PAGE = REPO / "app" / "views" / "steering.py"
NEURON = FeatureId("llama", "blocks.1.mlp.hook_post", "neuron", 5)


@pytest.fixture(scope="module")
def store_root(tmp_path_factory, tiny_models):
    root = tmp_path_factory.mktemp("steer_store")
    store = Store(root)
    with store.run("test", {}) as run:
        tiny_models["llama"].record(store, run)  # the models row that lets the app load the tiny model
        store.write("features", [{**NEURON.to_record(), "label": "tiny neuron", "max_act": 15.0}], run_id=run)
    return root


def _page(monkeypatch, root, **params) -> AppTest:
    monkeypatch.setenv("INTERP_STORE", str(root))
    at = AppTest.from_file(str(PAGE), default_timeout=120)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _continuations(at) -> list[str]:
    return [c.value for c in at.code]


def test_submit_shows_default_and_steered_then_reopens_by_run_key(monkeypatch, store_root, tiny_dirs):
    at = _page(monkeypatch, store_root, model=str(tiny_dirs["llama"]), feature=NEURON.key, strength="60")
    assert at.text_area[0].value == f"{NEURON.key}=60"
    assert not at.code  # nothing is computed before the form is submitted
    at.text_input[1].set_value("The cat sat")
    at.number_input[2].set_value(6)  # max tokens
    at.button[0].click().run()
    assert not at.exception and not at.error, [e.value for e in at.exception] + [e.value for e in at.error]
    shown = _continuations(at)
    assert len(shown) == 3  # default, frozen, live side by side
    default, frozen, live = shown
    assert frozen != default and live != default
    assert len(at.get("plotly_chart")) == 1
    assert any("KL side effect" in m.label for m in at.metric)

    at.button(key="save_run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    link = re.search(r"steering\?run=([^)\s]+)", at.success[0].value)
    assert link is not None, at.success[0].value
    key = urllib.parse.unquote(link.group(1))

    reopened = _page(monkeypatch, store_root, run=key)
    assert _continuations(reopened)[:3] == shown
    assert reopened.text_area[0].value == f"{NEURON.key}=60:add"  # the form holds the run's settings
    assert len(reopened.get("plotly_chart")) == 1


def test_bad_input_is_one_message(monkeypatch, store_root, tiny_dirs):
    at = _page(monkeypatch, store_root, model=str(tiny_dirs["llama"]), feature=NEURON.key, strength="abc")
    at.button[0].click().run()
    assert not at.exception
    assert any("is not a number" in e.value for e in at.error), [e.value for e in at.error]
    at = _page(monkeypatch, store_root, run="llama/000000000000")
    assert any("no steering run" in e.value for e in at.error), [e.value for e in at.error]
