"""The lenses family on tiny random models: answers worked out by hand from the model's own pieces."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interp.methods.lenses import (LensConfig, TunedLens, TunedLensConfig, compare_lenses, lens_grid, lens_rows,
                                   residual_stack, train_tuned_lens)
from interp.methods.lenses.store import load_tuned_lens, save_tuned_lens, tuned_lens_record
from interp.store import Store

PROMPT = "The cat sat on the mat. The dog ate"


@pytest.fixture(scope="module")
def llama(tiny_models):
    return tiny_models["llama"]


@pytest.fixture(scope="module")
def windows(llama):
    """BOS-prefixed (n, 16) windows of the tiny model's own sentences, split into train / held-out."""
    from helpers.tiny import _TEXT

    ids = llama.tokenizer(_TEXT * 3, add_special_tokens=False)["input_ids"]
    rows = torch.tensor(ids[: (len(ids) // 15) * 15]).view(-1, 15)
    bos = torch.full((rows.shape[0], 1), llama.info.bos_token_id)
    both = torch.cat([bos, rows], 1)
    return both[:-4], both[-4:]


@pytest.mark.parametrize("family", ["llama", "gpt2", "neox"])
def test_the_last_row_of_the_logit_lens_is_the_model_output_exactly(tiny_models, family):
    model = tiny_models[family]
    tokens = model.to_tokens(PROMPT)
    grid = lens_grid(model, tokens, LensConfig(top_k=3))
    logits = model.logits(tokens)[0].float()
    probs = torch.softmax(logits, -1)
    stack = residual_stack(model, tokens)
    from interp.methods.lenses import project

    head = project(model, stack.resid[-1, 0])
    if family == "llama":  # RMSNorm: the same float32 operations as the model's own head, bit for bit
        assert torch.equal(head, logits)
    else:  # LayerNorm: torch's fused kernel sums in another order
        torch.testing.assert_close(head, logits, rtol=1e-5, atol=1e-5)
    assert grid.top_ids[-1].tolist() == probs.topk(3, -1).indices.tolist()
    assert grid.final_ids.tolist() == logits.argmax(-1).tolist()
    assert grid.final_prob[-1] == pytest.approx(probs.max(-1).values.numpy(), rel=1e-6)
    assert np.all(grid.kl[-1] <= (0.0 if family == "llama" else 1e-6))
    assert grid.labels == ["embed", *map(str, range(model.info.n_layers))]


def test_a_middle_row_is_the_final_norm_and_head_on_that_residual(llama):
    tokens = llama.to_tokens(PROMPT)
    grid = lens_grid(llama, tokens, LensConfig(top_k=2))
    h = llama.run(tokens, names=["blocks.0.hook_resid_post"]).cache["blocks.0.hook_resid_post"][0].double()
    w = llama.weights
    normed = h / torch.sqrt(h.pow(2).mean(-1, keepdim=True) + w.final_norm.eps) * w.final_norm.gain.double()
    log_q = torch.log_softmax(normed @ w.W_U.double() + w.b_U.double(), -1)  # RMSNorm then unembedding, by hand
    log_p = torch.log_softmax(llama.logits(tokens)[0].double(), -1)
    kl = (log_p.exp() * (log_p - log_q)).sum(-1)
    assert grid.rows[1].site == "blocks.0.hook_resid_post" and grid.rows[0].site == "blocks.0.hook_resid_pre"
    # float32 sum p log p - sum p log q against float64 by hand: a few 1e-6 nats of rounding
    assert grid.kl[1] == pytest.approx(kl.numpy(), rel=1e-4, abs=2e-5)
    assert grid.kl_mean[1] == pytest.approx(kl[1:].mean().item(), rel=1e-4)  # BOS left out of the mean
    with_bos = lens_grid(llama, tokens, LensConfig(top_k=2, include_bos=True))
    assert with_bos.kl_mean[1] == pytest.approx(kl.mean().item(), rel=1e-4)
    y = log_p.argmax(-1)
    assert grid.final_prob[1] == pytest.approx(log_q.exp().gather(-1, y[:, None])[:, 0].numpy(), rel=1e-4)
    assert grid.top_ids[1].tolist() == log_q.topk(2, -1).indices.tolist()
    assert grid.top_tokens[1, 0, 0] == llama.decode([grid.top_ids[1, 0, 0]])


def test_an_identity_tuned_lens_is_the_logit_lens(llama):
    tokens = llama.to_tokens(PROMPT)
    logit = lens_grid(llama, tokens)
    tuned = lens_grid(llama, tokens, translate=TunedLens.identity(llama), lens="tuned")
    for name in ("top_ids", "top_probs", "final_prob", "kl", "kl_mean"):
        assert np.array_equal(getattr(logit, name), getattr(tuned, name)), name


def test_training_lowers_the_held_out_kl_and_keeps_the_last_row(llama, windows):
    train, heldout = windows
    config = TunedLensConfig(tokens=train.shape[0] * 15, ctx_len=16, batch_windows=2, lr=0.05, head_dtype="float32")
    training = train_tuned_lens(llama, train.repeat(4, 1), config)
    assert len(training.losses) == -(-4 * train.shape[0] // 2) and training.n_tokens == 4 * train.numel() - 4 * len(train)
    assert training.losses[-1] < 0.5 * training.losses[0]
    lens = training.lens
    assert torch.equal(lens.weight[-1], torch.eye(llama.info.d_model)) and not lens.bias[-1].any()  # not trained
    table = compare_lenses(llama, heldout, lens).table
    assert table["kl_logit"].iloc[-1] == 0.0 and table["kl_tuned"].iloc[-1] == 0.0
    inner = table.iloc[:-1]
    assert (inner["kl_tuned"] < 0.7 * inner["kl_logit"]).all(), table
    assert (inner["kl_tuned_lo"] <= inner["kl_tuned"]).all() and (inner["kl_tuned"] <= inner["kl_tuned_hi"]).all()


def test_the_comparison_is_the_mean_of_the_grid_kls(llama, windows):
    _, heldout = windows
    table = compare_lenses(llama, heldout, batch_windows=3).table
    per_window = np.stack([lens_grid(llama, heldout[i:i + 1]).kl_mean for i in range(len(heldout))])
    assert table["kl_logit"].to_numpy() == pytest.approx(per_window.mean(0), rel=1e-5)
    assert "kl_tuned" not in table


def test_store_round_trip(llama, windows, tmp_path):
    train, heldout = windows
    training = train_tuned_lens(llama, train[:4], TunedLensConfig(tokens=60, ctx_len=16, batch_windows=2))
    comparison = compare_lenses(llama, heldout, training.lens)
    store = Store(tmp_path / "store")
    assert tuned_lens_record(store, llama.store_name) is None
    with pytest.raises(FileNotFoundError, match="interp lens train --model"):
        load_tuned_lens(store, llama)
    with store.run("test", {}) as run_id:
        save_tuned_lens(store, llama, training, comparison, run_id)
    loaded = load_tuned_lens(store, llama)
    assert torch.equal(loaded.weight, training.lens.weight) and torch.equal(loaded.bias, training.lens.bias)
    assert loaded.rows == lens_rows(llama)
    record = tuned_lens_record(store, llama.store_name)
    assert record["run_id"] == run_id and record["config"]["steps"] == 2
    assert record["training"]["losses"] == pytest.approx(training.losses)
    assert [r["kl_tuned"] for r in record["comparison"]["rows"]] == pytest.approx(list(comparison.table["kl_tuned"]))


def test_a_lens_of_another_shape_is_refused(llama):
    rows = lens_rows(llama)[:-1]
    lens = TunedLens(rows, torch.eye(llama.info.d_model).repeat(len(rows), 1, 1), torch.zeros(len(rows), 32))
    with pytest.raises(ValueError, match="needs 3 rows of width 32"):
        lens.check(llama)
    with pytest.raises(ValueError, match="weight"):
        TunedLens(rows, torch.zeros(len(rows), 4, 4), torch.zeros(len(rows), 5))


@pytest.mark.parametrize("field, value", [("tokens", 0), ("lr", 5.0), ("head_dtype", "float16"), ("ctx_len", 1),
                                          ("batch_windows", 0)])
def test_bad_training_configs_name_the_value(field, value):
    with pytest.raises(ValueError, match=f"{field} must .*{value!r}"):
        TunedLensConfig(**{field: value})
