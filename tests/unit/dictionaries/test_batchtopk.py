"""BatchTopK and Matryoshka-BatchTopK on hand-built tensors, and their place in the training loop."""

from __future__ import annotations

import pytest
import torch

from interp.dictionaries import TrainConfig, in_memory_batches, train_dictionary
from interp.dictionaries.batchtopk import batch_topk, matryoshka_widths, prefix_errors, updated_threshold
from interp.dictionaries.training import Trainer


def test_batch_topk_keeps_the_batch_times_k_largest_across_the_batch():
    acts = torch.tensor([[9.0, 8.0, 7.0, 6.0, 0.5],
                         [0.1, 0.2, 5.0, 0.3, 0.4],
                         [0.6, 0.7, 0.8, 0.9, 1.0]])
    kept = batch_topk(acts, k=2)  # 3 tokens x 2 = the 6 largest of the 15 entries
    expected = torch.tensor([[9.0, 8.0, 7.0, 6.0, 0.0],
                             [0.0, 0.0, 5.0, 0.0, 0.0],
                             [0.0, 0.0, 0.0, 0.0, 1.0]])
    torch.testing.assert_close(kept, expected)
    assert int((kept > 0).sum()) == 6
    # Per token the counts differ (4, 1, 1): only the batch total is fixed, unlike TopK.
    assert (kept > 0).sum(-1).tolist() == [4, 1, 1]
    # Gradients reach the kept entries only.
    a = acts.clone().requires_grad_(True)
    batch_topk(a, 2).sum().backward()
    torch.testing.assert_close(a.grad, (expected > 0).float())


def test_threshold_moves_towards_the_smallest_kept_activation():
    kept = torch.tensor([[0.0, 0.7, 2.0], [1.5, 0.0, 0.0]], dtype=torch.float64)
    t = updated_threshold(0.0, kept, lr=0.01)  # 0.99 * 0 + 0.01 * 0.7
    assert t == pytest.approx(0.007, abs=1e-12)
    t = updated_threshold(t, torch.tensor([[0.5, 3.0]], dtype=torch.float64), lr=0.01)  # 0.99 * 0.007 + 0.01 * 0.5
    assert t == pytest.approx(0.01193, abs=1e-12)
    assert updated_threshold(t, torch.zeros(2, 3), lr=0.01) == t  # nothing fired: unchanged


def test_matryoshka_prefix_errors_sum_as_defined():
    # d_out = 2, d_sae = 4; prefixes end at 1, 2 and 4 latents.
    W_dec = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 2.0]])
    acts = torch.tensor([[2.0, 1.0, 1.0, 0.0], [0.0, 3.0, 0.0, 1.0]])
    b_dec = torch.tensor([0.5, 0.0])
    y = torch.tensor([[3.0, 2.0], [0.5, 5.0]])
    # Token 0: prefix 1 gives (2.5, 0), error (0.5, 2) -> 4.25; prefix 2 (2.5, 1) -> 0.25 + 1 = 1.25;
    #          all 4 latents (3.5, 2) -> 0.25.
    # Token 1: prefix 1 gives (0.5, 0) -> 25; prefix 2 (0.5, 3) -> 4; all (0.5, 5) -> 0.
    errors = prefix_errors(acts, W_dec, b_dec, y, (1, 2, 4))
    torch.testing.assert_close(errors, torch.tensor([(4.25 + 25) / 2, (1.25 + 4) / 2, (0.25 + 0) / 2]))
    # The last level is the ordinary reconstruction error.
    full = (y - (acts @ W_dec + b_dec)).pow(2).sum(-1).mean()
    torch.testing.assert_close(errors[-1], full)
    assert matryoshka_widths(64, (0.0625, 0.25)) == (4, 16, 64)
    with pytest.raises(ValueError, match="strictly increasing"):
        matryoshka_widths(8, (0.05, 0.1))  # rounds to widths 0 and 1


