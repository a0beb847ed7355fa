"""An ObsProp vector's feature page on a tiny llama: `interp obsprop`'s store rows plus the
examples job's scores give every card (origin, decoded tokens, score histogram, top-scoring
contexts, nearest features); each number checked against the tiny model directly."""

from __future__ import annotations

import pytest
import torch
from streamlit.testing.v1 import AppTest

from helpers.paths import REPO
from interp.features import FeatureId
from interp.jobs.examples import ExamplesJobConfig, collect_examples
from interp.methods.examples.stats import ExampleConfig
from interp.methods.obsprop import ObsPropConfig, logit_diff, obsprop, path_vector, save_obsprop
from interp.store import Store

PAGE = REPO / "app" / "views" / "feature.py"
SKIP, N_WINDOWS, CTX = 2, 6, 16
N_TOKENS = N_WINDOWS * (CTX - SKIP)
LAYER, HEAD = 1, 2


@pytest.fixture(scope="module")
def tiny(tiny_models):
    return tiny_models["llama"]


@pytest.fixture(scope="module")
def stored(tiny, tmp_path_factory):
    """A store with the tiny llama's ObsProp vectors for ' was' - ' he' (and one path), scored by
    the examples job over fixed windows."""
    store = Store(tmp_path_factory.mktemp("obsprop_feature_store"))
    obs = logit_diff(tiny, " was", " he")
    config = ObsPropConfig(mlp_method="linear")
    result = obsprop(tiny, obs, config=config)
    with store.run("interp obsprop", {}) as run:
        tiny.record(store, run)
        source = save_obsprop(store, tiny, result, run, paths=(path_vector(tiny, obs, ["L0H1", "M1"], config=config),))
    windows = torch.randint(3, tiny.info.d_vocab, (N_WINDOWS, CTX), generator=torch.Generator().manual_seed(0))
    windows[:, 0] = tiny.tokenizer.bos_token_id
    collect_examples(store, tiny, ExamplesJobConfig(tokens=N_WINDOWS * CTX, ctx_len=CTX, skip_positions=SKIP,
                                                    batch_size=3),
                     ExampleConfig(n_top=3, n_quantiles=2, per_quantile=1, left=3, right=1, n_bins=8),
                     windows=windows, progress=False)
    fid = FeatureId(tiny.store_name, tiny.sites(LAYER).attn_in, "obsprop", HEAD, source)
    return store, fid, result.vector(f"L{LAYER}H{HEAD}").vector, windows


@pytest.fixture
def page(monkeypatch):
    def run(root, key: str) -> AppTest:
        monkeypatch.setenv("INTERP_STORE", str(root))
        at = AppTest.from_file(str(PAGE), default_timeout=120)
        at.query_params["feature"] = key
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        assert not at.error, [e.value for e in at.error]
        return at
    return run


def _texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def test_obsprop_feature_page_cards(page, stored, tiny):
    store, fid, y, windows = stored
    at = page(store.root, fid.key)
    markdown, captions = _texts(at.markdown), _texts(at.caption)
    for card in ("**ObsProp vector**", "**Decoded tokens**", "**Score distribution**", "**Top-scoring contexts**",
                 "**Nearest features**"):
        assert card in markdown
    assert not [t.label for t in at.tabs if t.label == "Clamping"]  # the neuron tabs are not shown
    # origin: the vector's norm, its bundle and the run that stored it
    assert {m.label: m.value for m in at.metric}["norm"] == f"{float(y.norm()):.3g}"
    assert f"bundle `obsprop/{tiny.store_name}/{fid.source}`" in captions and "`interp obsprop`" in captions

    # scores x . y at the head's input over the windows' tokens after the first SKIP
    acts = tiny.run(windows, names=[fid.site]).cache[fid.site][:, SKIP:].float()
    expect = acts @ y.float()  # (windows, CTX - SKIP)
    assert f"over {N_TOKENS:,} held-out tokens" in captions
    assert f"max {float(expect.max()):.3g}" in captions and f"min {float(expect.min()):.3g}" in captions
    assert len(at.get("plotly_chart")) == 1
    best = f"#0 score {float(expect.max()):.3g}"
    assert best in markdown  # the top context is the best-scoring token's window

    # decoded tokens: RMSNorm, so y itself through the final gain and the unembedding
    logits = (y.float() * tiny.weights.final_norm.gain.float()) @ tiny.weights.W_U.float()
    top_table = next(t.value for t in at.table)
    assert top_table.iloc[0]["token_str"] == repr(tiny.vocab_strings()[int(logits.argmax())])

    # nearest by direction: the first row is the largest |cosine| over every stored direction
    near = next(d.value for d in at.dataframe if "cosine" in d.value)
    W_out = torch.cat([tiny.weights.layer(layer).mlp.W_out.float() for layer in range(tiny.info.n_layers)])
    neuron_best = torch.nn.functional.cosine_similarity(W_out, y.float()[None]).abs().max()
    assert abs(near.iloc[0]["cosine"]) >= float(neuron_best) - 1e-4
    assert {"neuron", "obsprop"} <= set(near["kind"])
    assert any("shared" in d.value for d in at.dataframe)  # the shared-token tab found features


def test_obsprop_page_says_what_fills_an_empty_store(page, stored, tiny, tmp_path):
    store, fid, _, _ = stored
    bare = Store(tmp_path)
    with bare.run("interp obsprop", {}) as run:
        tiny.record(bare, run)
        bare.write("features", [{**fid.to_record(), "label": "bare vector", "metrics": {"path": "L1H2"}}], run_id=run)
    at = page(bare.root, fid.key)
    infos = _texts(at.info)
    assert f"No corpus scores stored for this vector: run `interp examples --model {tiny.store_name}`" in infos
    assert "No decoded tokens stored for this vector" in infos and "No scored contexts" in infos
