"""Clamping verification on tiny models with planted neurons (known answers) and on SmolLM2."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interp.jobs.clamp_check import check_neuron, check_specialised
from interp.jobs.neuron_map import map_model
from interp.methods.neurons.agreement import agreement_from_ids, top_token_agreement
from interp.methods.neurons.clamping import ClampConfig, clamp_sweep, greedy_generate, rowwise_clamp
from interp.methods.neurons.decoding import DecodeConfig, decode_neurons, decode_one
from interp.models import ClampUnit, load_model
from interp.store import Store
from helpers.neuron_models import planted_llama


LAYER, PLANTED, SILENT = 1, 5, 9


def _self_decoding_tokens(adapter, n: int) -> list[int]:
    """Tokens t whose unembedding row decodes to t itself (u_t . u_t beats u_t . u_j)."""
    W_U = adapter.weights.W_U
    gram = W_U.T @ W_U
    ok = torch.nonzero(gram.argmax(1) == torch.arange(gram.shape[0])).view(-1)
    special = {adapter.tokenizer.pad_token_id, adapter.tokenizer.bos_token_id, adapter.tokenizer.eos_token_id}
    return [int(t) for t in ok if int(t) not in special][:n]


@pytest.fixture(scope="module")
def planted(tiny_dirs, tiny_models, tmp_path_factory):
    """Tiny Llama with neuron 1:5 writing token t's unembedding and neuron 1:9 writing nothing."""
    target = _self_decoding_tokens(tiny_models["llama"], 1)[0]
    path = planted_llama(tiny_dirs["llama"], tmp_path_factory.mktemp("planted") / "planted",
                         {(LAYER, PLANTED): target, (LAYER, SILENT): None})
    return load_model(str(path)), target


def test_planted_neuron_decodes_to_its_token(planted):
    model, target = planted
    assert int(decode_one(model, LAYER, PLANTED, "down").top_ids[0, 0]) == target


def test_rowwise_clamp_equals_one_clampunit_run_per_row(tiny_models):
    model = tiny_models["llama"]
    site = model.sites(0).mlp_hidden
    tokens = model.to_tokens("The dog ate the bone")
    units, values = torch.tensor([3, -1, 7]), torch.tensor([4.0, 0.0, -2.0])
    for last in (None, torch.full((3,), tokens.shape[1] - 1)):
        batched = model.logits(tokens.expand(3, -1), interventions=[rowwise_clamp(site, units, values, last)])
        for r in range(3):
            clamps = [] if units[r] < 0 else [ClampUnit(site, int(units[r]), float(values[r]),
                                                        None if last is None else -1)]
            assert torch.allclose(batched[r], model.logits(tokens, interventions=clamps)[0], atol=1e-5)


def test_dose_response_of_a_planted_neuron_rises_and_beats_random_controls(planted):
    model, target = planted
    config = ClampConfig(values=(0.0, 10.0, 40.0, 160.0), n_controls=6)
    r = clamp_sweep(model, LAYER, PLANTED, "She said that", target, config)
    assert np.all(np.diff(r.target_probs[1:]) > 0)  # monotone in the clamp value once switched on
    assert r.target_probs[-1] > 5 * r.baseline_prob
    assert r.beats_all and r.beats_mean
    assert r.control_probs.shape == (6, 4) and PLANTED not in r.control_indices
    assert np.all(r.kl >= -1e-6) and r.kl[-1] > r.kl[1]


def test_a_neuron_that_writes_nothing_changes_nothing(planted):
    model, target = planted
    r = clamp_sweep(model, LAYER, SILENT, "The cat sat", target, ClampConfig(values=(0.0, 50.0), n_controls=2))
    assert np.allclose(r.target_probs, r.baseline_prob, atol=1e-6)
    assert np.allclose(r.kl, 0.0, atol=1e-6)
    assert not r.beats_mean or r.rise <= 1e-6


def test_clamped_generation_repeats_the_planted_token(planted):
    model, target = planted
    text = greedy_generate(model, "The cat", 4, [ClampUnit(model.sites(LAYER).mlp_hidden, PLANTED, 500.0)])
    assert text == model.decode([target] * 4)


