"""The vectorised top-k / quantile / histogram rules on tensors small enough to work by hand."""

import pytest
import torch

from interp.methods.examples.stats import ExampleConfig, histogram, quantile_picks, summarise, top_windows

# 3 windows x 4 positions x 2 features. Feature 0 peaks at window 1 pos 2 (9), then window 0
# pos 3 (5), then window 2 pos 0 (1); feature 1 is positive only in window 2 (pos 1, value 2).
ACTS = torch.tensor([
    [[1.0, -1.0], [2.0, -1.0], [0.0, 0.0], [5.0, -3.0]],
    [[0.0, 0.0], [3.0, -2.0], [9.0, -1.0], [-1.0, -1.0]],
    [[1.0, 0.0], [-2.0, 2.0], [0.0, -5.0], [0.0, 0.0]],
])


def test_top_windows_are_window_peaks_in_order_with_offset():
    picks = top_windows(ACTS, k=3, offset=2)
    assert picks.values[:, 0].tolist() == [9.0, 5.0, 1.0]
    assert picks.windows[:, 0].tolist() == [1, 0, 2]
    assert picks.positions[:, 0].tolist() == [4, 5, 2]  # position in the window + 2 dropped positions
    assert picks.valid[:, 0].tolist() == [True, True, True]
    # feature 1: only window 2 has a positive peak; the other windows' peaks (0, 0) are no example
    assert picks.values[0, 1] == 2.0 and picks.windows[0, 1] == 2 and picks.positions[0, 1] == 3
    assert picks.valid[:, 1].tolist() == [True, False, False]


def test_top_windows_caps_k_at_the_number_of_windows():
    assert top_windows(ACTS, k=10).values.shape == (3, 2)


def test_quantile_bins_hold_exactly_their_tokens():
    # feature 0, max 9, 3 bins: (0, 3] holds 1, 2, 3, 1 (4 tokens), (3, 6] holds 5, (6, 9] holds 9
    picks = quantile_picks(ACTS, n_quantiles=3, per_quantile=4, generator=torch.Generator().manual_seed(0))
    assert picks.values.shape == (3, 4, 2)
    low = sorted(picks.values[0, :, 0][picks.valid[0, :, 0]].tolist())
    assert low == [1.0, 1.0, 2.0, 3.0]
    assert picks.values[1, :, 0][picks.valid[1, :, 0]].tolist() == [5.0]
    assert picks.values[2, :, 0][picks.valid[2, :, 0]].tolist() == [9.0]
    assert (picks.windows[2, 0, 0], picks.positions[2, 0, 0]) == (1, 2)
    # valid picks come first along the rank axis
    assert picks.valid[1, :, 0].tolist() == [True, False, False, False]
    # feature 1 (max 2): its one positive token is in the top bin (4/3, 2]
    assert picks.valid[:, :, 1].sum() == 1 and picks.values[2, 0, 1] == 2.0


def test_quantile_sampling_is_without_replacement_and_seeded():
    config = dict(n_quantiles=3, per_quantile=2)
    a = quantile_picks(ACTS, **config, generator=torch.Generator().manual_seed(1))
    b = quantile_picks(ACTS, **config, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a.windows, b.windows) and torch.equal(a.positions, b.positions)
    tokens = list(zip(a.windows[0, :, 0].tolist(), a.positions[0, :, 0].tolist()))
    assert len(set(tokens)) == 2  # two distinct tokens of the low bin


def test_histogram_counts_by_hand():
    flat = torch.tensor([[0.0, 1.0], [1.0, 1.0], [2.0, 1.0], [4.0, 1.0]])
    h = histogram(flat, n_bins=2)
    # feature 0: range [0, 4], bins [0, 2) and [2, 4] (the max goes to the last bin)
    assert h.counts[0].tolist() == [2, 2]
    assert h.edges[0].tolist() == [0.0, 2.0, 4.0]
    # feature 1 is constant: everything in the first bin of a unit-wide range
    assert h.counts[1].tolist() == [4, 0] and h.edges[1].tolist() == [1.0, 1.5, 2.0]


def test_positive_only_histogram_drops_zeros_and_negatives():
    flat = torch.tensor([[0.0], [-1.0], [1.0], [3.0], [4.0]])
    h = histogram(flat, n_bins=2, positive_only=True)
    assert h.edges[0].tolist() == [0.0, 2.0, 4.0]
    assert h.counts[0].tolist() == [1, 2]
    assert int(h.counts.sum()) == 3


def test_summarise_density_and_extremes():
    stats = summarise(ACTS, ExampleConfig(n_top=2, n_quantiles=2, per_quantile=1, n_bins=3), offset=1)
    assert stats.n_tokens == 12
    assert stats.density.tolist() == pytest.approx([6 / 12, 1 / 12])
    assert stats.max_act.tolist() == [9.0, 2.0] and stats.min_act.tolist() == [-2.0, -5.0]
    assert stats.mean_act[0] == pytest.approx(18 / 12)
    assert int(stats.histogram.counts[0].sum()) == 12
    assert stats.top.positions[0, 0] == 3  # window 1, position 2, one dropped position before it


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="n_top"):
        ExampleConfig(n_top=0)
    with pytest.raises(ValueError, match="left"):
        ExampleConfig(left=-1)
