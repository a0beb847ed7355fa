"""The Dictionaries page shows stored k-sparse probing and TPP results of two dictionaries side by side."""

from __future__ import annotations

import pytest
import torch
from streamlit.testing.v1 import AppTest

from helpers.app_store import populate
from helpers.paths import REPO
from interp.methods.dictionary_evals.probing import SparseProbingResult
from interp.methods.dictionary_evals.store import save_probing, save_tpp
from interp.methods.dictionary_evals.tpp import TPPResult
from interp.store import Store


def _results(store: Store) -> None:
    run = store.start_run("interp dict-eval", {}, seed=0)
    for name, acc, tpp in (("tc-l2", (0.6, 0.8), 0.1), ("tc-l2-k32", (0.7, 0.9), 0.3)):
        save_probing(store, name, [SparseProbingResult("sentiment", (1, 5), acc, 0.92, (3, 1, 0, 2, 4), (1.0,) * 5,
                                                       60, 20)],
                     {"model": "m", "kind": "transcoder", "arch": "topk"}, run)
        t = torch.tensor
        save_tpp(store, name, TPPResult(("sentiment", "code_language"), (2,), (0.9, 1.0), t([[[0.5, 1.0], [0.9, 0.6]]]),
                                        t([[0.4, 0.4]]), t([[0.4 - tpp, 0.4 - tpp]]), t([tpp]), ((1,), (2,))),
                 {"model": "m", "kind": "transcoder", "arch": "topk"}, run)
    store.finish_run(run, "done")


def test_dictionaries_page_shows_probing_and_tpp_side_by_side(tmp_path, monkeypatch):
    root = tmp_path / "store"
    _results(populate(root))
    monkeypatch.setenv("INTERP_STORE", str(root))
    at = AppTest.from_file(str(REPO / "app" / "views" / "dictionaries.py"), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.get("plotly_chart")) == 4  # L0 vs CE, density, probing, TPP
    probing = next(d.value for d in at.dataframe if "k=5" in d.value)
    assert probing.set_index("dictionary")["k=5"].to_dict() == {"tc-l2": 0.8, "tc-l2-k32": 0.9}
    tpp = next(d.value for d in at.dataframe if "tpp" in d.value)
    assert tpp.set_index("dictionary")["tpp"].to_dict() == pytest.approx({"tc-l2": 0.1, "tc-l2-k32": 0.3})
    assert tpp["unintended_drop"].tolist() == pytest.approx([0.3, 0.1])
