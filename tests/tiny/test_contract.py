"""One contract for every method family's entry point (issue 13), on tiny random models.

Each family runs through the same three checks:

1. a bad config value raises ValueError whose message names the value;
2. the entry point's result is a named type (dataclass or NamedTuple);
3. what the family's store module (`interp/methods/<family>/store.py`;
   `interp/dictionaries/io.py` for dictionaries) writes reads back equal to the result.

Round trips: circuits (`save_graph` / `load_graph`: the graph), obsprop (`save_obsprop` /
`load_obsprop`: every feature vector), dictionaries (`save_dictionary` / `load_dictionary`:
every parameter) and lenses (`save_tuned_lens` / `load_tuned_lens`: the translators) return the
result itself. The neurons, attribution and complexity store
modules have no reader of the whole result type, so the check reads back what they store:
each neuron's rank-0 top token (`top_token_id`), the attribution's scores and tokens (the
``attributions`` table `store_attribution` writes), and each feature's K and curve
(`read_complexity`).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Callable, NamedTuple

import pytest
import torch

from interp.store import Store

PROMPT = "The cat sat on the mat. She said that he"


class Family(NamedTuple):
    bad: Callable[[], object]
    """Builds a config with one bad value."""
    bad_value: str
    """The value the error message must name."""
    run: Callable[[dict], object]
    """tiny_models -> the entry point's result."""
    round_trip: Callable[[Store, object, dict, str], None]
    """Stores the result under a run and asserts what reads back equals it."""


def _neurons_run(models):
    from interp.methods.neurons.decoding import DecodeConfig, decode_neurons

    return decode_neurons(models["llama"], 0, "down", DecodeConfig(top_k=3, backend="torch"))


def _neurons_trip(store, result, models, run_id):
    import pyarrow as pa

    from interp.methods.neurons.store import top_token_id, write_layer

    adapter = models["llama"]
    site = adapter.sites(0).mlp_hidden
    write_layer(store, adapter.store_name, site, 0, adapter.info.d_mlp, {"down/folded": result}, 3, run_id,
                pa.array(adapter.vocab_strings(), pa.string()), None)
    stored = [top_token_id(store, adapter.store_name, site, i) for i in range(len(result))]
    assert stored == result.top_ids[:, 0].tolist()


def _circuits_run(models):
    from interp.methods.circuits.attribution import LogitTarget
    from interp.methods.circuits.graph import GraphConfig, build_graph
    from interp.methods.circuits.trace import trace
    from interp.methods.circuits.transcoders import random_transcoders

    model = models["llama"]
    torch.manual_seed(0)
    tcs = random_transcoders(model, [0, 1], 64, k=4)
    return build_graph(model, trace(model, tcs, PROMPT), LogitTarget(7), GraphConfig(hops=2, top_k=4, share=1.0))


def _circuits_trip(store, graph, models, run_id):
    from interp.methods.circuits.store import load_graph, save_graph

    expected = graph.to_json()
    key = save_graph(store, graph, run_id)
    assert load_graph(store, key).to_json() == json.loads(json.dumps(expected)) and graph.nodes


def _obsprop_run(models):
    from interp.methods.obsprop.observables import logit_diff
    from interp.methods.obsprop.propagation import ObsPropConfig, obsprop

    model = models["llama"]
    return obsprop(model, logit_diff(model, " was", " he"), prompts=["The dog ate the bone"], config=ObsPropConfig())


def _obsprop_trip(store, result, models, run_id):
    from interp.methods.obsprop.store import load_obsprop, save_obsprop

    source = save_obsprop(store, models["llama"], result, run_id)
    stored = load_obsprop(store, models["llama"], source)
    expected = {**{fv.label: fv.vector for fv in result.vectors}, "final": result.final}
    assert set(stored) == set(expected)
    for label, vector in expected.items():
        torch.testing.assert_close(stored[label].to(vector.dtype), vector, msg=label)


def _attribution_run(method):
    def run(models):
        from interp.methods.attribution.baselines import BaselineConfig
        from interp.methods.attribution.reagent import ReagentConfig
        from interp.methods.attribution.registry import attribute

        adapter = models["gpt2"]
        tokens = adapter.to_tokens(PROMPT)[0]
        config = ReagentConfig(max_probe_steps=5, num_probes=3, seed=0) if method == "reagent" else BaselineConfig(n_steps=4)
        return attribute(adapter, tokens, method, config=config)
    return run


def _attribution_trip(store, result, models, run_id):
    from interp.methods.attribution.store import store_attribution

    adapter = models["gpt2"]
    store_attribution(store, run_id, adapter.store_name, PROMPT, result)
    rows = store.read("attributions", where={"model": adapter.store_name, "method": result.method})
    assert len(rows) == 1
    assert list(rows["scores"].iloc[0]) == pytest.approx([float(s) for s in result.scores])
    assert list(rows["tokens"].iloc[0]) == list(result.tokens) and rows["target"].iloc[0] == result.target


def _complexity_run(models):
    from interp.methods.complexity.vinfo import ComplexityConfig, feature_complexity

    gen = torch.Generator().manual_seed(0)
    hs = [torch.randn(400, 8, generator=gen) for _ in range(3)]
    Z = torch.stack([hs[0][:, 0], hs[2][:, 1] * hs[2][:, 2], torch.randn(400, generator=gen)], 1)
    return feature_complexity(hs, Z, [3, 3, 3], ComplexityConfig())


