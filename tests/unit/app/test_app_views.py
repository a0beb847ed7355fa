"""Generic store figures and HTML of `interp.viz.store_views`, checked by hand."""

from __future__ import annotations

import re

import numpy as np
import pytest

from interp.sites import layer_of
from interp.viz import store_views


def test_context_html_escapes_text_and_scales_intensity():
    html = store_views.context_html(["<b>", " a&b", "\n"], [2.0, -1.0, 0.0], max_pos=0)
    assert "<b>" not in html and "&lt;b&gt;" in html and "a&amp;b" in html
    alphas = [float(a) for a in re.findall(r"rgba\([^)]*,([0-9.]+)\)", html)]
    assert alphas == [1.0, 0.5, 0.0]  # |act| / max |act|
    assert html.count("border-bottom") == 1 and 'title="-1"' in html
    assert store_views.context_html(["x"], [3.0], scale=6.0).count("0.50)") == 1
    with pytest.raises(ValueError, match="one activation per token"):
        store_views.context_html(["a", "b"], [1.0])


def test_activation_histogram_counts_every_finite_value():
    fig = store_views.activation_histogram([0.0, 1.0, 1.0, float("nan"), None, 2.0])
    assert sorted(fig.data[0].x) == [0.0, 1.0, 1.0, 2.0]


def test_layer_of_and_heatmap_shapes():
    assert layer_of("blocks.12.mlp.hook_post") == 12
    assert layer_of("hook_embed") is None
    fig = store_views.feature_position_heatmap(["a", "b"], ["L0/N1"], np.array([[1.0, 2.0]]))
    assert list(fig.data[0].x) == ["0:a", "1:b"]
    with pytest.raises(ValueError, match="expected \\(1, 3\\)"):
        store_views.feature_position_heatmap(["a", "b", "c"], ["L0/N1"], np.ones((2, 3)))
