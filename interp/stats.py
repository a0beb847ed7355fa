"""95% intervals for the headline numbers every method stores next to their sample size.

1. ``bootstrap_interval(values)``: percentile bootstrap of a statistic (default the mean) over
   independent units (prompts, windows), resampled with replacement.
2. ``spearman_interval(rho, n)``: Fisher's z-transform with Fieller, Hartley and Pearson's
   variance for Spearman's rho, ``se = sqrt(1.06 / (n - 3))``; the interval is
   ``tanh(atanh(rho) +- 1.96 se)``. Closed form, so it costs nothing for tens of thousands of
   features (a bootstrap of the rank correlation would re-rank every resample); it assumes
   the n pairs are independent. NaN for n <= 3 or a NaN rho.
3. ``mean_interval(values)``: the t interval of a mean, ``mean +- t_{0.975, n-1} s / sqrt(n)``
   (scipy's t quantile), NaN for n < 2.
4. ``slope_interval(slope, stderr, n)``: the t interval of a least-squares slope from its
   standard error, with n - 2 degrees of freedom.

Small closed forms written here rather than calling ``scipy.stats.bootstrap`` per number:
scipy has no interval for Spearman's rho, and its bootstrap would be 1000 re-rankings.
"""

from __future__ import annotations

import math

import numpy as np

Z95 = 1.959963984540054
"""The standard normal's 97.5% quantile."""


def bootstrap_interval(values, n_boot: int = 2000, seed: int = 0, stat=np.mean) -> tuple[float, float]:
    """95% percentile bootstrap interval of `stat` (default the mean) of `values`, resampled with replacement."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    draws = values[rng.integers(0, len(values), size=(n_boot, len(values)))]
    stats = stat(draws, axis=1)
    return float(np.percentile(stats, 2.5)), float(np.percentile(stats, 97.5))


def spearman_interval(rho: float, n: int) -> tuple[float, float]:
    """95% interval of a Spearman correlation `rho` from `n` independent pairs (Fisher z, Fieller's variance)."""
    if n <= 3 or not math.isfinite(rho):
        return (math.nan, math.nan)
    r = min(max(rho, -1.0 + 1e-12), 1.0 - 1e-12)  # atanh(+-1) is infinite
    z, se = math.atanh(r), math.sqrt(1.06 / (n - 3))
    return (math.tanh(z - Z95 * se), math.tanh(z + Z95 * se))


def mean_interval(values) -> tuple[float, float]:
    """95% t interval of the mean of `values` (NaN for fewer than 2 values)."""
    from scipy.stats import t

    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size < 2:
        return (math.nan, math.nan)
    half = float(t.ppf(0.975, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return (float(v.mean()) - half, float(v.mean()) + half)


def slope_interval(slope: float, stderr: float, n: int) -> tuple[float, float]:
    """95% t interval of a least-squares slope with standard error `stderr` from `n` points."""
    from scipy.stats import t

    if n < 3 or not (math.isfinite(slope) and math.isfinite(stderr)):
        return (math.nan, math.nan)
    half = float(t.ppf(0.975, n - 2) * stderr)
    return (slope - half, slope + half)