def _complexity_trip(store, result, models, run_id):
    import pandas as pd

    from interp.features import FeatureId, FeatureKind
    from interp.methods.complexity.store import save_complexity

    site = "blocks.2.hook_resid_post"
    frame = pd.DataFrame([{**FeatureId("tiny", site, FeatureKind.NEURON, f, "").to_record(),
                           "K": float(result.K[f]), "first_decodable_layer": int(result.first_layer[f]),
                           "curve": result.curve[:, f].tolist(), "importance": 0.0} for f in range(len(result.K))])
    save_complexity(store, frame, {"features": len(frame)}, {}, run_id)
    # read back by `_complexity_check` once the run is finished (only finished runs count)


def _complexity_check(store, result):
    from interp.methods.complexity.store import read_complexity

    won = read_complexity(store, "tiny").sort_values("index")
    assert won["K"].tolist() == pytest.approx(result.K.tolist())
    assert won["first_decodable_layer"].tolist() == result.first_layer.tolist()
    for f, curve in enumerate(won["curve"]):
        assert list(curve) == pytest.approx(result.curve[:, f].tolist())


def _dictionaries_run(models):
    from interp.dictionaries.activations import in_memory_batches
    from interp.dictionaries.train_config import TrainConfig
    from interp.dictionaries.training import train_dictionary

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(512, 16, generator=gen)
    config = TrainConfig(kind="sae", arch="topk", expansion=2, k=4, train_tokens=512, batch_size=64, aux_k=8,
                         dead_after_tokens=256)
    return train_dictionary(in_memory_batches(x, None, 64), config, 16, 16, progress=False)


def _dictionaries_trip(store, result, models, run_id):
    from interp.dictionaries.io import load_dictionary, save_dictionary

    save_dictionary(store, "contract/sae", result.dictionary, {"hook_name": "blocks.0.hook_resid_post"})
    loaded, meta = load_dictionary(store, "contract/sae")
    assert meta["hook_name"] == "blocks.0.hook_resid_post"
    ours, theirs = dict(result.dictionary.named_parameters()), dict(loaded.named_parameters())
    assert set(ours) == set(theirs)
    for name, p in ours.items():
        torch.testing.assert_close(theirs[name].float(), p.detach().float(), msg=name)


def _lenses_run(models):
    from interp.methods.lenses import TunedLensConfig, train_tuned_lens

    model = models["llama"]
    windows = model.to_tokens(["The cat sat on the mat. The dog ate", "She said that he was a nurse. He said"])
    return train_tuned_lens(model, windows, TunedLensConfig(tokens=16, ctx_len=windows.shape[1], batch_windows=1))


def _lenses_trip(store, training, models, run_id):
    from interp.methods.lenses import compare_lenses
    from interp.methods.lenses.store import load_tuned_lens, save_tuned_lens

    model = models["llama"]
    save_tuned_lens(store, model, training, compare_lenses(model, model.to_tokens(["The cat sat"]), training.lens),
                    run_id)
    loaded = load_tuned_lens(store, model)
    assert torch.equal(loaded.weight, training.lens.weight) and torch.equal(loaded.bias, training.lens.bias)


def _cfg(module: str, name: str, **kw):
    def make():
        import importlib

        return getattr(importlib.import_module(module), name)(**kw)
    return make


FAMILIES = {
    "neurons.decode": Family(_cfg("interp.methods.neurons.decoding", "DecodeConfig", variant="sideways"),
                             "sideways", _neurons_run, _neurons_trip),
    "circuits.graph": Family(_cfg("interp.methods.circuits.graph", "GraphConfig", hops=0), "0",
                             _circuits_run, _circuits_trip),
    "obsprop": Family(_cfg("interp.methods.obsprop.propagation", "ObsPropConfig", mlp_method="bogus"), "bogus",
                      _obsprop_run, _obsprop_trip),
    "attribution.reagent": Family(_cfg("interp.methods.attribution.reagent", "ReagentConfig", replacing_ratio=1.7),
                                  "1.7", _attribution_run("reagent"), _attribution_trip),
    "attribution.occlusion": Family(_cfg("interp.methods.attribution.baselines", "BaselineConfig", n_steps=-3),
                                    "-3", _attribution_run("occlusion"), _attribution_trip),
    "complexity": Family(_cfg("interp.methods.complexity.vinfo", "ComplexityConfig", val_fraction=1.5), "1.5",
                         _complexity_run, _complexity_trip),
    "dictionaries.training": Family(_cfg("interp.dictionaries.training", "TrainConfig", arch="spiky"), "spiky",
                                    _dictionaries_run, _dictionaries_trip),
    "lenses.tuned": Family(_cfg("interp.methods.lenses.tuned_lens", "TunedLensConfig", lr=2.5), "2.5",
                           _lenses_run, _lenses_trip),
}


def _is_named_type(obj) -> bool:
    return dataclasses.is_dataclass(obj) and not isinstance(obj, type) or (
        isinstance(obj, tuple) and hasattr(type(obj), "_fields"))


@pytest.mark.parametrize("name", list(FAMILIES))
def test_family_contract(name, tiny_models, tmp_path):
    family = FAMILIES[name]
    with pytest.raises(ValueError) as err:
        family.bad()
    assert family.bad_value in str(err.value), str(err.value)

    result = family.run(tiny_models)
    assert _is_named_type(result), f"{name}: {type(result).__name__} is neither a dataclass nor a NamedTuple"

    store = Store(tmp_path / "store")
    with store.run(f"contract {name}") as run_id:
        family.round_trip(store, result, tiny_models, run_id)
    if name == "complexity":
        _complexity_check(store, result)


def test_named_type_check_rejects_plain_values():
    assert not _is_named_type({"K": 1.0}) and not _is_named_type((1, 2)) and not _is_named_type(torch.zeros(2))
    assert _is_named_type(Family(None, "", None, None))
