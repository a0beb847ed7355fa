"""The app's bounded model cache: the least recently used model is evicted past a size.

`app.state` keeps the one process-wide instance (``st.cache_resource``); this module has no
streamlit in it, so the eviction rule is tested on its own.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable

MAX_MODELS_ENV = "INTERP_APP_MAX_MODELS"
DEFAULT_MAX_MODELS = 2

log = logging.getLogger("interp.app")


def max_models() -> int:
    """How many models the app keeps loaded at once: ``$INTERP_APP_MAX_MODELS`` (default 2)."""
    raw = os.environ.get(MAX_MODELS_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_MODELS
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{MAX_MODELS_ENV}={raw!r} must be a whole number >= 1 (models kept loaded at once)")
    return int(raw)


class ModelCache:
    """The loaded models, least recently used evicted beyond `max_size` (thread-safe)."""

    def __init__(self, max_size: int, loader: Callable[[str], object]) -> None:
        if max_size < 1:
            raise ValueError(f"a model cache holds at least 1 model, got max_size={max_size}")
        self.max_size = max_size
        self._loader = loader
        self._models: OrderedDict[str, object] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str):
        """The model under `key`, loaded on first use; evicts the least recently used."""
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
            loaded = self._loader(key)
            self._models[key] = loaded
            while len(self._models) > self.max_size:
                evicted, _ = self._models.popitem(last=False)
                log.info("model cache: evicted %s (holds at most %d)", evicted, self.max_size)
            return loaded

    def keys(self) -> list[str]:
        """Cached keys, least recently used first."""
        with self._lock:
            return list(self._models)
