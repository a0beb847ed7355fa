"""`interp.methods.neurons.store`: the clamp-sweep record round trip and the neuron-map markers."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from interp.methods.neurons.clamping import ClampResult
from interp.methods.neurons.store import (ClampRecord, clamp_payloads, completed_units, marker_key, read_clamps,
                                          write_clamp)
from interp.store import Store


def _result(index: int = 4, prompt: str = "The cat", kl=(0.1, float("nan"))) -> ClampResult:
    return ClampResult(layer=2, index=index, target_id=17, prompt=prompt, values=np.array([0.0, 8.0]),
                       baseline_prob=0.05, target_probs=np.array([0.04, 0.5]), control_indices=np.array([1, 9]),
                       control_probs=np.array([[0.05, 0.06], [0.04, 0.07]]), kl=np.array(kl),
                       generation=" cat cat", baseline_generation=None)


def test_key_names_model_layer_neuron_and_prompt_hash():
    record = ClampRecord("tiny-llama", _result(), " cat")
    assert record.key == "tiny-llama/L2/N4/" + hashlib.sha1(b"The cat").hexdigest()[:12]
    assert record.key.startswith(ClampRecord.neuron_prefix("tiny-llama", 2, 4))


def test_payload_round_trip_keeps_every_field():
    record = ClampRecord("tiny-llama", _result(), " cat")
    payload = record.to_payload()
    assert payload["model"] == "tiny-llama" and payload["target"] == " cat"
    assert payload["kl"] == [0.1, None]  # NaN stored as JSON null
    assert payload["rise"] == pytest.approx(0.45) and payload["beats_all"] is True
    back = ClampRecord.from_payload(payload)
    assert (back.model, back.target) == ("tiny-llama", " cat")
    r, orig = back.result, record.result
    assert (r.layer, r.index, r.target_id, r.prompt, r.generation, r.baseline_generation) == \
        (2, 4, 17, "The cat", " cat cat", None)
    for name in ("values", "target_probs", "control_indices", "control_probs"):
        np.testing.assert_array_equal(getattr(r, name), getattr(orig, name))
    assert r.control_probs.shape == (2, 2) and r.control_indices.dtype.kind == "i"
    assert r.kl[0] == 0.1 and np.isnan(r.kl[1])
    assert r.rise == orig.rise and r.beats_mean == orig.beats_mean


def test_a_malformed_payload_names_the_missing_field():
    payload = ClampRecord("m", _result()).to_payload()
    del payload["target_probs"]
    with pytest.raises(ValueError, match="target_probs"):
        ClampRecord.from_payload(payload)


def test_store_round_trip_reads_only_that_neurons_sweeps(tmp_path):
    store = Store(tmp_path)
    with store.run("pytest clamp") as run_id:
        write_clamp(store, ClampRecord("m", _result(4, "The cat"), " cat"), run_id)
        write_clamp(store, ClampRecord("m", _result(4, "A dog"), " cat"), run_id)
        write_clamp(store, ClampRecord("m", _result(40, "The cat"), " cat"), run_id)  # N40 shares the prefix N4
        write_clamp(store, ClampRecord("other", _result(4, "The cat"), " cat"), run_id)
    records = read_clamps(store, "m", 2, 4)
    assert sorted(r.result.prompt for r in records) == ["A dog", "The cat"]
    assert all(r.model == "m" and r.result.index == 4 for r in records)
    assert len(clamp_payloads(store, "m", 2, 40)) == 1 and read_clamps(store, "m", 3, 4) == []


def test_completed_units_needs_the_same_top_k(tmp_path):
    store = Store(tmp_path)
    with store.run("pytest markers") as run_id:
        store.write("results", [{"name": "neuron_map", "key": marker_key("m", 0, "down", "folded"),
                                 "payload": {"top_k": 5}},
                                {"name": "neuron_map", "key": marker_key("m", 1, "down", "folded"),
                                 "payload": {"top_k": 3}}], run_id=run_id)
    done = completed_units(store, "m", [0, 1, 2], [("down", "folded"), ("up", "folded")], top_k=5)
    assert done == {(0, "down", "folded")}
