"""The Dictionaries page shows stored k-sparse probing, TPP and meta-structure results of two
dictionaries side by side."""

from __future__ import annotations

import pytest
import torch
from streamlit.testing.v1 import AppTest

from helpers.app_store import populate
from helpers.paths import REPO
from interp.methods.dictionary_evals.meta import MetaScores, MetaStructureResult
from interp.methods.dictionary_evals.probing import SparseProbingResult
from interp.methods.dictionary_evals.store import save_meta, save_probing, save_tpp
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
        save_meta(store, name, MetaStructureResult(4608, 576, 1152, 4, MetaScores(tpp + 0.5, 3.9, 0.8),
                                                   MetaScores(0.2, 4.0, 1.0), 900),
                  {"model": "m", "kind": "transcoder", "arch": "topk", "d_sae": 4608}, run)
    store.finish_run(run, "done")


def test_dictionaries_page_shows_probing_tpp_and_meta_side_by_side(tmp_path, monkeypatch):
    root = tmp_path / "store"
    _results(populate(root))
    monkeypatch.setenv("INTERP_STORE", str(root))
    at = AppTest.from_file(str(REPO / "app" / "views" / "dictionaries.py"), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.get("plotly_chart")) == 5  # L0 vs CE, density, probing, TPP, meta-structure
    probing = next(d.value for d in at.dataframe if "k=5" in d.value)
    assert probing.set_index("dictionary")["k=5"].to_dict() == {"tc-l2": 0.8, "tc-l2-k32": 0.9}
    tpp = next(d.value for d in at.dataframe if "tpp" in d.value)
    assert tpp.set_index("dictionary")["tpp"].to_dict() == pytest.approx({"tc-l2": 0.1, "tc-l2-k32": 0.3})
    assert tpp["unintended_drop"].tolist() == pytest.approx([0.3, 0.1])
    meta = next(d.value for d in at.dataframe if "baseline_explained_variance" in d.value)
    assert meta.set_index("dictionary")["explained_variance"].to_dict() == pytest.approx({"tc-l2": 0.6,
                                                                                           "tc-l2-k32": 0.8})
    assert meta["baseline_explained_variance"].tolist() == [0.2, 0.2] and meta["width"].tolist() == [1152, 1152]


def test_dictionaries_page_warns_of_a_dictionary_that_does_not_fit(tmp_path, monkeypatch):
    """A diverged dictionary (held-out FVU 13.9, as the k-8 run stored it) is named in a warning;
    the two fitted ones of the fixture (FVU 1/32, 1/64) are not."""
    root = tmp_path / "store"
    store = populate(root)
    run = store.start_run("interp train", {}, seed=0)
    store.write("dictionaries", [{
        "name": "tc-l2-k8", "model": "m", "site": "blocks.2.ln2.hook_normalized", "hook_out": "blocks.2.hook_mlp_out",
        "kind": "transcoder", "arch": "topk", "config": {"k": 8},
        "metrics": {"l0": 8.0, "fvu": 13.875, "ce_clean": 3.0, "ce_spliced": 3.2, "delta_ce": 0.2,
                    "ce_recovered": -0.97}}], run_id=run)
    store.finish_run(run, "done")
    monkeypatch.setenv("INTERP_STORE", str(root))
    at = AppTest.from_file(str(REPO / "app" / "views" / "dictionaries.py"), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    (warning,) = [w.value for w in at.warning]
    assert warning.startswith("1 of 3 dictionaries reconstruct their target no better than its mean")
    assert "tc-l2-k8 (FVU 13.9)" in warning and "tc-l2-k32" not in warning and "tc-l2 " not in warning
