"""The model adapter: loading paths, tokenisation, caching, interventions, weights, errors."""

from __future__ import annotations

import pytest

from interp.models import load_model, resolve


def test_unknown_model_lists_aliases():
    with pytest.raises(ValueError, match="smollm2-135m"):
        resolve("not a model!")
    with pytest.raises(ValueError, match="smollm2-135m"):
        load_model("no-such-org/no-such-model-xyz")
