"""The Prompt page live on SmolLM2 under AppTest: prediction, active units, the lens grid, continuations
on request and live attributions."""

from __future__ import annotations

import json

import pytest

from helpers.paths import REPO

PROMPT = "The capital of France is"


def _page(monkeypatch, tmp_path, **params):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("INTERP_STORE", str(tmp_path / "store"))
    at = AppTest.from_file(str(REPO / "app" / "views" / "prompt.py"), default_timeout=240)
    for key, value in {"model": "smollm2-135m", "prompt": PROMPT, **params}.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.mark.model
def test_prompt_page_live_on_smollm2(monkeypatch, tmp_path, smollm2):
    at = _page(monkeypatch, tmp_path)
    assert at.dataframe[0].value.iloc[0]["token"] == repr(" Paris")
    units = at.dataframe[1].value
    assert set(units["layer"]) == {0, 15, 29} and (units["pos"] >= 1).all()  # BOS left out by default

    lens = _page(monkeypatch, tmp_path, view="Lens")
    heat = json.loads(lens.get("plotly_chart")[0].proto.spec)["data"][0]
    assert heat["y"][0] == "embed" and heat["y"][-1] == "29" and len(heat["y"]) == 31
    assert heat["text"][-1][-1] == " Paris"  # the last row is the model's own prediction

    gen = _page(monkeypatch, tmp_path, view="Generate")
    assert len(gen.dataframe) == 1  # the prediction only: nothing generated before the button
    next(b for b in gen.button if b.label == "Generate").click()
    gen.run()
    continuation = gen.dataframe[1].value
    assert len(continuation) == 2 and all(isinstance(t, str) and t for t in continuation["continuation"])

    attr = _page(monkeypatch, tmp_path, view="Attributions")
    charts = len(attr.get("plotly_chart"))
    attr.toggle(key="live_attr").set_value(True).run()
    assert not attr.exception, [e.value for e in attr.exception]
    assert len(attr.get("plotly_chart")) == charts + 1
