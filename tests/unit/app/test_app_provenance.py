"""The ObsProp page names the run (id, command, start) that wrote each table it shows."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from helpers.app_store import MODEL, populate
from helpers.paths import REPO


def test_obsprop_page_names_the_run_of_every_table(monkeypatch, tmp_path):
    store = populate(tmp_path / "store", n_layers=1, n_neurons=2, examples=False)
    runs = store.read("runs")
    obsprop_run = runs[runs["command"] == "interp obsprop"].iloc[0]
    with store.run("interp obsprop --model smollm2-135m --observable ' she' '- he'", {}) as other:
        store.write("results", [{"name": "obsprop_ablation", "key": f"{MODEL}/she_vs_he",
                                 "payload": {"rows": [{"component": "L0H1", "effect": -1.0}]}}], run_id=other)
    monkeypatch.setenv("INTERP_STORE", str(store.root))
    at = AppTest.from_file(str(REPO / "app" / "views" / "obsprop.py"), default_timeout=60).run()
    assert not at.exception and not at.error
    captions = [c.value for c in at.caption]
    started = f"{obsprop_run['started_at']:%Y-%m-%d %H:%M:%S}"
    ranking = next(c for c in captions if c.startswith("Ranking and feature vectors"))
    assert f"`{obsprop_run['run_id']}`" in ranking and "`interp obsprop`" in ranking and started in ranking
    ablation = next(c for c in captions if c.startswith("Ablation effects"))
    assert f"`{other}`" in ablation and "another run than the ranking's" in ablation
    assert any(c.startswith(f"{MODEL}/pronoun from run `{obsprop_run['run_id']}`") for c in captions)
