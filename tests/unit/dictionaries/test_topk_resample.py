"""TopK dead-latent resampling (`_resample_topk`) on hand-built tensors."""

from __future__ import annotations

import pytest
import torch

from interp.dictionaries import TrainConfig, in_memory_batches, make_dictionary
from interp.dictionaries.objective import _resample_topk
from interp.dictionaries.training import Trainer, _to_resample


def _toy():
    cfg = TrainConfig(kind="transcoder", arch="topk", k=1, expansion=2, batch_size=4, train_tokens=8)
    d = make_dictionary(cfg, 2, 2)
    _set(d)
    return d


def _set(d):
    with torch.no_grad():
        # Columns: latent 0 reads x_0 at norm 3; latent 1 is dead; latents 2 and 3 (norm 1) point
        # away from the pool's inputs and never win the top-1.
        d.W_enc.copy_(torch.tensor([[3.0, 0.0, 0.0, -1.0], [0.0, 0.0, -1.0, 0.0]]))
        d.b_enc.zero_()
        d.W_dec.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]]))
        d.b_dec.zero_()


def test_a_dead_latent_points_at_the_only_badly_reconstructed_input():
    d = _toy()
    opt = torch.optim.Adam(d.parameters(), lr=1e-3)
    # Pool: token 0 (x = (1, 0), y = (3, 0)) is reconstructed exactly by latent 0 (pre 3); token 1
    # (x = (1, 3), y = (3, 4)) also gets latent 0 at 3 and leaves error (3, 4) - (3, 0) = (0, 4).
    x = torch.tensor([[1.0, 0.0], [1.0, 3.0]])
    y = torch.tensor([[3.0, 0.0], [3.0, 4.0]])
    d(x).sum().backward()
    opt.step()  # gives Adam moments to be cleared
    _set(d)  # undo the step's change, keep the moments
    dead = torch.tensor([False, True, False, False])
    resampled = torch.tensor([False, False, True, True])  # 2 and 3 were moved before
    moved = _resample_topk(d, opt, x, y, dead, resampled, step=0, seed=0, enc_scale=2.0)
    assert moved == 1
    assert resampled.tolist() == [False, True, True, True]
    # Decoder row 1 = unit(0, 4) = (0, 1).
    torch.testing.assert_close(d.W_dec[1].detach(), torch.tensor([0.0, 1.0]))
    # The reference norm is latent 0's, 3: the only alive latent never resampled (with 2 and 3
    # it would be 5 / 3). Mean x = (1, 1.5), unit(x_1 - mean) = (0, 1): column 2 x 3 x (0, 1) =
    # (0, 6) and b_enc = -(1, 1.5) . (0, 6) = -9, so pre-activation 0 at the pool mean, 9 on token 1.
    torch.testing.assert_close(d.W_enc[:, 1].detach(), torch.tensor([0.0, 6.0]))
    torch.testing.assert_close(d.b_enc[1].detach(), torch.tensor(-9.0))
    torch.testing.assert_close(d.pre_activations(x)[1, 1].detach(), torch.tensor(9.0))
    # The other latents are untouched, and the moved rows' Adam moments are zero.
    torch.testing.assert_close(d.W_enc[:, 0].detach(), torch.tensor([3.0, 0.0]))
    for moment in ("exp_avg", "exp_avg_sq"):
        assert float(opt.state[d.W_dec][moment][1].abs().sum()) == 0.0
        assert float(opt.state[d.W_enc][moment][:, 1].abs().sum()) == 0.0
        assert float(opt.state[d.W_dec][moment][0].abs().sum()) > 0.0


