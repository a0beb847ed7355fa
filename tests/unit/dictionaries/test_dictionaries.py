"""Dictionaries: the module, training loop, metrics and SAELens round trip on hand-built data."""

from __future__ import annotations

import math

import pytest
import torch

from interp.dictionaries import Dictionary, TrainConfig, in_memory_batches, train_dictionary
from interp.dictionaries.evaluation import density_histogram, fvu


def _toy(n: int = 4096, d: int = 8, n_atoms: int = 16, seed: int = 0):
    """x = sparse non-negative combination of unit atoms; y = x @ M (a linear 'MLP')."""
    g = torch.Generator().manual_seed(seed)
    atoms = torch.randn(n_atoms, d, generator=g)
    atoms /= atoms.norm(dim=-1, keepdim=True)
    codes = (torch.rand(n, n_atoms, generator=g) < 0.1) * torch.rand(n, n_atoms, generator=g) * 2
    x = codes @ atoms
    M = torch.randn(d, d, generator=g) / math.sqrt(d)
    return x, x @ M, atoms, M


class _MemoryCheckpoint:
    """In-memory stand-in for StoreCheckpoint with the same save/load protocol."""

    def __init__(self):
        self.saved = None

    def save(self, tensors, meta):
        self.saved = ({k: v.clone() for k, v in tensors.items()}, dict(meta))

    def load(self):
        return self.saved


def test_fvu_of_mean_predictor_is_exactly_one():
    y = torch.tensor([[1.0, 2.0], [3.0, -1.0], [2.0, 5.0]])
    mean = y.mean(0).expand_as(y)
    # sum ||y - mean||^2 / sum ||y - mean||^2
    assert fvu(mean, y) == pytest.approx(1.0, abs=1e-7)
    assert fvu(y, y) == 0.0
    # Predicting zero is worse than the mean whenever the mean is non-zero.
    assert fvu(torch.zeros_like(y), y) > 1.0
    with pytest.raises(ValueError, match="constant target"):
        fvu(torch.zeros(3, 2), torch.ones(3, 2))


def test_hand_built_dictionary_reconstructs_perfectly():
    """A transcoder whose latents are the atoms (encoder = atoms, decoder = atoms @ M) is exact
    on inputs made of orthogonal atoms, for relu and topk alike."""
    d = 4
    atoms = torch.eye(d)  # orthonormal atoms: the encoder reads each code back exactly
    M = torch.tensor([[1.0, 2, 0, 0], [0, 1, 0, 0], [3, 0, 1, 0], [0, 0, 0, -2]])
    codes = torch.tensor([[1.5, 0, 0, 0], [0, 2.0, 0.5, 0], [0, 0, 0, 3.0]])
    x = codes @ atoms
    for arch, k in (("relu", None), ("topk", 2)):
        tc = Dictionary(d, d, d, kind="transcoder", arch=arch, k=k)
        with torch.no_grad():
            tc.W_enc.copy_(atoms.T)
            tc.W_dec.copy_(atoms @ M)
            tc.b_enc.zero_()
            tc.b_dec.zero_()
        torch.testing.assert_close(tc.encode(x), codes)
        torch.testing.assert_close(tc(x), x @ M)


def test_topk_sparse_backward_matches_dense_autograd():
    torch.manual_seed(0)
    x = torch.randn(5, 6)
    W = torch.randn(6, 10, requires_grad=True)
    b = torch.randn(10, requires_grad=True)
    b_pre = torch.randn(6, requires_grad=True)  # an SAE's decoder bias, subtracted from the input
    from interp.dictionaries.dictionary import sparse_topk_encode

    values, idx = sparse_topk_encode(x, W, b, 3, b_pre)
    w = torch.arange(1.0, 11)  # a different weight per latent makes every gradient entry distinct
    (values * w[idx]).sum().backward()
    grads = [t.grad.clone() for t in (W, b, b_pre)]
    for t in (W, b, b_pre):
        t.grad = None
    pre = (x - b_pre) @ W + b
    top = pre.topk(3, dim=-1)
    dense = torch.zeros_like(pre).scatter(1, top.indices, top.values.relu())
    (dense * w).sum().backward()
    for got, t in zip(grads, (W, b, b_pre)):
        torch.testing.assert_close(got, t.grad)


