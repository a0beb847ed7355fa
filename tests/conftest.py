"""Shared fixtures (helpers live in tests/helpers). The real-model fixture loads SmolLM2 once per session (tests marked `model`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def smollm2():
    """The embedded default model (converted cache under the data root, reused across runs)."""
    from interp.models import load_model

    return load_model("smollm2-135m")


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory):
    """Tiny random gpt2 / llama / neox models saved as local HF directories."""
    from helpers.tiny import save_tiny_model

    root = tmp_path_factory.mktemp("tiny_models")
    return {fam: save_tiny_model(root / fam, fam) for fam in ("gpt2", "llama", "neox")}


@pytest.fixture(scope="session")
def tiny_models(tiny_dirs):
    """The tiny models loaded through the same path as a hub id: `load_model(directory)`."""
    from interp.models import load_model

    return {fam: load_model(str(path)) for fam, path in tiny_dirs.items()}


@pytest.fixture
def no_model(monkeypatch):
    """Any attempt to load a model fails the test: the checks must come first."""
    def refuse(*args, **kwargs):
        raise AssertionError("load_model was called")

    import interp.models

    monkeypatch.setattr(interp.models, "load_model", refuse)
