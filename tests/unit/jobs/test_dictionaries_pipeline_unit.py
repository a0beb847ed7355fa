"""Dictionaries end to end: store round trip through SAELens, CLI, evaluation and dashboards."""

from __future__ import annotations


import pytest
import torch

from interp.dictionaries import TrainConfig, in_memory_batches, train_dictionary
from interp.dictionaries.io import load_dictionary, save_dictionary
from interp.store import Store


@pytest.mark.parametrize("arch", ["relu", "topk", "jumprelu"])
@pytest.mark.parametrize("kind", ["transcoder", "sae"])
def test_trained_dictionary_round_trips_through_sae_lens(tmp_path, arch, kind):
    """Train here, save in the store, load with plain sae_lens: identical outputs."""
    from sae_lens import SAE

    g = torch.Generator().manual_seed(1)
    x = torch.randn(512, 8, generator=g)
    y = x @ torch.randn(8, 6, generator=g) if kind == "transcoder" else None
    cfg = TrainConfig(kind=kind, arch=arch, expansion=2, k=3, batch_size=128, train_tokens=128 * 4, l1=1e-3)
    d = train_dictionary(in_memory_batches(x, y, 128), cfg, 8, 8 if y is None else 6, progress=False).dictionary
    store = Store(tmp_path / "store")
    folder = save_dictionary(store, f"toy/{kind}-{arch}", d, {"hook_name": "blocks.0.ln2.hook_normalized"})
    sae = SAE.load_from_disk(str(folder))
    with torch.no_grad():
        torch.testing.assert_close(sae(x), d(x))
        torch.testing.assert_close(sae.encode(x), d.encode(x))
    loaded, meta = load_dictionary(store, f"toy/{kind}-{arch}")
    assert meta["hook_name"] == "blocks.0.ln2.hook_normalized"
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), d(x))
