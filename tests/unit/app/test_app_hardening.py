"""Dashboard hardening under AppTest: crafted URLs show one short line (never a traceback or a
server path), the Prompt page loads only known models through a bounded LRU cache, and a stored
dictionary path outside the store is refused."""

from __future__ import annotations

import tomllib

import pytest
from streamlit.testing.v1 import AppTest

from helpers.app_store import populate
from helpers.paths import REPO
from interp.store import Store, StoreError

VIEWS = REPO / "app" / "views"
CRAFTED = ["a/" * 100, "a/" * 100 + "blocks.0.mlp.hook_post/neuron/1", "a" * 300 + "/x/blocks.0.mlp.hook_post/neuron/1"]


@pytest.fixture(scope="module")
def store_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("hardening_store")
    populate(root, n_layers=1, n_neurons=4, examples=False)
    return root


def _run(monkeypatch, page: str, root, **params) -> AppTest:
    monkeypatch.setenv("INTERP_STORE", str(root))
    at = AppTest.from_file(str(VIEWS / f"{page}.py"), default_timeout=60)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    return at


def _every_text(at: AppTest) -> str:
    parts = []
    for kind in ("exception", "error", "warning", "info", "markdown", "caption", "text", "code", "json"):
        parts += [str(getattr(e, "value", "")) for e in getattr(at, kind)]
    return "\n".join(parts)


@pytest.mark.parametrize("key", CRAFTED, ids=["a-slash-x100", "a-slash-x100-site", "long-model"])
def test_crafted_feature_key_shows_one_short_line(monkeypatch, store_root, key):
    at = _run(monkeypatch, "feature", store_root, feature=key)
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.error) == 1
    message = at.error[0].value
    assert "\n" not in message and len(message) <= 300
    shown = _every_text(at)
    assert "Traceback" not in shown and "/work/" not in shown and str(store_root) not in shown


def test_page_wrapper_turns_any_error_into_a_line(monkeypatch, tmp_path):
    script = tmp_path / "boom.py"
    script.write_text("from app import state\nimport streamlit as st\n"
                      "with state.page():\n    st.write('before')\n    raise RuntimeError('secret /work/x path')\n")
    monkeypatch.syspath_prepend(str(REPO))
    at = AppTest.from_file(str(script), default_timeout=30).run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "This page hit an internal error (RuntimeError); the details are in the server log."]
    assert "secret" not in _every_text(at)


def test_every_page_runs_inside_the_wrapper():
    for path in VIEWS.glob("*.py"):
        assert "\nwith state.page():\n" in path.read_text(), f"{path.name} does not run in state.page()"


def test_unknown_model_directory_is_refused(monkeypatch, store_root, tmp_path):
    (tmp_path / "config.json").write_text("{}")  # looks like a HF model directory, but no store knows it
    at = _run(monkeypatch, "prompt", store_root, model=str(tmp_path))
    assert not at.exception
    warning = "\n".join(w.value for w in at.warning)
    assert "could not be loaded" in warning and "is not a model of the registry or of this store" in warning
    assert "smollm2-135m" in warning  # names what is valid


def test_model_key_is_canonical_for_every_spelling(tmp_path, monkeypatch):
    from app import state

    folder = tmp_path / "tiny_llama"
    folder.mkdir()
    spellings = [str(folder), str(folder) + "/", str(tmp_path / "." / "tiny_llama"),
                 str(tmp_path / "tiny_llama" / ".." / "tiny_llama")]
    keys = {state.model_key(s, stored=["tiny_llama"]) for s in spellings}
    assert keys == {str(folder.resolve())}
    assert state.model_key("smollm2-135m", stored=[]) == "smollm2-135m"
    with pytest.raises(ValueError, match="not a model of the registry or of this store"):
        state.model_key(str(folder), stored=["other"])
    with pytest.raises(ValueError, match="not a model"):
        state.model_key("\x00" + "a/" * 5000, stored=[])


def test_model_cache_evicts_the_least_recently_used(monkeypatch):
    from app import state

    loads = []
    cache = state.ModelCache(2, lambda key: loads.append(key) or f"model:{key}")
    assert cache.get("a") == "model:a" and cache.get("b") == "model:b"
    assert cache.get("a") == "model:a"  # hit: a becomes the most recent
    cache.get("c")  # evicts b
    assert cache.keys() == ["a", "c"] and loads == ["a", "b", "c"]
    cache.get("b")  # b is loaded again, evicting a
    assert loads == ["a", "b", "c", "b"] and cache.keys() == ["c", "b"]
    monkeypatch.setenv(state.MAX_MODELS_ENV, "3")
    assert state.max_models() == 3
    monkeypatch.setenv(state.MAX_MODELS_ENV, "0")
    with pytest.raises(ValueError, match="INTERP_APP_MAX_MODELS='0' must be a whole number >= 1"):
        state.max_models()
    monkeypatch.delenv(state.MAX_MODELS_ENV)
    assert state.max_models() == state.DEFAULT_MAX_MODELS == 2


def test_dictionary_path_outside_the_store_is_refused(tmp_path):
    from app import state
    from interp.methods.complexity.selection import _load_encoder

    store = Store(tmp_path / "store")
    with store.run("test", {}) as run:
        store.write("dictionaries", [
            {"name": "evil", "model": "m", "site": "s", "kind": "sae", "arch": "topk", "path": "../../outside"},
            {"name": "abs", "model": "m", "site": "s", "kind": "sae", "arch": "topk", "path": str(tmp_path)},
            {"name": "ok", "model": "m", "site": "s", "kind": "sae", "arch": "topk", "path": "dictionaries/ok"}],
            run_id=run)
    for name in ("evil", "abs"):
        with pytest.raises(StoreError, match=f"dictionary '{name}': stored path .* points outside the store"):
            state.stored_dictionary_dir(store, name)
        row = store.read("dictionaries", where={"name": name}).iloc[0].to_dict()
        with pytest.raises(StoreError, match="points outside the store"):
            _load_encoder(store, name, row)
    assert state.stored_dictionary_dir(store, "ok") == store.dictionary_dir("ok")


def test_shipped_streamlit_config_binds_to_localhost():
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"
    assert config["client"]["showErrorDetails"] == "none"
    from interp.cli.app import command

    cmd = command(8501)
    assert cmd[cmd.index("--server.address") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--client.showErrorDetails") + 1] == "none"
