"""Where interp keeps its data: one root directory, overridable.

Resolution order: an explicit argument, then the ``INTERP_HOME`` environment variable,
then ``data/`` beside the source checkout (or ``~/.interp`` for an installed wheel).
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "INTERP_HOME"


def data_root(override: str | os.PathLike | None = None) -> Path:
    """The data root; created on first use."""
    if override is not None:
        root = Path(override)
    elif os.environ.get(ENV_VAR):
        root = Path(os.environ[ENV_VAR])
    else:
        checkout = Path(__file__).resolve().parent.parent
        root = checkout / "data" if (checkout / "pyproject.toml").exists() else Path.home() / ".interp"
    root = root.expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    return root


def models_dir(override: str | os.PathLike | None = None) -> Path:
    """Converted model caches (safetensors + tokenizer files), one folder per model."""
    path = data_root(override) / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def store_dir(override: str | os.PathLike | None = None) -> Path:
    """The default feature-store root."""
    return data_root(override) / "store"


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """Re-computable intermediates (activation caches, corpus token caches)."""
    path = data_root(override) / "cache"
    path.mkdir(parents=True, exist_ok=True)
    return path
