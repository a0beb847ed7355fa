"""The feature page on corpus examples: cards from the store, the corpus histogram, nearest by
direction, advice that fits the feature's kind; the neuron map's layers in numeric order."""

from __future__ import annotations

import pyarrow as pa
import pytest
import torch
from streamlit.testing.v1 import AppTest

from helpers.app_store import MODEL, TOP_NEURON, populate
from helpers.paths import REPO
from interp.features import FeatureId
from interp.methods.examples.stats import ExampleConfig, summarise
from interp.methods.examples.store import stored_features, write_unit
from interp.store import Store, read

VIEWS = REPO / "app" / "views"
N = 40  # neurons per layer in the populated store


@pytest.fixture(scope="module")
def store_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("app_examples_store")
    store = populate(root)
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 12, (3, 8), generator=g)
    vocab = pa.array([f"w{i}" for i in range(12)])
    directions = torch.randn(N, 6, generator=g)
    config = ExampleConfig(n_top=2, n_quantiles=2, per_quantile=1, left=2, right=1, n_bins=5)
    stored = stored_features(store, MODEL)
    with store.run("interp examples") as run:
        for layer in (0, 1):
            site = f"blocks.{layer}.mlp.hook_post"
            acts = torch.randn(3, 6, N, generator=g)
            d = directions.clone()
            if layer == 0:
                d[11] = -2 * directions[TOP_NEURON.index]  # the same line as layer 1's neuron 7, flipped
            write_unit(store, run, {"model": MODEL, "site": site, "kind": "neuron", "source": ""}, tokens, acts,
                       summarise(acts, config, offset=2), config, 2, vocab, d, {"n": 18},
                       stored.get((site, "neuron", "")))
    return root


@pytest.fixture
def page(monkeypatch):
    def run(name: str, root, **params) -> AppTest:
        monkeypatch.setenv("INTERP_STORE", str(root))
        at = AppTest.from_file(str(VIEWS / f"{name}.py"), default_timeout=60)
        for key, value in params.items():
            at.query_params[key] = value
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at
    return run


def _texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def test_cards_show_what_the_store_holds(page, store_root):
    at = page("feature", store_root, feature=TOP_NEURON.key)
    store = Store(store_root)
    row = read.feature_row(store, TOP_NEURON)
    cards = {m.label: m.value for m in at.metric}
    assert cards["complexity"] != "-" and float(cards["complexity"]) == pytest.approx(row["complexity"], abs=1e-3)
    assert cards["density"] == f"{row['density']:.2e}" and cards["max_act"] == f"{row['max_act']:.3g}"
    assert row["label"] and row["specialisation"] is not None  # the decodings' columns survived the merge


def test_corpus_histogram_and_nearest_by_direction(page, store_root):
    at = page("feature", store_root, feature=TOP_NEURON.key)
    assert "of the 18 corpus tokens with activation > 0" in _texts(at.caption)
    near = next(d.value for d in at.dataframe if "cosine" in d.value)
    assert near.iloc[0]["site"] == "blocks.0.mlp.hook_post" and near.iloc[0]["index"] == 11
    assert near.iloc[0]["cosine"] == pytest.approx(-1.0, abs=1e-3)
    assert any("shared" in d.value for d in at.dataframe)  # the shared-token view is still there


def test_advice_fits_the_kind(page, store_root):
    layer2 = FeatureId(MODEL, "blocks.2.mlp.hook_post", "neuron", 3)  # no examples job for this layer
    at = page("feature", store_root, feature=layer2.key)
    assert f"interp examples --model {MODEL}" in _texts(at.info)
    obsprop = Store(store_root).read("features", where={"kind": "obsprop"}).iloc[0]
    at = page("feature", store_root, feature=FeatureId.from_record(obsprop.to_dict()).key)
    # an ObsProp vector gets its own cards: the examples job scores it, so that is the advice
    assert f"No corpus scores stored for this vector: run `interp examples --model {MODEL}`" in _texts(at.info)
    assert "collected for MLP neurons" not in _texts(at.info)


def test_neuron_map_sorts_layers_numerically(tmp_path):
    store = Store(tmp_path)
    with store.run("test") as run:
        store.write("features", [{"model": "m", "site": f"blocks.{layer}.mlp.hook_post", "kind": "neuron",
                                  "index": 0, "source": ""} for layer in (10, 2, 1, 20)], run_id=run)
    assert read.layer_stats(store, "m")["layer"].tolist() == [1, 2, 10, 20]
