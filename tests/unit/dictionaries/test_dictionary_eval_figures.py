"""The Dictionaries page's eval figures on hand-built tables."""

from __future__ import annotations

import pandas as pd
import pytest

from interp.viz.dictionaries import meta_structure_figure, sparse_probing_figure, tpp_figure


def test_sparse_probing_figure_has_a_panel_per_dataset_and_a_raw_line_per_dictionary():
    table = pd.DataFrame({"dictionary": ["a", "a", "b", "b", "a", "a"], "dataset": ["s", "s", "s", "s", "c", "c"],
                          "k": [1, 5, 1, 5, 1, 5], "accuracy": [0.6, 0.8, 0.7, 0.9, 0.5, 0.95],
                          "raw_accuracy": [0.92, 0.92, 0.92, 0.92, 1.0, 1.0]})
    fig = sparse_probing_figure(table)
    traces = [(t.name, t.xaxis, list(t.y)) for t in fig.data]
    assert traces == [("a", "x", [0.6, 0.8]), ("a (raw probe)", "x", [0.92, 0.92]), ("b", "x", [0.7, 0.9]),
                      ("b (raw probe)", "x", [0.92, 0.92]), ("a", "x2", [0.5, 0.95]),
                      ("a (raw probe)", "x2", [1.0, 1.0])]
    with pytest.raises(ValueError, match="raw_accuracy"):
        sparse_probing_figure(table.drop(columns=["raw_accuracy"]))


def test_tpp_figure_one_line_per_dictionary():
    table = pd.DataFrame({"dictionary": ["a", "a", "b"], "n": [5, 2, 2], "tpp": [0.3, 0.1, 0.2],
                          "intended_drop": [0.3, 0.1, 0.2], "unintended_drop": [0.0, 0.0, 0.0]})
    fig = tpp_figure(table)
    assert [(t.name, list(t.x), list(t.y)) for t in fig.data] == [("a", [2, 5], [0.1, 0.3]), ("b", [2], [0.2])]


def test_meta_structure_figure_puts_dictionaries_beside_their_random_baseline():
    table = pd.DataFrame({"dictionary": ["a", "b"], "explained_variance": [0.6, 0.4],
                          "baseline_explained_variance": [0.2, 0.25], "used_fraction": [0.9, 0.5],
                          "width": [1152, 576], "k": [4, 4]})
    fig = meta_structure_figure(table)
    assert [(t.name, t.xaxis, list(t.x), list(t.y)) for t in fig.data] == [
        ("decoder rows", "x", ["a", "b"], [0.6, 0.4]), ("random directions", "x", ["a", "b"], [0.2, 0.25]),
        ("meta-latents used", "x2", ["a", "b"], [0.9, 0.5])]
    assert list(fig.data[0].hovertext) == ["width 1152, k 4", "width 576, k 4"]
    with pytest.raises(ValueError, match="used_fraction"):
        meta_structure_figure(table.drop(columns=["used_fraction"]))


def test_no_fit_note_names_dictionaries_at_or_above_fvu_one_worst_first():
    import pandas as pd

    from interp.viz.dictionaries import no_fit_note

    table = pd.DataFrame({"name": ["a", "b", "c", "d"], "fvu": [0.31, 1.0, 4783.0, float("nan")]})
    assert no_fit_note(table) == (
        "2 of 4 dictionaries reconstruct their target no better than its mean (held-out FVU >= 1): "
        "c (FVU 4.78e+03), b (FVU 1). Training did not fit or diverged; their latents are not features to read.")
    assert no_fit_note(table[table["name"] == "a"]) is None
    assert no_fit_note(table.drop(columns="fvu")) is None


def test_kind_differences_pairs_each_k_and_skips_a_k_with_one_kind():
    """k 16: transcoder 4.02 vs SAE 4.05 -> -0.03, CE recovered [0.93, 0.97] vs [0.78, 0.82]
    disjoint; k 32: [0.85, 0.95] vs [0.90, 0.96] overlap; k 64 has an SAE only and is left out."""
    from interp.viz.dictionaries import kind_differences

    def row(kind, k, ce, rec, lo, hi):
        return {"kind": kind, "k": k, "l0": float(k), "ce_spliced": ce, "ce_recovered": rec,
                "ce_recovered_lo": lo, "ce_recovered_hi": hi}

    table = pd.DataFrame([row("sae", 16, 4.05, 0.8, 0.78, 0.82), row("transcoder", 16, 4.02, 0.95, 0.93, 0.97),
                          row("transcoder", 32, 4.04, 0.9, 0.85, 0.95), row("sae", 32, 4.03, 0.93, 0.90, 0.96),
                          row("sae", 64, 4.01, 0.97, 0.96, 0.98)])
    out = kind_differences(table)
    assert list(out["k"]) == [16, 32]
    assert out["spliced CE transcoder - SAE"].tolist() == pytest.approx([-0.03, 0.01])
    assert list(out["intervals"]) == ["disjoint", "overlap"]
    assert out["CE recovered transcoder"].iloc[0] == "0.950 [0.930, 0.970]"