def test_once_every_alive_latent_was_resampled_the_multiple_is_dropped():
    # Latents 0, 2, 3 alive (norms 3, 1, 1) and all resampled before; latent 1 dead. The
    # reference is the alive mean, 5 / 3, with no multiple: at enc_scale 2 it would be 10 / 3.
    d = _toy()
    x = torch.tensor([[1.0, 0.0], [1.0, 3.0]])
    y = torch.tensor([[3.0, 0.0], [3.0, 4.0]])
    dead = torch.tensor([False, True, False, False])
    resampled = torch.tensor([True, False, True, True])
    _resample_topk(d, torch.optim.Adam(d.parameters()), x, y, dead, resampled, step=0, seed=0, enc_scale=2.0)
    torch.testing.assert_close(d.W_enc[:, 1].detach(), torch.tensor([0.0, 5.0 / 3.0]))


def test_repeated_resampling_does_not_ratchet_the_norms():
    # Every latent resampled before; twenty rounds at 1.5x, one latent dead in each. A moved
    # column gets the mean norm of the other three, which never exceeds the largest (3), so no
    # norm passes 3. With the multiple kept, each round multiplied by 1.5 (the largest norm
    # reached 62).
    d = _toy()
    opt = torch.optim.Adam(d.parameters())
    x = torch.tensor([[1.0, 0.0], [1.0, 3.0]])
    y = torch.tensor([[3.0, 0.0], [3.0, 4.0]])
    resampled = torch.ones(4, dtype=torch.bool)
    for step in range(20):
        dead = torch.zeros(4, dtype=torch.bool)
        dead[step % 4] = True
        _resample_topk(d, opt, x, y, dead, resampled, step=step, seed=0, enc_scale=1.5)
    assert float(d.W_enc.detach().norm(dim=0).max()) <= 3.0 + 1e-5


def test_no_dead_latent_moves_nothing():
    d = _toy()
    before = {k: v.clone() for k, v in d.state_dict().items()}
    x = torch.tensor([[1.0, 0.0], [1.0, 2.0]])
    none = torch.zeros(4, dtype=torch.bool)
    assert _resample_topk(d, torch.optim.Adam(d.parameters()), x, x, none, none.clone(), 0, 0) == 0
    for k, v in d.state_dict().items():
        assert torch.equal(v, before[k])


def _train(every: int) -> tuple[int, float]:
    """Eight orthogonal atoms, eight latents, one atom per token, k 1, no AuxK: every latent is
    needed. Returns (latents silent through steps 10-60, final training FVU)."""
    g = torch.Generator().manual_seed(0)
    atoms = torch.linalg.qr(torch.randn(8, 8, generator=g))[0].T
    x = atoms[torch.randint(0, 8, (4096,), generator=g)] * (1 + torch.rand(4096, 1, generator=g))
    cfg = TrainConfig(kind="sae", arch="topk", k=1, expansion=1, batch_size=256, train_tokens=256 * 150, lr=1e-2,
                      warmup_steps=1, dead_after_tokens=256, aux_coefficient=0.0, topk_resample_every=every)
    t = Trainer(in_memory_batches(x, None, 256), cfg, 8, 8)
    silent = 0
    while not t.done:
        t.step()
        if t.state.step == 60:
            silent = int((t.state.tokens_since_fired >= 50 * 256).sum())
    return silent, t.state.history[-1]["fvu"]


def test_resampling_revives_latents_that_never_win_the_top_k():
    # Without AuxK or resampling, latents that never win the top-1 get no gradient: one of
    # the eight stays silent for 50 steps and the FVU ends higher (measured). Resampled every
    # 10 steps none is silent that long, and the FVU ends >10x lower.
    silent, fvu = _train(every=0)
    silent_r, fvu_r = _train(every=10)
    assert silent >= 1 and silent_r == 0
    assert fvu_r < fvu / 10


def test_resampling_settings_are_checked():
    with pytest.raises(ValueError, match="topk_resample_every"):
        TrainConfig(topk_resample_every=-1)
    with pytest.raises(ValueError, match="topk_resample_scale"):
        TrainConfig(topk_resample_scale=0.0)
    for share in (0.0, 1.5):
        with pytest.raises(ValueError, match="topk_resample_max_share"):
            TrainConfig(topk_resample_max_share=share)


