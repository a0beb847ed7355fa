"""The clamp verdict: claimed only when the permutation test against the controls finds it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interp.methods.neurons.clamping import MIN_CONTROLS, ClampResult
from interp.models import load_model
from helpers.neuron_models import planted_llama

LAYER, PLANTED, SILENT = 1, 5, 9


def _result(rise: float, control_rises: list[float]) -> ClampResult:
    values = np.array([0.0, 10.0])
    return ClampResult(LAYER, PLANTED, 3, "p", values, 0.1, np.array([0.1, 0.1 + rise]),
                       np.arange(len(control_rises)),
                       np.array([[0.1, 0.1 + c] for c in control_rises]).reshape(-1, 2), np.full(2, np.nan))


def test_permutation_p_value_by_hand():
    # 19 controls below the rise: p = (1 + 0) / 20 = 0.05, not < 0.05.
    assert _result(0.5, [0.0] * 19).p_value == pytest.approx(0.05)
    assert not _result(0.5, [0.0] * 19).significant
    # 20 controls below: p = 1/21 < 0.05; two of 20 at or above: p = 3/21.
    assert _result(0.5, [0.0] * 20).significant
    assert _result(0.5, [0.0] * 18 + [0.5, 0.7]).p_value == pytest.approx(3 / 21)
    assert np.isnan(_result(0.5, []).p_value) and not _result(0.5, []).significant
    assert MIN_CONTROLS == 20


@pytest.fixture(scope="module")
def planted(tiny_dirs, tiny_models, tmp_path_factory):
    """Tiny Llama (d_mlp 64) with neuron 1:5 writing token t's unembedding and 1:9 writing nothing."""
    adapter = tiny_models["llama"]
    W_U = adapter.weights.W_U
    gram = W_U.T @ W_U
    special = {adapter.tokenizer.pad_token_id, adapter.tokenizer.bos_token_id, adapter.tokenizer.eos_token_id}
    ok = [int(t) for t in torch.nonzero(gram.argmax(1) == torch.arange(gram.shape[0])).view(-1)]
    target = next(t for t in ok if t not in special)
    path = planted_llama(tiny_dirs["llama"], tmp_path_factory.mktemp("verdict") / "planted",
                         {(LAYER, PLANTED): target, (LAYER, SILENT): None})
    return load_model(str(path)), target


def _clamp(model, neuron: int, controls: int, store, capsys) -> str:
    from interp.cli import main

    assert main(["clamp", "--model", model.name, "--neuron", f"{LAYER}:{neuron}", "--value", "40",
                 "--prompt", "The cat", "--controls", str(controls)]
                + ["--store", store]) == 0
    return capsys.readouterr().out


def test_silent_neuron_gets_no_beats_claim(planted, tmp_path, capsys):
    model, _ = planted
    out = _clamp(model, SILENT, 24, str(tmp_path / "s"), capsys)
    verdict = out.strip().splitlines()[-1]
    assert "beats" not in out and "not significant" in verdict and "permutation test vs 24" in verdict


def test_planted_neuron_beats_24_controls_significantly(planted, tmp_path, capsys):
    model, _ = planted
    out = _clamp(model, PLANTED, 24, str(tmp_path / "s"), capsys)
    assert "beats the random controls" in out and "p = 0.040" in out  # 1 / 25
    assert "e-" in out or "e+" in out  # probabilities in scientific notation


def test_few_controls_say_how_many_a_verdict_needs(planted, tmp_path, capsys):
    model, _ = planted
    out = _clamp(model, PLANTED, 3, str(tmp_path / "s"), capsys)
    assert "beats" not in out and "p = 0.250" in out and "needs --controls >= 20" in out


def test_report_table_counts_significant_neurons_by_hand():
    from interp.methods.neurons.clamping import ClampReport

    strong = _result(0.5, [0.0] * 20)  # p = 1/21
    weak = ClampResult(LAYER, SILENT, 3, "p", np.array([0.0, 10.0]), 0.1, np.array([0.1, 0.1]), np.arange(20),
                       np.array([[0.1, 0.1 + 0.01 * j] for j in range(20)]), np.full(2, np.nan))  # 20 of 20 >= 0
    table = ClampReport((strong, weak)).table()
    assert table["p_value"].tolist() == pytest.approx([1 / 21, 21 / 21])
    assert table["significant"].tolist() == [True, False]
    assert ClampReport((strong, weak)).fraction_significant == 0.5
