"""``interp dict-eval`` end to end on a tiny model: pooling, the three evals, the store and the read API."""

from __future__ import annotations

import json

import pytest
import torch

from interp.dictionaries import Dictionary
from interp.dictionaries.io import save_dictionary
from interp.methods.dictionary_evals.pooled import PoolConfig, pooled_activations
from interp.store import Store, read


def _random_sae(d: int, seed: int = 0) -> Dictionary:
    sae = Dictionary(d, 4 * d, d, kind="sae", arch="topk", k=4)
    sae.init_weights(torch.Generator().manual_seed(seed))
    return sae.eval()


def test_pooled_activations_are_per_text_means_without_padding_or_skipped_positions(tiny_models):
    model = tiny_models["llama"]
    site = model.sites(1).mlp_out
    sae = _random_sae(model.info.d_model)
    texts = ["The cat sat on the mat.", "int main(void) { return 0; } and more", "The dog ate"]
    pooled = pooled_activations(model, sae, texts, [0, 1, 0], site, site, PoolConfig(max_tokens=12, batch_size=3,
                                                                                      skip=2))
    for i, text in enumerate(texts):  # one text at a time: no padding at all
        tokens = model.to_tokens(text)[:, :12]
        x = model.run(tokens, names=[site]).cache[site][0, 2:]  # (pos - 2, d)
        torch.testing.assert_close(pooled.x[i], x.mean(0), atol=1e-5, rtol=1e-5)
        with torch.no_grad():
            torch.testing.assert_close(pooled.z[i], sae.encode(x).mean(0), atol=1e-5, rtol=1e-5)
    assert torch.equal(pooled.x, pooled.y)
    assert pooled.labels.tolist() == [0, 1, 0]


def test_dict_eval_all_runs_every_eval_on_the_three_labelled_sets_and_the_read_api_tables_them(
        tiny_dirs, tiny_models, tmp_path, capsys):
    from interp.cli import main
    from interp.corpus import labelled_set

    store = Store(tmp_path / "store")
    sae = _random_sae(32)
    site = tiny_models["llama"].sites(1).mlp_out
    save_dictionary(store, "llama/L1-sae-test", sae, {"model_name": str(tiny_dirs["llama"]), "hook_name": site,
                                                      "hook_name_out": site, "skip_positions": 1})
    assert main(["dict-eval", "all", "llama/L1-sae-test", "--n-per-class", "8", "--max-tokens", "24",
                 "--ks", "1,2", "--ns", "1,2", "--meta-epochs", "5", "--format", "json", "--store", str(store.root)]) == 0
    printed = json.loads(capsys.readouterr().out)
    probing = read.probing_results(store)
    assert sorted(zip(probing["dataset"], probing["k"])) == [
        ("code_language", 1), ("code_language", 2), ("pronoun_occupation", 1), ("pronoun_occupation", 2),
        ("sentiment", 1), ("sentiment", 2)]
    assert probing["accuracy"].between(0, 1).all() and probing["raw_accuracy"].between(0, 1).all()
    n_test = probing.groupby("dataset")["n_test"].first().to_dict()
    # A quarter of each class of 8; pronoun_occupation holds out whole occupations instead.
    pronoun_test = len(labelled_set("pronoun_occupation", n_per_class=8).test_indices(0.25))
    assert n_test == {"sentiment": 4, "code_language": 4, "pronoun_occupation": pronoun_test}
    tpp = read.tpp_results(store)
    assert tpp["n"].tolist() == [1, 2] and tpp["tasks"].iloc[0] == "sentiment, code_language, pronoun_occupation"
    torch.testing.assert_close(torch.tensor(tpp["tpp"].to_numpy()),
                               torch.tensor(tpp["intended_drop"] - tpp["unintended_drop"]).double())
    assert [r["tpp"] for r in printed if r["eval"] == "tpp"] == pytest.approx(tpp["tpp"].round(4).tolist())
    meta = read.meta_results(store)  # d_sae 128: a quarter of it is one multiple of d = 32
    assert meta[["dictionary", "d_sae", "width", "k"]].values.tolist() == [["llama/L1-sae-test", 128, 32, 4]]
    assert 0 < meta["explained_variance"].iloc[0] <= 1 and 0 < meta["used_fraction"].iloc[0] <= 1
    assert [r["explained_variance"] for r in printed if r["eval"] == "meta"] == \
        pytest.approx([round(meta["explained_variance"].iloc[0], 4)])
    # A bad name is one clear line, before any model loads.
    assert main(["dict-eval", "probing", "nope", "--store", str(store.root)]) == 2
    assert "no dictionary 'nope'" in capsys.readouterr().err


def test_train_several_k_on_one_pass_then_eval_both_side_by_side(tiny_dirs, tmp_path, capsys):
    """``interp train --k 2 4`` trains two BatchTopK SAEs at one site together; both are saved as
    JumpReLU, published, and evaluated into one table."""
    from interp.cli import main
    from interp.dictionaries.io import load_dictionary

    store = Store(tmp_path / "store")
    assert main(["train", "--kind", "sae", "--model", str(tiny_dirs["llama"]), "--layer", "1", "--arch", "batchtopk",
                 "--k", "2", "4", "--expansion", "2", "--tokens", "2048", "--batch-size", "256", "--corpus", "python",
                 "--ctx-len", "32", "--eval-tokens", "128", "--dashboard-tokens", "0", "--checkpoint-every", "0",
                 "--store", str(store.root)]) == 0
    rows = store.read("dictionaries").sort_values("name")
    assert rows["arch"].tolist() == ["batchtopk", "batchtopk"]
    names = rows["name"].tolist()
    assert [n.split("-")[-3] for n in names] == ["k2", "k4"]
    for name in names:
        d, meta = load_dictionary(store, name)
        assert d.arch == "jumprelu" and meta["training_arch"] == "batchtopk"
        assert main(["dict-eval", "probing", name, "--n-per-class", "8", "--max-tokens", "24", "--ks", "1,2",
                     "--datasets", "sentiment", "--store", str(store.root)]) == 0
    capsys.readouterr()
    table = read.probing_results(store)
    assert sorted(set(table["dictionary"])) == names and len(table) == 4
    assert set(table["arch"]) == {"batchtopk"}
    # One dataset's raw probe is the same whatever the dictionary (same site, same texts).
    assert table["raw_accuracy"].nunique() == 1


def test_dict_eval_meta_reads_only_the_decoder(tmp_path, capsys):
    """``meta`` alone loads no model (the recorded one does not even exist) and stores no baseline
    when told not to fit one."""
    from interp.cli import main

    store = Store(tmp_path / "store")
    save_dictionary(store, "gone/L0-sae-test", _random_sae(16), {"model_name": str(tmp_path / "no-such-model"),
                                                                  "hook_name": "blocks.0.hook_mlp_out"})
    assert main(["dict-eval", "meta", "gone/L0-sae-test", "--meta-epochs", "3", "--no-meta-baseline",
                 "--store", str(store.root)]) == 0
    assert "explained_variance" in capsys.readouterr().out
    meta = read.meta_results(store)
    assert meta["width"].tolist() == [16] and meta["baseline_explained_variance"].isna().all()
    assert meta["steps"].tolist() == [3]  # 64 rows in one batch, 3 epochs
