"""The prompt view's live computations (`app.live`) on a tiny model, and on SmolLM2 via AppTest."""

from __future__ import annotations


import pytest

from helpers.paths import REPO


PROMPT = "The capital of France is"


@pytest.mark.model
def test_prompt_page_live_on_smollm2(monkeypatch, tmp_path, smollm2):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("INTERP_STORE", str(tmp_path / "store"))
    page = REPO / "app" / "views" / "prompt.py"
    at = AppTest.from_file(str(page), default_timeout=240)
    at.query_params["model"] = "smollm2-135m"
    at.query_params["prompt"] = PROMPT
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    prediction = at.dataframe[0].value
    assert prediction.iloc[0]["token"] == repr(" Paris")
    continuation = next(d.value for d in at.dataframe if "continuation" in d.value)
    assert len(continuation) == 2 and all(isinstance(t, str) and t for t in continuation["continuation"])
    charts = len(at.get("plotly_chart"))
    at.toggle(key="live_attr").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.get("plotly_chart")) == charts + 1