def test_store_results_and_report_find_the_planted_neuron(planted, tmp_path):
    model, target = planted
    store = Store(tmp_path / "store")
    map_model(store, model, directions=("down",), top_k=3, progress=False)
    r = check_neuron(store, model, LAYER, PLANTED, "The cat", ClampConfig(values=(0.0, 40.0), n_controls=3))
    assert r.target_id == target  # taken from the stored decoding
    row = store.read("results", where={"name": "clamp"})
    assert len(row) == 1 and '"beats_all": true' in row["payload"].iloc[0]
    report = check_specialised(store, model, n=3, prompts=("The cat",),
                               config=ClampConfig(values=(0.0, 40.0), n_controls=4, neutral_prompts=()))
    table = report.table()
    assert (LAYER, PLANTED) in set(zip(table["layer"], table["index"]))  # the most specialised neuron
    assert bool(table.set_index("index").loc[PLANTED, "beats_all"])
    assert 0.0 <= report.fraction_beats_mean <= 1.0
    assert len(store.read("results", where={"name": "clamp_report"})) == 1


def test_agreement_of_a_copy_with_k_rewritten_neurons_is_known(tiny_dirs, tiny_models, tmp_path):
    base = tiny_models["llama"]
    before = decode_neurons(base, 0, "down", DecodeConfig(top_k=1)).top_ids[:, 0]
    tokens = _self_decoding_tokens(base, 20)
    plants = {}
    for neuron in (2, 11, 40):  # plant a token that is not the neuron's current top token
        plants[(0, neuron)] = next(t for t in tokens if t != int(before[neuron]))
    other = load_model(str(planted_llama(tiny_dirs["llama"], tmp_path / "copy", plants)))
    result = top_token_agreement(base, other, direction="down")
    n = 2 * base.info.d_mlp
    assert result.n_neurons == n
    assert result.fraction == pytest.approx((n - 3) / n)
    assert sorted(result.disagreeing) == [(0, 2), (0, 11), (0, 40)]
    assert result.per_layer[1] == 1.0
    assert top_token_agreement(base, base, direction="up").fraction == 1.0
    with pytest.raises(ValueError, match="different layers"):
        agreement_from_ids({0: np.zeros(3)}, {1: np.zeros(3)})


def test_figures_show_the_computed_numbers(planted, tmp_path):
    from interp.viz.neurons import dose_response_figure, specialisation_overview, token_table_figure

    model, target = planted
    r = clamp_sweep(model, LAYER, PLANTED, "The cat", target, ClampConfig(values=(0.0, 40.0), n_controls=3,
                                                                         neutral_prompts=()))
    fig = dose_response_figure(r, model.decode([target]))
    assert len(fig.data) == 4 and list(fig.data[-1].y) == list(r.target_probs)
    store = Store(tmp_path / "store")
    map_model(store, model, directions=("down",), top_k=3, progress=False)
    neurons = store.features(model="planted", kind="neuron")
    overview = specialisation_overview(neurons)
    assert len(overview.data[0].y) == 2 * model.info.d_mlp
    assert list(overview.data[0].y) == list(neurons["logit_z"])  # the ranking score, not the saturating prob
    assert overview.layout.yaxis.type == "linear"
    assert specialisation_overview(neurons, score="specialisation").layout.yaxis.type == "log"
    with pytest.raises(ValueError, match="score must be one of"):
        specialisation_overview(neurons, score="max_act")
    tokens = store.read("feature_tokens", where={"model": "planted", "index": PLANTED,
                                                 "site": model.sites(LAYER).mlp_hidden})
    table = token_table_figure(tokens)
    assert table.data[0].cells.values[0][0].startswith(repr(model.decode([target])))


def test_cli_clamp_and_report(planted, tmp_path, capsys):
    import json

    from interp.cli import main

    model, target = planted
    root = str(tmp_path / "store")
    path = model.name  # the planted model's folder
    assert main(["map-neurons", "--model", path, "--top-k", "2", "--store", root]) == 0
    assert main(["clamp", "--model", path, "--neuron", f"{LAYER}:{PLANTED}", "--value", "40", "--prompt", "The cat",
                 "--controls", "3", "--format", "json", "--store", root]) == 0
    out = capsys.readouterr().out
    payload = json.loads(out[out.index("{"):])
    assert payload["target_id"] == target and payload["values"] == [0.0, 10.0, 20.0, 40.0]
    assert payload["beats_all"] is True
    assert main(["clamp-report", "--model", path, "--n", "2", "--controls", "3", "--value", "0", "--value", "40",
                 "--format", "json", "--store", root]) == 0
    out = capsys.readouterr().out
    report = json.loads(out[out.index("{"):])
    assert (LAYER, PLANTED) in {(n["layer"], n["index"]) for n in report["neurons"]}
    assert main(["clamp", "--model", path, "--neuron", "1-5", "--value", "1", "--prompt", "x", "--store", root]) == 2
