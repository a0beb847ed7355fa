"""The dictionary evaluation's 95% intervals on hand-built per-window sums."""

import torch

from interp.dictionaries.evaluation import EvalConfig, _metrics


def _windows(n_w: int = 20, n_pos: int = 8, d_sae: int = 50, seed: int = 0) -> dict[str, torch.Tensor]:
    """Per-window sums of a dictionary whose latents fire rarely: latent j fires in window w
    only when (w * 7 + j) % 23 == 0, so many latents fire in just one window."""
    g = torch.Generator().manual_seed(seed)
    fired = torch.zeros(n_w, d_sae, dtype=torch.int32)
    for w in range(n_w):
        for j in range(d_sae):
            fired[w, j] = int((w * 7 + j) % 23 == 0)
    ones = torch.ones(n_w, dtype=torch.float64)
    return {"fired": fired, "l0": 3 * n_pos * ones, "err": ones + 0.1 * torch.rand(n_w, generator=g, dtype=torch.float64),
            "y_sum": torch.zeros(n_w, 4, dtype=torch.float64), "y_sq": 4 * ones,
            "ce_clean": ones * (n_pos - 1), "ce_spliced": 1.5 * ones * (n_pos - 1), "kl": 0.1 * ones,
            "ce_zero_ablation": 3 * ones * (n_pos - 1), "ce_mean_ablation": 2 * ones * (n_pos - 1)}


def test_every_interval_brackets_its_point_value_dead_share_included():
    m = _metrics(_windows(), 8, EvalConfig(bootstrap=500))
    # By hand: latent j fires somewhere iff some w < 20 has (7w + j) % 23 == 0; 7 is invertible mod
    # 23, so each j has exactly one w in 0..22, and it is < 20 for 20 of every 23 residues.
    fires = [any((w * 7 + j) % 23 == 0 for w in range(20)) for j in range(50)]
    assert m.dead_fraction == 1 - sum(fires) / 50
    assert m.l0 == 3 and m.ce_recovered == 0.75
    for key, (lo, hi) in m.intervals.items():
        value = getattr(m, key)
        assert lo <= value + 1e-12 and value <= hi + 1e-12, (key, lo, value, hi)
    lo, hi = m.intervals["dead_fraction"]
    assert hi - lo > 0  # a real spread, not a collapsed interval