def _toy(n=4096, d=8, n_atoms=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    atoms = torch.randn(n_atoms, d, generator=g)
    atoms /= atoms.norm(dim=-1, keepdim=True)
    codes = (torch.rand(n, n_atoms, generator=g) < 0.15) * (1 + torch.rand(n, n_atoms, generator=g))
    x = codes @ atoms
    return x, x @ torch.randn(d, d, generator=g) / d ** 0.5


def test_first_step_threshold_is_the_batch_times_k_th_largest_activation():
    x, y = _toy()
    cfg = TrainConfig(kind="transcoder", arch="batchtopk", k=3, expansion=2, batch_size=128, train_tokens=128 * 4,
                      threshold_lr=1.0)
    t = Trainer(in_memory_batches(x, y, 128), cfg, 8, 8)
    xb, _ = t.batches.batch(0)
    with torch.no_grad():
        pre = t.model.pre_activations(xb * t.state.x_scale).relu()
    expected = float(pre.reshape(-1).topk(128 * 3).values.min())  # lr = 1: the threshold is that value
    t.step()
    assert t.state.threshold == pytest.approx(expected, rel=1e-6)
    assert torch.equal(t.model.threshold, torch.full((16,), t.state.threshold, dtype=torch.float32))
    assert not t.model.threshold.requires_grad


@pytest.mark.parametrize("arch,kind", [("batchtopk", "sae"), ("batchtopk", "transcoder"),
                                       ("matryoshka_batchtopk", "sae"), ("matryoshka_batchtopk", "transcoder")])
def test_batch_architectures_train_into_a_jumprelu_dictionary_with_about_k_active(arch, kind):
    torch.set_num_threads(1)
    x, y = _toy()
    cfg = TrainConfig(kind=kind, arch=arch, expansion=4, k=3, lr=1e-2, batch_size=256, train_tokens=256 * 60,
                      warmup_steps=5, dead_after_tokens=2048, matryoshka_fractions=(0.25, 0.5),
                      threshold_lr=0.1)  # the moving average settles within the 60 steps
    result = train_dictionary(in_memory_batches(x, None if kind == "sae" else y, 256), cfg, 8, 8, progress=False)
    first, last = result.history[0], result.history[-1]
    assert last["l0"] == pytest.approx(3.0)  # in training exactly k per token on average
    assert last["fvu"] < 0.35 * first["fvu"], (first, last)
    d = result.dictionary
    assert d.arch == "jumprelu" and d.kind == kind
    assert float(d.threshold.min()) == float(d.threshold.max()) > 0  # one learned global threshold
    with torch.no_grad():
        l0 = float((d.encode(x) > 0).sum(-1).float().mean())
    assert 1.5 < l0 < 6.0, l0  # the threshold at inference keeps about k per token


def test_matryoshka_early_prefix_explains_more_than_the_same_latents_of_plain_batchtopk():
    torch.set_num_threads(1)
    x, _ = _toy(n_atoms=32)
    fvus = {}
    for arch in ("batchtopk", "matryoshka_batchtopk"):
        cfg = TrainConfig(kind="sae", arch=arch, expansion=4, k=4, lr=1e-2, batch_size=256, train_tokens=256 * 80,
                          warmup_steps=5, dead_after_tokens=2048, matryoshka_fractions=(0.25,))
        d = train_dictionary(in_memory_batches(x, None, 256), cfg, 8, 8, progress=False).dictionary
        with torch.no_grad():
            z = d.encode(x)
            recon = z[:, :8] @ d.W_dec[:8] + d.b_dec  # the first quarter of the latents alone
        fvus[arch] = float((x - recon).pow(2).sum() / (x - x.mean(0)).pow(2).sum())
    assert fvus["matryoshka_batchtopk"] < fvus["batchtopk"], fvus


def test_batch_config_validation():
    with pytest.raises(ValueError, match="matryoshka_fractions"):
        TrainConfig(arch="matryoshka_batchtopk", matryoshka_fractions=(0.5, 0.25))
    with pytest.raises(ValueError, match="threshold_lr"):
        TrainConfig(arch="batchtopk", threshold_lr=0.0)
    with pytest.raises(ValueError, match="k in 1..d_sae=16"):
        train_dictionary(in_memory_batches(torch.randn(64, 8), None, 32),
                         TrainConfig(kind="sae", arch="batchtopk", k=17, expansion=2, batch_size=32, train_tokens=64),
                         8, 8, progress=False)
    assert TrainConfig(arch="matryoshka_batchtopk").to_dict()["matryoshka_fractions"] == [0.0625, 0.25]
