"""Dictionaries end to end: store round trip through SAELens, CLI, evaluation and dashboards."""

from __future__ import annotations

import json

import pytest
import torch

from interp.dictionaries import Dictionary, site_activations
from interp.dictionaries.evaluation import baseline, evaluate_dictionary
from interp.jobs.dictionaries import warn_if_no_fit
from interp.store import Store


def _windows(model, n=6, ctx=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(3, model.info.d_vocab, (n, ctx), generator=g)
    tokens[:, 0] = model.info.bos_token_id
    return tokens


def test_mean_predictor_scores_like_mean_ablation(tiny_models):
    """A dictionary that always outputs the target mean has FVU 1 and spliced CE = the
    mean-ablation CE, so CE recovered against mean ablation is exactly 0."""
    model = tiny_models["llama"]
    sites = model.sites(1)
    tokens = _windows(model)
    shared = baseline(model, tokens, sites.mlp_in, sites.mlp_out)
    y = torch.cat([b["y"].reshape(-1, b["y"].shape[-1]) for b in shared.batches])
    d = Dictionary(model.info.d_model, 4, model.info.d_model, kind="transcoder", arch="relu")
    with torch.no_grad():
        d.W_enc.zero_()
        d.b_enc.fill_(-1.0)  # no latent ever fires: the output is b_dec
        d.W_dec.normal_()
        d.b_dec.copy_(y.mean(0))
    m = evaluate_dictionary(model, d, None, sites.mlp_in, sites.mlp_out, shared=shared)
    assert m.fvu == pytest.approx(1.0, abs=1e-5)
    assert m.l0 == 0 and m.dead_fraction == 1.0
    assert m.ce_spliced == pytest.approx(m.ce_mean_ablation, abs=1e-5)
    assert m.ce_recovered_mean == pytest.approx(0.0, abs=1e-4)


def test_a_dictionary_worse_than_the_mean_is_flagged_and_a_fitting_one_is_not(tiny_models):
    """b_dec = mean + 3 per-dimension std (no latent fires): FVU = 1 + 9 = 10 by hand, flagged;
    the exact-reconstruction SAE (FVU 0) is not."""
    import warnings

    model = tiny_models["llama"]
    sites = model.sites(1)
    shared = baseline(model, _windows(model), sites.mlp_in, sites.mlp_out)
    y = torch.cat([b["y"].reshape(-1, b["y"].shape[-1]) for b in shared.batches]).double()
    d = Dictionary(model.info.d_model, 4, model.info.d_model, kind="transcoder", arch="relu")
    with torch.no_grad():
        d.W_enc.zero_()
        d.b_enc.fill_(-1.0)
        d.b_dec.copy_(y.mean(0) + 3 * y.std(0, correction=0))
    m = evaluate_dictionary(model, d, None, sites.mlp_in, sites.mlp_out, shared=shared)
    assert m.fvu == pytest.approx(10.0, rel=1e-3)
    with pytest.warns(RuntimeWarning, match=r"FVU 10(\.0+)? is not below 1"):
        assert warn_if_no_fit("bad", m)
    site = model.sites(0).mlp_out
    eye = torch.eye(model.info.d_model)
    exact = Dictionary(model.info.d_model, 2 * model.info.d_model, model.info.d_model, kind="sae", arch="relu")
    with torch.no_grad():
        exact.W_enc.copy_(torch.cat([eye, -eye], 1))
        exact.W_dec.copy_(torch.cat([eye, -eye], 0))
        exact.b_enc.zero_()
        exact.b_dec.zero_()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not warn_if_no_fit("exact", evaluate_dictionary(model, exact, _windows(model), site, site))
    assert m.ce_clean != m.ce_zero_ablation


def test_exact_reconstruction_recovers_all_ce(tiny_models):
    """An SAE with latents +e_i and -e_i (relu(v) - relu(-v) = v) reconstructs the MLP output
    exactly: FVU 0, delta CE 0, KL 0, CE recovered 1."""
    model = tiny_models["llama"]
    site = model.sites(0).mlp_out
    tokens = _windows(model)
    d_model = model.info.d_model
    d = Dictionary(d_model, 2 * d_model, d_model, kind="sae", arch="relu")
    eye = torch.eye(d_model)
    with torch.no_grad():
        d.W_enc.copy_(torch.cat([eye, -eye], 1))
        d.W_dec.copy_(torch.cat([eye, -eye], 0))
        d.b_enc.zero_()
        d.b_dec.zero_()
    m = evaluate_dictionary(model, d, tokens, site, site)
    assert m.fvu == pytest.approx(0.0, abs=1e-8)
    assert m.delta_ce == pytest.approx(0.0, abs=1e-5)
    assert m.kl == pytest.approx(0.0, abs=1e-6)
    assert m.ce_recovered == pytest.approx(1.0, abs=1e-4)


def test_train_cli_publishes_and_show_feature_reads_back(tiny_dirs, tmp_path, capsys):
    from interp.cli import main

    store_root = tmp_path / "store"
    code = main(["train", "--kind", "transcoder", "--model", str(tiny_dirs["llama"]), "--layer", "1",
                 "--arch", "topk", "--k", "4", "--expansion", "2", "--tokens", "4096", "--batch-size", "256",
                 "--corpus", "python", "--ctx-len", "32", "--eval-tokens", "128", "--dashboard-tokens", "256",
                 "--checkpoint-every", "4", "--store", str(store_root)])
    assert code == 0
    out = capsys.readouterr().out
    assert "CE recovered" in out
    store = Store(store_root)
    row = store.read("dictionaries").iloc[0]
    assert row["kind"] == "transcoder" and row["site"] == "blocks.1.ln2.hook_normalized"
    metrics = json.loads(row["metrics"])
    assert {"l0", "fvu", "ce_recovered", "delta_ce", "kl", "dead_fraction", "density_histogram"} <= set(metrics)
    assert metrics["l0"] <= 4
    feats = store.features(model="llama", kind="transcoder", source=row["name"])
    assert len(feats) == 64  # expansion 2 * d_model 32
    alive = int(feats.loc[feats["density"] > 0, "index"].iloc[0])
    assert main(["show", "feature", "llama", row["name"], str(alive), "--format", "json",
                 "--store", str(store_root)]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["index"] == alive and record["density"] > 0
    assert set(record["token_tables"]) == {"decoder", "deembed"}
    assert record["examples"]["top"][0]["max_act"] == pytest.approx(max(
        e["max_act"] for e in record["examples"]["top"]))
    top = record["examples"]["top"][0]
    assert top["acts"][top["max_pos"]] == pytest.approx(top["max_act"], rel=1e-5)
    assert main(["show", "feature", "llama", row["name"], "9999", "--store", str(store_root)]) == 2


def test_site_activations_stop_early_and_match_full_run(tiny_models):
    model = tiny_models["gpt2"]
    tokens = _windows(model, n=3, ctx=10)
    site = model.sites(0).mlp_out
    acts = site_activations(model, tokens, [site])[site]
    full = model.run(tokens, names=[site]).cache[site][:, 1:].reshape(-1, model.info.d_model)
    torch.testing.assert_close(acts, full)
    assert acts.shape == (3 * 9, model.info.d_model)


def test_sae_reuses_a_transcoders_clean_and_ablation_passes(tiny_models):
    from interp.jobs.dictionaries import _shared_baseline

    model = tiny_models["llama"]
    sites = model.sites(1)
    tokens = _windows(model, n=4)
    known = {(sites.mlp_in, sites.mlp_out): baseline(model, tokens, sites.mlp_in, sites.mlp_out)}
    derived = _shared_baseline(model, tokens, (sites.mlp_out, sites.mlp_out), known, progress=False)
    fresh = baseline(model, tokens, sites.mlp_out, sites.mlp_out)
    sae = Dictionary(model.info.d_model, 64, model.info.d_model, kind="sae", arch="topk", k=4)
    sae.init_weights(torch.Generator().manual_seed(0))
    a = evaluate_dictionary(model, sae, None, sites.mlp_out, sites.mlp_out, shared=derived)
    b = evaluate_dictionary(model, sae, None, sites.mlp_out, sites.mlp_out, shared=fresh)
    da, db = a.to_dict(), b.to_dict()
    assert da.pop("density_histogram") == db.pop("density_histogram")
    ia, ib = da.pop("intervals"), db.pop("intervals")
    assert ia.keys() == ib.keys() and all(ia[k] == pytest.approx(ib[k]) for k in ia)
    assert da == pytest.approx(db)