def test_the_cap_moves_the_longest_silent_latents_first():
    # Ten latents; silent for 100 tokens or more: 1 (300), 4 (100), 5 (500), 7 (300), 9 (100).
    tokens = torch.tensor([0, 300, 50, 99, 100, 500, 0, 300, 10, 100])
    assert _to_resample(tokens, tokens >= 100, 1.0).nonzero().squeeze(-1).tolist() == [1, 4, 5, 7, 9]
    # Share 0.3 of 10 = 3: latent 5 (500), then 1 and 7 (300, tie by index), not 4 or 9.
    assert _to_resample(tokens, tokens >= 100, 0.3).nonzero().squeeze(-1).tolist() == [1, 5, 7]
    # A share below one latent still moves one; five silent within a cap of 5 move together.
    assert _to_resample(tokens, tokens >= 100, 0.01).nonzero().squeeze(-1).tolist() == [5]
    assert _to_resample(tokens, tokens >= 100, 0.5).sum() == 5


def test_latents_silent_but_not_moved_stay_out_of_the_reference_norm():
    # Latent 1 is moved; latent 2 (norm 1) is silent too but waits (capped). The reference is
    # latent 0's norm alone, 3, so at 2x the column is (0, 6); with latent 2 counted as alive
    # the mean would be 2 and the column (0, 4).
    d = _toy()
    x = torch.tensor([[1.0, 0.0], [1.0, 3.0]])
    y = torch.tensor([[3.0, 0.0], [3.0, 4.0]])
    dead = torch.tensor([False, True, False, False])
    silent = torch.tensor([False, True, True, False])
    resampled = torch.tensor([False, False, False, True])
    _resample_topk(d, torch.optim.Adam(d.parameters()), x, y, dead, resampled, step=0, seed=0, enc_scale=2.0,
                   silent=silent)
    torch.testing.assert_close(d.W_enc[:, 1].detach(), torch.tensor([0.0, 6.0]))
    assert resampled.tolist() == [False, True, False, True]


def test_the_density_bias_leaves_the_new_latent_positive_on_its_share_of_the_pool_only():
    # Pool x = (1, a) for a = 0, 3, 1, 2; only token 1 (a = 3) is badly reconstructed (error
    # (0, 4)), so latent 1 is pointed at it: column 2 x 3 x (0, 1) = (0, 6), centred bias -9, so
    # pre-activations 6a - 9 = -9, 9, -3, 3 (positive on tokens 1 and 3). At density 0.25 the
    # bias drops by the 0.75 quantile of those, 3 + 0.25 x (9 - 3) = 4.5, to -13.5: pre-activations
    # -13.5, 4.5, -7.5, -1.5, positive on token 1 alone.
    x = torch.tensor([[1.0, 0.0], [1.0, 3.0], [1.0, 1.0], [1.0, 2.0]])
    y = torch.tensor([[3.0, 0.0], [3.0, 4.0], [3.0, 0.0], [3.0, 0.0]])
    dead = torch.tensor([False, True, False, False])
    for density, bias, positive in ((None, -9.0, [1, 3]), (0.25, -13.5, [1])):
        d = _toy()
        _resample_topk(d, torch.optim.Adam(d.parameters()), x, y, dead, torch.tensor([False, False, True, True]),
                       step=0, seed=0, enc_scale=2.0, density=density)
        torch.testing.assert_close(d.W_enc[:, 1].detach(), torch.tensor([0.0, 6.0]))
        torch.testing.assert_close(d.b_enc[1].detach(), torch.tensor(bias))
        assert (d.pre_activations(x)[:, 1] > 0).nonzero().squeeze(-1).tolist() == positive


def test_the_density_bias_is_a_checked_setting():
    assert TrainConfig(topk_resample_bias="density").topk_resample_bias == "density"
    with pytest.raises(ValueError, match="topk_resample_bias 'quantile' is not valid"):
        TrainConfig(topk_resample_bias="quantile")
