"""Clamping verification on tiny models with planted neurons (known answers) and on SmolLM2."""

from __future__ import annotations

import numpy as np
import pytest

from interp.methods.neurons.clamping import ClampConfig, control_neurons


def test_controls_are_reproducible_and_exclude_the_neuron():
    a, b = control_neurons(64, 1, 5, 8, seed=0), control_neurons(64, 1, 5, 8, seed=0)
    assert np.array_equal(a, b) and 5 not in a and len(set(a)) == 8
    assert not np.array_equal(a, control_neurons(64, 1, 6, 8, seed=0))


def test_config_errors_name_the_value():
    with pytest.raises(ValueError, match="'middle'.*all, last"):
        ClampConfig(positions="middle")
    with pytest.raises(ValueError, match="at least one"):
        ClampConfig(values=())
    with pytest.raises(ValueError, match="n_controls"):
        ClampConfig(n_controls=-1)
