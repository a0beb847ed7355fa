"""The feature page's steer box: the suggested strength and the link that opens the Steering page on it."""

from __future__ import annotations

import urllib.parse

from streamlit.testing.v1 import AppTest

from helpers.app_store import TOP_NEURON, populate
from helpers.paths import REPO
from interp.methods.steering.strength import ADD_FACTOR
from interp.store import Store

VIEWS = REPO / "app" / "views"


def _run(monkeypatch, root, page: str, **params) -> AppTest:
    monkeypatch.setenv("INTERP_STORE", str(root))
    at = AppTest.from_file(str(VIEWS / f"{page}.py"), default_timeout=60)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_steer_box_links_to_the_steering_page_with_the_suggested_strength(monkeypatch, tmp_path):
    populate(tmp_path)
    max_act = float(Store(tmp_path).read("features", where=TOP_NEURON.to_record())["max_act"].iloc[0])
    strength = ADD_FACTOR * max_act
    at = _run(monkeypatch, tmp_path, "feature", feature=TOP_NEURON.key)
    box = "\n".join(m.value for m in at.markdown)
    assert f"suggested strength **{strength:g}**" in box
    link = "steering?" + urllib.parse.urlencode({"feature": TOP_NEURON.key, "strength": f"{strength:g}"})
    assert f"[Steer this feature]({link})" in box

    params = dict(urllib.parse.parse_qsl(link.split("?", 1)[1]))
    steering = _run(monkeypatch, tmp_path, "steering", **params)
    assert steering.text_area[0].value == f"{TOP_NEURON.key}={strength:g}"
    assert steering.text_input[0].value == TOP_NEURON.model  # the feature's model fills the model field


def test_steer_box_without_stored_activations_says_so(monkeypatch, tmp_path):
    from interp.features import FeatureId

    store = Store(tmp_path)
    fid = FeatureId("smollm2-135m", "blocks.1.mlp.hook_post", "neuron", 3)
    with store.run("test", {}) as run:
        store.write("features", [{**fid.to_record(), "label": "no stats"}], run_id=run)
    at = _run(monkeypatch, tmp_path, "feature", feature=fid.key)
    box = "\n".join(m.value for m in at.markdown)
    assert "no suggested strength" in box and "[Steer this feature](steering?feature=" in box