@pytest.mark.parametrize("arch,kind", [("topk", "transcoder"), ("relu", "sae"), ("jumprelu", "transcoder")])
def test_training_reduces_loss(arch, kind):
    torch.set_num_threads(1)
    x, y, _, _ = _toy()
    cfg = TrainConfig(kind=kind, arch=arch, expansion=4, k=4, l1=0.003 if arch == "relu" else 1e-4, lr=1e-2,
                      batch_size=256, train_tokens=256 * 60, warmup_steps=5, dead_after_tokens=2048)
    result = train_dictionary(in_memory_batches(x, None if kind == "sae" else y, 256), cfg, 8, 8, progress=False)
    first, last = result.history[0], result.history[-1]
    assert last["fvu"] < 0.3 * first["fvu"], (first, last)
    assert last["fvu"] < 0.3
    if arch == "topk":
        assert last["l0"] <= 4
    # Decoder rows were kept at unit norm; the activation scale folded in at the end is shared.
    norms = result.dictionary.W_dec.detach().norm(dim=-1)
    torch.testing.assert_close(norms, torch.full_like(norms, float(norms[0])))


def test_b_dec_starts_at_target_mean_and_seed_reproduces():
    x, y, _, _ = _toy(n=1024)
    cfg = TrainConfig(arch="topk", expansion=2, k=2, batch_size=128, train_tokens=128 * 6, seed=3)
    a = train_dictionary(in_memory_batches(x, y + 5.0, 128, seed=3), cfg, 8, 8, progress=False)
    b = train_dictionary(in_memory_batches(x, y + 5.0, 128, seed=3), cfg, 8, 8, progress=False)
    for (name, p), q in zip(a.dictionary.named_parameters(), b.dictionary.parameters()):
        assert torch.equal(p, q), name
    # b_dec began at the target mean (~5 per dim) and moved only a little in 6 steps.
    assert (a.dictionary.b_dec - (y + 5.0).mean(0)).abs().max() < 0.1
    c = train_dictionary(in_memory_batches(x, y + 5.0, 128, seed=4), TrainConfig(
        arch="topk", expansion=2, k=2, batch_size=128, train_tokens=128 * 6, seed=4), 8, 8, progress=False)
    assert not torch.equal(a.dictionary.W_enc, c.dictionary.W_enc)


@pytest.mark.parametrize("arch,topk_resample", [("topk", 0), ("topk", 4), ("relu", 0), ("matryoshka_batchtopk", 0)])
def test_resume_from_checkpoint_reproduces_uninterrupted_run(arch, topk_resample):
    x, y, _, _ = _toy(n=2048)
    # With TopK resampling every 4 steps, 64 latents: 3 move by step 8 (before the checkpoint at
    # 10) and 30 by step 16, so the resampled mask must survive the checkpoint.
    cfg = TrainConfig(arch=arch, expansion=8 if topk_resample else 2, k=3, l1=0.01, batch_size=128,
                      train_tokens=128 * 24, checkpoint_every=10, resample_every=7, dead_after_tokens=256, lr=2e-3,
                      matryoshka_fractions=(0.25,), topk_resample_every=topk_resample, topk_resample_scale=1.5)
    full = train_dictionary(in_memory_batches(x, y, 128), cfg, 8, 8, progress=False)
    # Interrupted run: crash right after the checkpoint at step 10, then resume from it.
    ckpt = _MemoryCheckpoint()
    partial = _run_until(x, y, cfg, ckpt, stop_step=10)
    assert ckpt.saved[1]["step"] == 10 and partial < cfg.n_steps
    resumed = train_dictionary(in_memory_batches(x, y, 128), cfg, 8, 8, checkpoint=ckpt, progress=False)
    for (name, p), q in zip(full.dictionary.named_parameters(), resumed.dictionary.parameters()):
        assert torch.equal(p, q), name
    assert full.history == resumed.history


