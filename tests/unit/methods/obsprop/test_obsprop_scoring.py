"""ObsProp scores and nearest directions on hand-built tensors: scores are dot products, the
examples statistics of a scorer pick the hand-found best token, the nearest rows come in
|cosine| order without the feature itself or empty rows, and an ObsProp path source gets a
valid bundle name with feature rows only for the indices it holds."""

from __future__ import annotations

import pyarrow as pa
import pytest
import torch

from interp.methods.examples.stats import ExampleConfig, summarise
from interp.methods.examples.store import write_unit
from interp.methods.obsprop.scoring import ObsPropScorer, scores
from interp.store import Store
from interp.store.read.examples import bundle_name, feature_histogram, nearest_by_direction, top_cosines
from interp.features import FeatureId

Y = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
"""Two feature indices at one site: index 0 holds y = (1, 1, 1), index 1 no vector (a zero row)."""
ACTS = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 0.0]],
                     [[0.0, 0.0, -3.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [4.0, 0.0, 0.0]]])
"""(2 windows, 4 positions, d = 3): y's scores are window 0: 1, 0, 2, 0 and window 1: -3, 0, 0, 4."""


def test_scores_are_dot_products():
    acts = torch.tensor([[[1.0, 0.0, 2.0], [0.0, 1.0, -1.0]]])
    vectors = torch.tensor([[1.0, 1.0, 1.0], [2.0, 0.0, -1.0]])
    # token 0: 1 + 0 + 2 = 3 and 2 + 0 - 2 = 0; token 1: 0 + 1 - 1 = 0 and 0 + 0 + 1 = 1
    assert scores(acts, vectors).tolist() == [[[3.0, 0.0], [0.0, 1.0]]]
    with pytest.raises(ValueError, match="width 2 but the vectors 3"):
        scores(torch.zeros(1, 2), vectors)


def test_scorer_statistics_find_the_best_token():
    scorer = ObsPropScorer("blocks.0.ln2.hook_normalized", "obs", Y, Y.clone(), (0,))
    stats = summarise(scorer.encode(ACTS), ExampleConfig(n_top=2, n_quantiles=1, per_quantile=1, n_bins=7),
                      offset=0)
    # y: best window 1 at position 3 (score 4), then window 0 at position 2 (score 2)
    assert stats.top.values[:, 0].tolist() == [4.0, 2.0]
    assert stats.top.windows[:, 0].tolist() == [1, 0] and stats.top.positions[:, 0].tolist() == [3, 2]
    # 8 tokens: min -3, max 4, mean (1 + 2 - 3 + 4) / 8 = 0.5, 3 of them > 0
    assert (stats.min_act[0], stats.max_act[0], stats.mean_act[0]) == (-3.0, 4.0, 0.5)
    assert stats.density[0] == pytest.approx(3 / 8)
    # signed scores: 7 unit-wide bins over [-3, 4]: -3 | - | - | 0 0 0 0 | 1 | 2 | 4
    assert stats.histogram.counts[0].tolist() == [1, 0, 0, 4, 1, 1, 1]
    assert not stats.top.valid[:, 1].any()  # the empty index scores 0 everywhere: no example


def test_top_cosines_order_sign_and_skips():
    target = torch.tensor([1.0, 0.0])
    directions = torch.tensor([[0.0, 1.0], [-2.0, 0.0], [1.0, 1.0], [0.0, 0.0], [3.0, 0.0]])
    # cosines: 0, -1, 1/sqrt(2), (zero row), 1; row 4 is the feature itself
    found = top_cosines(target, directions, n=3, skip=4)
    assert [i for i, _ in found] == [1, 2, 0]
    assert [c for _, c in found] == pytest.approx([-1.0, 2 ** -0.5, 0.0])
    assert [i for i, _ in top_cosines(target, directions, n=10)] == [1, 4, 2, 0]  # never the zero row


def test_path_source_bundle_and_feature_rows(tmp_path):
    store = Store(tmp_path)
    model, site, source = "toy", "blocks.0.ln1.hook_normalized", "obs@L0H1>M1"
    assert bundle_name(model, site, source) == f"examples/{model}/{site}/obs_x40_L0H1_x3e_M1"
    vectors = torch.stack([torch.zeros(3), torch.tensor([1.0, 1.0, 1.0])])  # only head 1 holds the path
    scorer = ObsPropScorer(site, source, vectors, vectors.clone(), (1,))
    acts = scorer.encode(ACTS)
    config = ExampleConfig(n_top=2, n_quantiles=1, per_quantile=1, left=1, right=1, n_bins=7)
    tokens = torch.arange(8).reshape(2, 4)
    with store.run("interp examples") as run:
        store.write("features", [{**FeatureId(model, site, "obsprop", 1, source).to_record(), "label": "path"}],
                    run_id=run)
        write_unit(store, run, {"model": model, "site": site, "kind": "obsprop", "source": source}, tokens, acts,
                   summarise(acts, config), config, 0, pa.array([f"t{i}" for i in range(8)]), scorer.W_dec,
                   {"n": 8}, store.read("features", where={"model": model}).drop(columns=["run_id"]),
                   kept=scorer.indices)
    rows = store.read("features", where={"model": model})
    assert rows["index"].tolist() == [1] and rows["label"].tolist() == ["path"]
    assert rows["max_act"].tolist() == [4.0] and rows["density"].tolist() == [pytest.approx(3 / 8)]
    fid = FeatureId(model, site, "obsprop", 1, source)
    assert feature_histogram(store, fid)["n_tokens"] == 8
    assert nearest_by_direction(store, fid).empty  # its one other row is empty: nothing near
    examples = store.examples(fid)
    top = examples[examples["group"] == "top"]
    # best: window 1, position 3 (token 7, score 4), context t6 t7 (right edge of the window)
    assert top["max_act"].tolist() == [4.0, 2.0] and list(top.iloc[0]["tokens"]) == ["t6", "t7"]
