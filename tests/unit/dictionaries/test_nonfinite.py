"""A NaN/Inf batch, loss or weight is skipped and counted, never trained into the dictionary."""

import pytest
import torch

from interp.dictionaries import Dictionary, TrainConfig, in_memory_batches, train_dictionary
from interp.dictionaries.io import save_dictionary_dir


def _data(n=1024, d=8):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, d, generator=g)
    return x, x @ torch.randn(d, d, generator=g)


def _cfg(**kw):
    return TrainConfig(arch="topk", expansion=2, k=2, batch_size=128, train_tokens=128 * 12, warmup_steps=2, **kw)


def _poisoned(x, y, bad_steps, value=float("nan")):
    batches = in_memory_batches(x, y, 128)
    real = batches.batch

    def batch(step):
        bx, by = real(step)
        if step in bad_steps:
            bx = bx.clone()
            bx[3, 5] = value
        return bx, by

    batches.batch = batch
    return batches


def _finite(d: Dictionary) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in d.parameters())


def test_one_nan_batch_is_skipped_and_counted():
    x, y = _data()
    clean = train_dictionary(in_memory_batches(x, y, 128), _cfg(), 8, 8, progress=False)
    assert clean.skipped_batches == 0
    result = train_dictionary(_poisoned(x, y, {4}), _cfg(), 8, 8, progress=False)
    assert _finite(result.dictionary)
    assert result.skipped_batches == 1
    # the skipped step changed nothing else: the run differs from the clean one (batch 4 unused)
    assert not torch.equal(result.dictionary.W_enc, clean.dictionary.W_enc)


def test_an_inf_batch_is_skipped_too():
    x, y = _data()
    result = train_dictionary(_poisoned(x, y, {0, 7}, float("inf")), _cfg(), 8, 8, progress=False)
    assert _finite(result.dictionary) and result.skipped_batches == 2


def test_more_bad_batches_than_the_limit_stops_with_the_count_and_first_batch():
    x, y = _data()
    with pytest.raises(ValueError, match=r"3 batches skipped .*max_bad_batches=2.*first bad one was batch 1"):
        train_dictionary(_poisoned(x, y, {1, 3, 5, 6}), _cfg(max_bad_batches=2), 8, 8, progress=False)


def test_a_step_that_makes_weights_non_finite_is_undone(monkeypatch):
    x, y = _data()
    real = Dictionary.renormalize_decoder
    calls = []

    def poisoning(self):
        real(self)
        calls.append(1)
        if len(calls) == 3:
            with torch.no_grad():
                self.W_dec[0, 0] = float("nan")

    monkeypatch.setattr(Dictionary, "renormalize_decoder", poisoning)
    result = train_dictionary(in_memory_batches(x, y, 128), _cfg(), 8, 8, progress=False)
    assert _finite(result.dictionary) and result.skipped_batches == 1


def test_bad_max_bad_batches_is_refused():
    with pytest.raises(ValueError, match="max_bad_batches"):
        _cfg(max_bad_batches=-1)


def test_saving_a_dictionary_with_a_nan_weight_raises(tmp_path):
    d = Dictionary(4, 8, 4, kind="sae", arch="relu")
    d.init_weights(torch.Generator().manual_seed(0))
    with torch.no_grad():
        d.W_enc[1, 2] = float("nan")
    with pytest.raises(ValueError, match="refusing to save dictionary: W_enc has 1 non-finite"):
        save_dictionary_dir(d, tmp_path / "d")
    assert not (tmp_path / "d").exists()
