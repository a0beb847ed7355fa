"""The neuron map stores the logit z-score: features.logit_z and the per-end z in metrics equal
the method's, within the stated range; the probability column stays in [0, 1]."""

from __future__ import annotations

import json
import math

import numpy as np

from interp.jobs.neuron_map import map_model
from interp.methods.neurons.decoding import DecodeConfig, decode_neurons
from interp.store import Store


def test_features_hold_the_z_score_of_the_preferred_decoding(tmp_path, tiny_dirs, tiny_models):
    store = Store(tmp_path / "store")
    map_model(store, str(tiny_dirs["llama"]), directions=("up", "down"), top_k=3, progress=False)
    model = tiny_models["llama"]
    feats = store.features(model="llama", kind="neuron")
    feats = feats[feats["site"] == "blocks.1.mlp.hook_post"].sort_values("index")
    expected = decode_neurons(model, 1, "down", DecodeConfig(top_k=3))  # down/folded is the preferred unit
    metrics = [json.loads(m)["neuron_map"]["down/folded"] for m in feats["metrics"]]
    assert np.allclose([m["z"] for m in metrics], expected.z.numpy(), rtol=1e-6)
    assert np.allclose([m["z_neg"] for m in metrics], expected.z_neg.numpy(), rtol=1e-6)
    assert np.allclose(feats["logit_z"], np.maximum(expected.z.numpy(), expected.z_neg.numpy()), rtol=1e-6)
    assert ((feats["logit_z"] > 0) & (feats["logit_z"] <= math.sqrt(model.info.d_vocab - 1))).all()
    assert ((feats["specialisation"] >= 0) & (feats["specialisation"] <= 1)).all()
    up = [json.loads(m)["neuron_map"]["up/folded"]["z"] for m in feats["metrics"]]
    assert not np.allclose(up, [m["z"] for m in metrics])  # the other unit is kept beside it, not copied
