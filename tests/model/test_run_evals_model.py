"""interp's L0, explained variance, CE and KL against SAELens's own ``run_evals`` on SmolLM2 (one SAE,
the same windows), through benchmarks/check_run_evals.py's helpers."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from helpers.paths import REPO
from interp.dictionaries import Dictionary
from interp.dictionaries.io import save_dictionary
from interp.store import Store


def _check():
    spec = importlib.util.spec_from_file_location("check_run_evals", REPO / "benchmarks" / "check_run_evals.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.model
def test_interp_metrics_match_saelens_run_evals_where_the_conventions_agree(smollm2, tmp_path):
    from sae_lens import SAE

    from interp.corpus import token_windows

    check = _check()
    site = smollm2.sites(8).mlp_out
    sae = Dictionary(576, 1152, 576, kind="sae", arch="topk", k=8)
    sae.init_weights(torch.Generator().manual_seed(0))
    store = Store(tmp_path / "store")
    save_dictionary(store, "smollm2-135m/L8-sae-random", sae.eval(), {"model_name": "smollm2-135m",
                                                                      "hook_name": site, "hook_name_out": site})
    loaded = SAE.load_from_disk(str(store.dictionary_dir("smollm2-135m/L8-sae-random")))
    tokens = token_windows("imdb", smollm2.tokenizer, split="heldout", ctx_len=24, max_tokens=8 * 24).tokens[:8]
    bos = smollm2.tokenizer.bos_token_id
    assert bool((tokens[:, 0] == bos).all()) and not bool((tokens[:, 1:] == bos).any())

    ours = check.interp_metrics(smollm2, sae, tokens, site, 1, 4)
    theirs = check.saelens_metrics(loaded, smollm2, tokens, 4, [bos])
    # The same positions spliced and scored, the same explained-variance definition.
    assert ours["l0"] == theirs["l0"] == 8.0
    for metric in ("explained_variance", "ce_clean", "ce_spliced"):
        assert ours[metric] == pytest.approx(theirs[metric], abs=2e-4), metric
    assert ours["ce_spliced"] > ours["ce_clean"] + 0.01  # the splice changes something to agree on
    # SAELens zeroes BOS too and takes the full-vocabulary KL at every position, the last included:
    # both reproduced by hand; interp leaves BOS clean in its ablation.
    hand = check.saelens_baselines(smollm2, sae, tokens, site, 4)
    assert hand["ce_zero_ablation_all_positions"] == pytest.approx(theirs["ce_zero_ablation"], abs=2e-4)
    assert hand["kl_full_vocab_all_positions"] == pytest.approx(theirs["kl"], rel=1e-3, abs=1e-5)
    assert ours["ce_zero_ablation"] != pytest.approx(theirs["ce_zero_ablation"], abs=1e-3)
