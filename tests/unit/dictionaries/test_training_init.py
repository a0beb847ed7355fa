"""Initialisation, dead-latent revival and multi-dictionary training on hand-built tensors."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from interp.dictionaries import TrainConfig, in_memory_batches, make_dictionary, train_dictionary
from interp.dictionaries.activations import artefact_prefix, shared_site_batches
from interp.dictionaries.initialisation import geometric_median
from interp.dictionaries.training import Trainer, train_dictionaries


def _atoms_data(n=4096, d=8, n_atoms=16, seed=0, orthogonal=False):
    """x = a * atom_j with one random atom per token, a in [1, 2]: a 1-sparse toy problem."""
    g = torch.Generator().manual_seed(seed)
    atoms = torch.randn(n_atoms, d, generator=g)
    atoms = torch.linalg.qr(atoms.T)[0].T if orthogonal else atoms / atoms.norm(dim=-1, keepdim=True)
    which = torch.randint(0, n_atoms, (n,), generator=g)
    return atoms[which] * (1 + torch.rand(n, 1, generator=g)), atoms


def test_fresh_dictionary_has_unit_decoder_rows_and_tied_encoder():
    d = make_dictionary(TrainConfig(kind="transcoder", arch="topk", k=2, expansion=3), 6, 6)
    torch.testing.assert_close(d.W_dec.norm(dim=-1), torch.ones(18))
    assert torch.equal(d.W_enc, d.W_dec.T)
    assert torch.equal(d.b_enc, torch.zeros(18))


def test_geometric_median_ignores_an_outlier():
    # In 1-d the geometric median is the median: (0, 1, 100) -> 1; the mean would be 33.7.
    pts = torch.tensor([[0.0, 0.0], [1.0, 0.0], [100.0, 0.0]])
    torch.testing.assert_close(geometric_median(pts), torch.tensor([1.0, 0.0]), atol=1e-4, rtol=0)
    # Four corners of a square: the centre, by symmetry.
    sq = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])
    torch.testing.assert_close(geometric_median(sq), torch.tensor([1.0, 1.0]))


def test_data_init_sets_b_dec_and_keeps_encoder_parallel_to_decoder():
    x, _ = _atoms_data()
    y = x.clone()
    y[:8] += 1000.0  # outliers move the mean, barely the geometric median
    for how in ("mean", "geometric_median"):
        cfg = TrainConfig(kind="transcoder", arch="topk", k=1, expansion=2, batch_size=256, train_tokens=512,
                          b_dec_init=how)
        t = Trainer(in_memory_batches(x, y, 256), cfg, 8, 8)
        ys = y * t.state.y_scale
        expected = ys.mean(0) if how == "mean" else geometric_median(ys)
        torch.testing.assert_close(t.model.b_dec.detach(), expected)
        # W_enc was only rescaled: every column still points along its decoder row.
        cos = torch.nn.functional.cosine_similarity(t.model.W_enc.T, t.model.W_dec, dim=-1)
        torch.testing.assert_close(cos, torch.ones_like(cos))
    assert float(geometric_median(ys).norm()) < 0.1 * float(ys.mean(0).norm())


def _revived(aux_coefficient: float) -> bool:
    """Eight orthogonal atoms, eight latents, one atom per token: every latent is needed. Kill
    latent 0 (encoder column shrunk so it never wins the top-1), train, report whether it fires."""
    torch.manual_seed(0)
    x, _ = _atoms_data(n_atoms=8, orthogonal=True)
    cfg = TrainConfig(kind="sae", arch="topk", k=1, expansion=1, batch_size=256, train_tokens=256 * 150, lr=1e-2,
                      warmup_steps=1, dead_after_tokens=256, aux_k=4, aux_coefficient=aux_coefficient)
    t = Trainer(in_memory_batches(x, None, 256), cfg, 8, 8)
    with torch.no_grad():
        t.model.W_enc[:, 0] *= 1e-3
    while not t.done:
        t.step()
    return bool(t.state.tokens_since_fired[0] < cfg.dead_after_tokens)


def test_auxk_loss_revives_a_dead_latent():
    # Without the auxiliary loss a TopK latent that never wins gets no gradient and stays dead.
    assert not _revived(aux_coefficient=0.0)
    assert _revived(aux_coefficient=1.0)


class _FakeAdapter:
    """Two 'sites' computed from the tokens by fixed maps; counts forward passes."""

    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.emb = torch.randn(50, 6, generator=g)
        self.M = torch.randn(6, 6, generator=g)
        self.calls = 0
        self.info = SimpleNamespace(n_layers=2)

    def check_site(self, s):
        return s

    def run(self, tokens, names, stop_at_layer=None):
        self.calls += 1
        a = self.emb[tokens]  # (batch, pos, 6)
        acts = {"blocks.0.a": a, "blocks.0.b": torch.tanh(a @ self.M), "blocks.1.c": a @ self.M}
        return SimpleNamespace(cache={n: acts[n] for n in names})


def test_multi_dictionary_training_matches_separate_runs_and_shares_the_forward_pass():
    tokens = torch.randint(0, 50, (24, 9), generator=torch.Generator().manual_seed(1))
    pairs = [("blocks.0.a", "blocks.0.b"), ("blocks.0.a", "blocks.1.c")]
    cfgs = [TrainConfig(kind="transcoder", arch="topk", k=2, expansion=2, batch_size=32, train_tokens=32 * 12,
                        dead_after_tokens=64, seed=5),
            TrainConfig(kind="transcoder", arch="relu", expansion=3, l1=1e-3, batch_size=32, train_tokens=32 * 9,
                        resample_every=4, dead_after_tokens=64, seed=5)]
    shared = _FakeAdapter()
    together = train_dictionaries(shared_site_batches(shared, tokens, pairs, 32, buffer_windows=8, seed=5, skip=2),
                                  cfgs, [(6, 6), (6, 6)], progress=False)
    # 24 windows in chunks of 8 = 3 chunks; 12 steps of 32 tokens from 8 x 7 = 56-token chunks
    # visit chunks 0..11 mod 3, each fetched once per visit and shared by both dictionaries.
    assert shared.calls == 12
    for pair, cfg, got in zip(pairs, cfgs, together):
        alone = _FakeAdapter()
        ref = train_dictionary(shared_site_batches(alone, tokens, [pair], 32, buffer_windows=8, seed=5, skip=2)[0],
                               cfg, 6, 6, progress=False)
        for (name, p), q in zip(ref.dictionary.named_parameters(), got.dictionary.parameters()):
            assert torch.equal(p, q), name
        assert ref.history == got.history


def test_kept_chunks_serve_later_epochs_without_a_model_pass_and_give_the_same_run():
    tokens = torch.randint(0, 50, (24, 9), generator=torch.Generator().manual_seed(1))
    pair = [("blocks.0.a", "blocks.0.b")]
    cfg = TrainConfig(kind="transcoder", arch="topk", k=2, expansion=2, batch_size=32, train_tokens=32 * 12,
                      dead_after_tokens=64, seed=5)
    runs = {}
    for keep in (False, True):
        fake = _FakeAdapter()
        batches = shared_site_batches(fake, tokens, pair, 32, buffer_windows=8, seed=5, skip=2, keep_chunks=keep)
        runs[keep] = (train_dictionary(batches[0], cfg, 6, 6, progress=False), fake.calls)
    # 3 chunks of 56 tokens hold one 32-token batch each: 12 steps = 4 epochs over chunks 0, 1, 2.
    assert runs[False][1] == 12 and runs[True][1] == 3  # kept: each chunk's model pass runs once
    for p, q in zip(runs[False][0].dictionary.parameters(), runs[True][0].dictionary.parameters()):
        assert torch.equal(p, q)


def test_artefact_prefix_counts_leading_outlier_positions():
    # Norms by position at two layers: BOS huge everywhere, position 1 high at layer 1 only.
    profile = torch.tensor([[900.0, 12.0, 10.0, 11.0, 9.0, 10.0],
                            [800.0, 45.0, 10.0, 10.0, 30.0, 10.0]])
    assert artefact_prefix(profile) == 2  # position 4 is high too, but not leading
    assert artefact_prefix(profile[:1]) == 1
    assert artefact_prefix(torch.full((1, 5), 3.0)) == 0


def test_several_widths_and_k_at_one_site_share_one_model_pass():
    """Three SAEs on one site (two k, two widths, TopK and BatchTopK) from one activation stream:
    each chunk is computed once for all three, and each run equals its run alone."""
    tokens = torch.randint(0, 50, (16, 9), generator=torch.Generator().manual_seed(2))
    site = ("blocks.0.a", "blocks.0.a")
    cfgs = [TrainConfig(kind="sae", arch="topk", k=2, expansion=2, batch_size=32, train_tokens=32 * 6, seed=5),
            TrainConfig(kind="sae", arch="topk", k=4, expansion=4, batch_size=32, train_tokens=32 * 6, seed=5),
            TrainConfig(kind="sae", arch="batchtopk", k=3, expansion=2, batch_size=32, train_tokens=32 * 6, seed=5)]
    shared = _FakeAdapter()
    together = train_dictionaries(shared_site_batches(shared, tokens, [site] * 3, 32, buffer_windows=8, seed=5,
                                                      skip=2), cfgs, [(6, 6)] * 3, progress=False)
    # 16 windows in chunks of 8 = 2 chunks of 56 tokens, 1 batch of 32 each: 6 steps visit
    # chunks 0, 1, 0, 1, 0, 1, each computed once per visit for all three dictionaries.
    assert shared.calls == 6
    assert [r.dictionary.d_sae for r in together] == [12, 24, 12]
    for cfg, got in zip(cfgs, together):
        ref = train_dictionary(shared_site_batches(_FakeAdapter(), tokens, [site], 32, buffer_windows=8, seed=5,
                                                   skip=2)[0], cfg, 6, 6, progress=False)
        for (name, p), q in zip(ref.dictionary.named_parameters(), got.dictionary.parameters()):
            assert torch.equal(p, q), name