class _Interrupt(Exception):
    pass


def _run_until(x, y, cfg, ckpt, stop_step: int) -> int:
    """Train with `cfg` but raise (simulating a crash) right after the checkpoint at `stop_step`."""

    class Crashing(_MemoryCheckpoint):
        def save(self, tensors, meta):
            ckpt.save(tensors, meta)
            if meta["step"] >= stop_step:
                raise _Interrupt

        def load(self):
            return ckpt.load()

    with pytest.raises(_Interrupt):
        train_dictionary(in_memory_batches(x, y, 128), cfg, 8, 8, checkpoint=Crashing(), progress=False)
    return ckpt.saved[1]["step"]


def test_config_validation_names_the_bad_value():
    with pytest.raises(ValueError, match="arch 'gelu'"):
        TrainConfig(arch="gelu")
    with pytest.raises(ValueError, match="kind 'mlp'"):
        TrainConfig(kind="mlp")
    with pytest.raises(ValueError, match="skip=True"):
        TrainConfig(kind="sae", skip=True)
    with pytest.raises(ValueError, match="k in 1..d_sae"):
        Dictionary(4, 8, 4, arch="topk", k=9)


def test_density_histogram_counts_dead_apart():
    density = torch.tensor([0.0, 0.0, 1e-3, 0.5, 1.0])
    h = density_histogram(density, bins=6)  # log10 bins of width 1 over [-6, 0]
    assert h["dead"] == 2
    assert sum(h["counts"]) == 3
    assert h["counts"][3] == 1  # 1e-3 -> log10 = -3 -> bin [-3, -2)


def test_viz_figures_and_context_spans():
    import pandas as pd

    from interp.viz.dictionaries import context_spans, density_histogram_figure, l0_vs_ce_figure

    table = pd.DataFrame({"kind": ["transcoder", "transcoder", "sae", "sae"], "l0": [8, 16, 8, 16],
                          "ce_spliced": [3.5, 3.4, 3.6, 3.45], "ce_clean": [3.2] * 4,
                          "ce_recovered": [0.6, 0.7, 0.5, 0.65], "name": list("abcd")})
    fig = l0_vs_ce_figure(table)
    names = [(t.name, t.xaxis) for t in fig.data]
    assert names == [("transcoder", "x"), ("transcoder", "x2"), ("sae", "x"), ("sae", "x2")]
    assert list(fig.data[0].x) == [8, 16] and list(fig.data[1].y) == [0.6, 0.7]
    with pytest.raises(ValueError, match="ce_recovered"):
        l0_vs_ce_figure(table.drop(columns=["ce_recovered"]))
    hist = density_histogram_figure(density_histogram(torch.tensor([0.0, 0.01, 0.5]), bins=3))
    assert sum(hist.data[0].y) == 2
    spans = context_spans(["a", "b", "c"], [0.0, 2.0, 1.0])
    assert [s["intensity"] for s in spans] == [0.0, 1.0, 0.5]


@pytest.mark.parametrize("arch", ["relu", "topk", "jumprelu"])
def test_a_new_dictionary_holds_zeros_until_init_weights(arch):
    """A dictionary built by hand and only partly set computes on defined numbers: every
    weight starts at exactly zero (no uninitialised memory), so with no latent firing the
    output is b_dec even though W_dec was never set."""
    d = Dictionary(5, 7, 3, kind="transcoder", arch=arch, k=2 if arch == "topk" else None, skip=True)
    for name in ("W_enc", "b_enc", "W_dec", "b_dec", "W_skip"):
        assert torch.count_nonzero(getattr(d, name)) == 0, name
    with torch.no_grad():
        d.b_enc.fill_(-1.0)
        d.b_dec.copy_(torch.tensor([1.0, -2.0, 3.0]))
    x = torch.randn(4, 5)
    assert torch.equal(d.decode_sparse(d.encode_sparse(x), x), d.b_dec.expand(4, 3))
