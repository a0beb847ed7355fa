"""ObsProp checks: norm angle, ablation ranking, coupling fit, store, known-feature ranking, CLI, figures."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interp.methods.obsprop.propagation import obsprop
from interp.methods.obsprop.checks import coupling_check, norm_gradient_cosines
from interp.models.weights import NormWeights


# ----------------------------------------------------------------------------- norm angle
def test_norm_cosines_closed_form():
    norm = NormWeights("rms", torch.ones(2), None, 0.0)
    w = torch.tensor([1.0, 0.0])
    # x orthogonal to w: the exact gradient (w - (xhat.w) xhat/d)/s is parallel to w -> cosine 1.
    # x = (1, 1): xhat = (1, 1), gradient ~ (1, 0) - (1/2)(1, 1) = (0.5, -0.5) -> cosine 1/sqrt(2).
    cos = norm_gradient_cosines(norm, torch.tensor([[0.0, 3.0], [1.0, 1.0]]), w)
    torch.testing.assert_close(cos, torch.tensor([1.0, 2 ** -0.5]))


# ----------------------------------------------------------------------------- coupling
def test_coupling_equals_slope_for_isotropic_inputs():
    g = torch.Generator().manual_seed(0)
    y1, y2 = torch.tensor([1.0, 2.0, 0.0, 0.0]), torch.tensor([0.5, 0.5, 3.0, 0.0])
    acts = torch.randn(20000, 4, generator=g)
    check = coupling_check(y1, y2, acts)
    assert check.predicted == pytest.approx(1.5 / 5)
    assert check.slope == pytest.approx(check.predicted, abs=0.02)
    # y2 = 2 y1 exactly: slope 2, perfect fit.
    exact = coupling_check(y1, 2 * y1, acts)
    assert exact.slope == pytest.approx(2.0) and exact.r2 == pytest.approx(1.0)


def test_figures_carry_the_data():
    import pandas as pd

    from interp.viz.obsprop import component_ranking_figure, coupling_scatter, data_efficiency_figure

    table = pd.DataFrame({"component": ["L1H0", "M1", "L0H2"], "norm": [3.0, 2.0, 1.0], "effect": [-1.0, .5, .1]})
    fig = component_ranking_figure(table)
    assert list(fig.data[0].y) == [3.0, 2.0, 1.0] and list(fig.data[1].y) == [1.0, .5, .1]
    scores = np.stack([np.arange(10.0), 2 * np.arange(10.0)], 1)
    fig = coupling_scatter(scores, predicted=1.9, slope=2.0)
    assert fig.data[1].y[-1] == pytest.approx(18.0) and fig.data[2].y[-1] == pytest.approx(17.1)
    eff = pd.DataFrame({"k": [1, 1, 2, 2], "seed": [0, 1, 0, 1], "method": ["obsprop"] * 4, "auroc": [.8, .9, 1., 1.],
                        "corr": [.1, .2, .3, .4]})
    fig = data_efficiency_figure(eff)
    assert list(fig.data[0].y) == pytest.approx([.85, 1.0])
    with pytest.raises(ValueError, match="metric 'f1'"):
        data_efficiency_figure(eff, metric="f1")
