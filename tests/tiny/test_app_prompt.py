"""The Prompt page under AppTest on a tiny llama: nothing runs before Run, one forward pass feeds
every view, the URL carries the prompt and the view, BOS is left out of the rankings by default."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from app import live
from helpers.paths import REPO
from interp.methods.lenses import TunedLens, TunedLensConfig, TunedLensTraining, compare_lenses, lens_grid
from interp.methods.lenses.store import save_tuned_lens
from interp.models.adapter import ModelAdapter
from interp.store import Store

PAGE = REPO / "app" / "views" / "prompt.py"


@pytest.fixture(scope="module")
def tiny(tiny_models):
    return tiny_models["llama"]


@pytest.fixture(scope="module")
def store_root(tmp_path_factory, tiny, tiny_dirs):
    """A store that knows the tiny llama (so the page may load it) and holds a tuned lens for it."""
    root = tmp_path_factory.mktemp("prompt_store")
    store = Store(root)
    with store.run("test", {}) as run_id:
        tiny.record(store, run_id)
        lens = TunedLens.identity(tiny)
        lens.bias[0] += 0.5  # not the logit lens: the page must show this one when asked for the tuned lens
        training = TunedLensTraining(lens, TunedLensConfig(tokens=15, ctx_len=16), [1.0], 15, 0.1)
        save_tuned_lens(store, tiny, training, compare_lenses(tiny, tiny.to_tokens(["The cat sat on"]), lens), run_id)
    return root


@pytest.fixture
def passes(monkeypatch):
    """Counts every forward pass of any model; the app's caches start empty."""
    st.cache_resource.clear()
    st.cache_data.clear()
    calls = []
    real = ModelAdapter.run
    monkeypatch.setattr(ModelAdapter, "run", lambda self, *a, **k: calls.append(a[0] if a else None) or real(self, *a, **k))
    return calls


@pytest.fixture
def page(monkeypatch, store_root, tiny_dirs):
    def run(**params) -> AppTest:
        monkeypatch.setenv("INTERP_STORE", str(store_root))
        at = AppTest.from_file(str(PAGE), default_timeout=120)
        at.query_params["model"] = str(tiny_dirs["llama"])
        for key, value in params.items():
            at.query_params[key] = value
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at
    return run


def _prompt_box(at):
    return next(t for t in at.text_input if t.label == "Prompt")


def _figure(at, index: int = 0) -> dict:
    return json.loads(at.get("plotly_chart")[index].proto.spec)


def _array(value) -> np.ndarray:
    """A figure's array: plain lists, or plotly's typed-array form (dtype, base64 bytes, shape)."""
    if isinstance(value, dict):
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        return flat.reshape([int(n) for n in str(value.get("shape", len(flat))).split(",")])
    return np.array(value)


def test_typing_computes_nothing_until_run(page, passes, tiny):
    expected = live.prediction(tiny, "The dog ate the bone")
    passes.clear()
    at = page()
    assert "press Run" in at.info[0].value and not at.dataframe and passes == []
    _prompt_box(at).input("The dog ate the bone")
    at.run()
    assert not at.dataframe and passes == [] and "prompt" not in at.query_params  # typed, not submitted
    _prompt_box(at).input("The dog ate the bone")
    next(b for b in at.button if b.label == "Run").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.query_params["prompt"] == "The dog ate the bone" and len(passes) == 1  # one pass for every view
    assert at.dataframe[0].value["token"].tolist() == expected["token"].tolist()
    at.run()  # a rerun (any widget) reads the cached pass
    assert len(passes) == 1


def test_active_units_leave_bos_out_by_default(page, passes, tiny):
    prompt = "The cat sat on the mat"
    n = tiny.info.n_layers
    expected = live.active_neurons(tiny, prompt, sorted({0, n // 2, n - 1}), k=3)
    with_bos = live.active_neurons(tiny, prompt, sorted({0, n // 2, n - 1}), k=3, include_bos=True)
    passes.clear()
    at = page(prompt=prompt)
    table = at.dataframe[1].value
    assert table[["layer", "index", "pos"]].values.tolist() == expected.table[["layer", "index", "pos"]].values.tolist()
    assert (table["pos"] >= 1).all()
    assert len(_figure(at)["data"][0]["x"]) == len(tiny.to_str_tokens(prompt)) - 1  # heatmap columns: no BOS
    next(c for c in at.checkbox if c.label == "Include the BOS position").check()
    at.run()
    assert at.dataframe[1].value["index"].tolist() == with_bos.table["index"].tolist()
    assert len(_figure(at)["data"][0]["x"]) == len(tiny.to_str_tokens(prompt))
    assert len(passes) == 1


def test_a_link_opens_the_lens_grid(page, passes, tiny):
    prompt = "The capital of France is"
    grid = lens_grid(tiny, prompt)
    passes.clear()
    at = page(prompt=prompt, view="Lens")
    assert at.query_params["view"] == "Lens" and len(passes) == 1
    heat = _figure(at)["data"][0]
    assert heat["type"] == "heatmap" and heat["y"] == ["embed", "0", "1"]
    np.testing.assert_allclose(_array(heat["z"]), grid.top_probs[:, :, 0], rtol=1e-5)
    assert [cell for row in heat["text"] for cell in row][-1] == repr(grid.top_tokens[-1, -1, 0])[1:-1]
    lens = next(r for r in at.radio if r.label == "Lens")
    assert lens.options == ["Logit lens", "Tuned lens"]
    lens.set_value("Tuned lens")
    at.run()
    tuned = _figure(at)["data"][0]
    moved = (_array(tuned["z"]) != _array(heat["z"])).any(1)
    assert moved.tolist() == [True, False, False]  # only the shifted row moves
    assert len(passes) == 1


def test_generation_runs_only_on_its_button(page, passes):
    at = page(prompt="The cat sat", view="Generate")
    assert len(passes) == 1 and "Press Generate" in at.caption[0].value
    next(b for b in at.button if b.label == "Generate").click()
    at.run()
    frame = at.dataframe[1].value
    assert frame["run"].tolist()[0] == "clean" and all(isinstance(t, str) for t in frame["continuation"])
    assert len(passes) > 1  # the continuations' own passes
