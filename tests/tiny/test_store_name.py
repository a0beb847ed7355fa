"""One model name in the store: a model loaded from a local folder is named `adapter.store_name`
(the folder's name, not its absolute path) by the neuron map, the complexity job and ObsProp alike."""

from __future__ import annotations

import torch

from interp.jobs.complexity import RunConfig, score, store_run
from interp.jobs.neuron_map import map_model
from interp.methods.complexity.selection import feature_groups
from interp.methods.obsprop.observables import logit_diff
from interp.methods.obsprop.propagation import obsprop
from interp.methods.obsprop.store import save_obsprop
from interp.models import load_model
from interp.store import Store


def test_neuron_map_complexity_and_obsprop_name_a_local_model_alike(tiny_dirs, tmp_path):
    folder = tiny_dirs["llama"]
    adapter = load_model(str(folder))
    assert adapter.name == str(folder) and adapter.store_name == folder.name  # a path, and its folder name
    store = Store(tmp_path / "store")

    map_model(store, adapter, layers=[0, 1], top_k=2, progress=False)

    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(3, adapter.info.d_vocab, (8, 16), generator=g)
    tokens[:, 0] = adapter.info.bos_token_id
    config = RunConfig(n_tokens=8 * 16, ctx_len=16, importance_windows=2, positions_per_window=None, flow=False)
    store_run(store, adapter, score(adapter, feature_groups(adapter, "neurons:1:0-3"), tokens, config),
              config, "complexity neurons:1:0-3", {"name": "random"})

    with store.run("obsprop test") as run_id:
        save_obsprop(store, adapter, obsprop(adapter, logit_diff(adapter, " was", " he"), ["The dog ate the bone"]),
                     run_id)

    features = store.read("features")
    assert set(features["kind"]) == {"neuron", "obsprop"}
    for table in ("features", "feature_tokens", "complexity", "models"):
        assert set(store.read(table, columns=["model"])["model"]) == {adapter.store_name}, table
    # the complexity rows are the neuron map's features: the same identities, not a second model
    cx = store.read("complexity")
    neurons = features[features["kind"] == "neuron"]
    joined = cx.merge(neurons, on=["model", "site", "kind", "index", "source"])
    assert len(cx) == 4 and len(joined) == 4
    assert set(store.read("runs")["status"]) == {"done"}
