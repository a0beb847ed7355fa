"""Intervals of `interp.stats`, against values worked out by hand (t and normal tables)."""

import math

import numpy as np
import pandas as pd
import pytest

from interp.stats import bootstrap_interval, mean_interval, slope_interval, spearman_interval


def test_spearman_interval_is_fisher_z_with_fiellers_variance():
    # rho 0.5, n 28: z = atanh(0.5) = 0.5493, se = sqrt(1.06 / 25) = 0.2059, z +- 1.96 se -> tanh
    lo, hi = spearman_interval(0.5, 28)
    assert lo == pytest.approx(0.14470, abs=1e-5) and hi == pytest.approx(0.74109, abs=1e-5)
    # symmetric in the sign of rho, narrower with more pairs, NaN where undefined
    assert spearman_interval(-0.5, 28) == (pytest.approx(-hi), pytest.approx(-lo))
    wide, narrow = spearman_interval(0.3, 20), spearman_interval(0.3, 2000)
    assert wide[0] < narrow[0] < 0.3 < narrow[1] < wide[1]
    assert all(math.isnan(v) for v in spearman_interval(0.9, 3))
    assert all(math.isnan(v) for v in spearman_interval(float("nan"), 100))
    lo1, hi1 = spearman_interval(1.0, 50)  # a perfect correlation stays finite and inside [-1, 1]
    assert 0.99 < lo1 <= hi1 <= 1.0


def test_mean_interval_is_the_t_interval():
    # 1..5: mean 3, s = 1.5811, t(0.975, 4) = 2.7764, half = 2.7764 * 1.5811 / sqrt(5) = 1.9632
    lo, hi = mean_interval([1, 2, 3, 4, 5])
    assert lo == pytest.approx(3 - 1.96324, abs=1e-4) and hi == pytest.approx(3 + 1.96324, abs=1e-4)
    assert mean_interval([2.0, 2.0, 2.0]) == (2.0, 2.0)
    assert all(math.isnan(v) for v in mean_interval([1.0]))


def test_slope_interval_uses_n_minus_2_degrees_of_freedom():
    # t(0.975, 10) = 2.2281: 2.0 +- 2.2281 * 0.5
    lo, hi = slope_interval(2.0, 0.5, 12)
    assert lo == pytest.approx(2.0 - 1.11407, abs=1e-4) and hi == pytest.approx(2.0 + 1.11407, abs=1e-4)
    assert all(math.isnan(v) for v in slope_interval(2.0, 0.5, 2))


def test_bootstrap_interval_brackets_the_mean_and_handles_empty_input():
    values = np.arange(100, dtype=float)
    lo, hi = bootstrap_interval(values)
    assert lo < 49.5 < hi and hi - lo < 25
    assert all(math.isnan(v) for v in bootstrap_interval([]))


def test_norm_angles_pooled_interval_and_ablation_intervals():
    from interp.methods.obsprop.checks import AblationRanking, NormAngles

    # two rows of cosines: [0.9, 1.0] and [0.8, 0.9, 1.0]: all five as one sample
    rows = []
    for comp, cos in (("final", [0.9, 1.0]), ("L1H0", [0.8, 0.9, 1.0])):
        c = np.array(cos)
        rows.append({"component": comp, "mean_cos": c.mean(), "std_cos": c.std(ddof=1), "n": len(c)})
    angles = NormAngles(pd.DataFrame(rows))
    assert angles.n == 5 and angles.mean_cos == pytest.approx(0.92)
    assert angles.mean_cos_ci == pytest.approx(mean_interval([0.9, 1.0, 0.8, 0.9, 1.0]))
    table = pd.DataFrame({"kind": ["head"] * 6 + ["mlp"] * 22})
    ranking = AblationRanking(table, spearman_norm=0.5, spearman_direct=0.5, ablation="zero", spearman_heads=0.2)
    assert ranking.n == 28
    assert ranking.intervals["spearman_norm"] == pytest.approx((0.14470, 0.74109), abs=1e-5)
    assert ranking.intervals["spearman_heads"] == spearman_interval(0.2, 6)


def test_check_headlines_show_sample_size_and_interval():
    from interp.viz.obsprop import check_headlines

    lines = check_headlines({"mean_cos": 0.95, "mean_cos_ci": [0.94, 0.96], "n": 1200},
                            {"ablation": "zero", "spearman_norm": 0.5, "spearman_direct": 0.7, "n": 28,
                             "intervals": {"spearman_norm": [0.145, 0.741], "spearman_direct": [0.44, 0.85]}})
    assert lines[0] == "Norm approximation: mean cosine 0.9500, 95% CI [0.940, 0.960], n = 1,200 token positions"
    assert "0.500, 95% CI [0.145, 0.741]" in lines[1] and lines[1].endswith("n = 28 components")
    assert check_headlines({}, {}) == []


def test_efficiency_summary_has_n_and_intervals():
    from interp.methods.obsprop.store import efficiency_summary

    table = pd.DataFrame({"k": [1] * 5 + [2] * 2, "method": ["obsprop"] * 7,
                          "auroc": [1, 2, 3, 4, 5, 0.5, 0.5], "corr": [0.1] * 7})
    s = efficiency_summary(table)
    one = s[s["k"] == 1].iloc[0]
    assert one["n"] == 5 and one["auroc"] == 3
    assert (one["auroc_lo"], one["auroc_hi"]) == pytest.approx(mean_interval([1, 2, 3, 4, 5]))
    assert s[s["k"] == 2].iloc[0]["auroc_lo"] == 0.5


def test_importance_figure_title_carries_interval_and_n():
    from interp.viz.complexity import importance_figure

    frame = pd.DataFrame({"K": np.linspace(0, 1, 28), "importance": np.linspace(1, 2, 28), "site": "s",
                          "index": range(28)})
    fig = importance_figure(frame, rho=0.5)
    assert "95% CI [0.145, 0.741], n = 28" in fig.layout.title.text
