"""The corpus-examples job on a tiny model: what it stores matches the activations, and a rerun does no work."""

import numpy as np
import pytest
import torch

from interp.dictionaries.dictionary import Dictionary
from interp.dictionaries.io import save_dictionary
from interp.features import FeatureId
from interp.jobs.examples import ExamplesJobConfig, collect_examples
from interp.methods.examples.stats import ExampleConfig
from interp.store import Store, read

SKIP = 2


def _windows(adapter, n=6, ctx=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, adapter.info.d_vocab, (n, ctx), generator=g)
    ids[:, 0] = adapter.tokenizer.bos_token_id
    return ids


def _publish_transcoder(store, adapter, layer=1, d_sae=24):
    s = adapter.sites(layer)
    d = adapter.info.d_model
    tc = Dictionary(d, d_sae, d, kind="transcoder", arch="relu")
    tc.init_weights(torch.Generator().manual_seed(3))
    with torch.no_grad():
        tc.b_enc.normal_(0, 0.1, generator=torch.Generator().manual_seed(4))
    folder = save_dictionary(store, "tiny/tc", tc, {"hook_name": s.mlp_in, "hook_name_out": s.mlp_out})
    with store.run("test") as run:
        store.write("dictionaries", [{"name": "tiny/tc", "model": adapter.store_name, "site": s.mlp_in,
                                      "hook_out": s.mlp_out, "kind": "transcoder", "arch": "relu",
                                      "path": str(folder.relative_to(store.root))}], run_id=run)
    return tc


@pytest.fixture(scope="module")
def job(tiny_models, tmp_path_factory):
    adapter = tiny_models["llama"]
    store = Store(tmp_path_factory.mktemp("examples-store"))
    tc = _publish_transcoder(store, adapter)
    windows = _windows(adapter)
    config = ExamplesJobConfig(tokens=96, ctx_len=16, skip_positions=SKIP, batch_size=4)
    examples = ExampleConfig(n_top=3, n_quantiles=2, per_quantile=2, left=4, right=2, n_bins=8)
    first = collect_examples(store, adapter, config, examples, windows=windows, progress=False)
    return adapter, store, tc, windows, config, examples, first


def test_every_unit_is_done_in_one_pass(job):
    adapter, store, _, _, _, _, first = job
    assert len(first.done) == adapter.info.n_layers + 1 and first.passes == 1 and not first.skipped
    assert first.n_tokens == 6 * (16 - SKIP)


def test_stored_rows_match_the_activations(job):
    adapter, store, _, windows, _, examples, _ = job
    site = adapter.sites(1).mlp_hidden
    acts = adapter.run(windows, names=[site]).cache[site][:, SKIP:].float()  # (6, 14, d_mlp)
    fid = FeatureId(adapter.store_name, site, "neuron", 5)
    row = read.feature_row(store, fid)
    a = acts[..., 5]
    assert row["max_act"] == pytest.approx(float(a.max()), rel=1e-3)
    assert row["density"] == pytest.approx(float((a > 0).float().mean()))
    ex = read.feature_examples(store, fid)
    top = ex[ex["group"] == "top"].sort_values("example_rank")
    peaks = [v for v in a.max(1).values.sort(descending=True).values[:3].tolist() if v > 0]
    assert peaks and top["max_act"].tolist() == pytest.approx(peaks, rel=1e-3)
    first = top.iloc[0]
    # the context's activation at max_pos is the example's activation, and the tokens are the window's
    assert first["acts"][first["max_pos"]] == pytest.approx(first["max_act"], rel=1e-6)
    w = int(a.max(1).values.argmax())
    p = int(a[w].argmax()) + SKIP
    assert list(first["token_ids"]) == windows[w, max(0, p - 4):p + 3].tolist()
    assert set(ex["group"]) <= {"top", "quantile_0", "quantile_1"}
    hist = read.feature_histogram(store, fid)
    assert int(hist["counts"].sum()) == 6 * (16 - SKIP)
    assert hist["edges"][0] == pytest.approx(float(a.min()), rel=1e-3)


def test_latents_get_examples_through_their_encoder(job):
    adapter, store, tc, windows, _, _, _ = job
    site = adapter.sites(1).mlp_in
    with torch.no_grad():
        latents = tc.encode(adapter.run(windows, names=[site]).cache[site][:, SKIP:].float())
    live = int((latents.amax((0, 1)) > 0).nonzero()[0])
    fid = FeatureId(adapter.store_name, site, "transcoder", live, "tiny/tc")
    assert read.feature_row(store, fid)["max_act"] == pytest.approx(float(latents[..., live].max()), rel=1e-3)
    assert not read.feature_examples(store, fid).empty
    hist = read.feature_histogram(store, fid)  # positive activations only
    assert int(hist["counts"].sum()) == int((latents[..., live] > 0).sum())


def test_nearest_by_direction_finds_the_same_direction(job):
    adapter, store, tc, _, _, _, _ = job
    site = adapter.sites(1).mlp_in
    fid = FeatureId(adapter.store_name, site, "transcoder", 0, "tiny/tc")
    near = read.nearest_by_direction(store, fid, n=500)  # every stored feature, ranked
    d = tc.W_dec.detach()
    cos = torch.nn.functional.cosine_similarity(d[1:], d[0][None], dim=1)
    best = int(cos.abs().argmax()) + 1
    candidates = near[near["source"] == "tiny/tc"]
    n_all = adapter.info.n_layers * adapter.info.d_mlp + tc.d_sae
    assert len(near) == n_all - 1 and not ((near["source"] == "tiny/tc") & (near["index"] == 0)).any()
    assert (np.diff(near["cosine"].abs().to_numpy()) <= 1e-7).all()
    assert int(candidates["index"].iloc[0]) == best
    assert np.isclose(candidates["cosine"].iloc[0], float(cos[best - 1]), atol=2e-3)  # float16 directions


def test_a_second_run_does_no_work(job):
    adapter, store, _, windows, config, examples, first = job
    before = store.read("activation_examples", latest=False).shape[0]
    second = collect_examples(store, adapter, config, examples, windows=windows, progress=False)
    assert second.done == [] and sorted(second.skipped) == sorted(first.done) and second.passes == 0
    assert store.read("activation_examples", latest=False).shape[0] == before
