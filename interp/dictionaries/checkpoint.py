"""Training checkpoints kept in the store as safetensors bundles (no pickle)."""

from __future__ import annotations


class StoreCheckpoint:
    """Save/load one training checkpoint under tensor bundle ``checkpoints/<name>``."""

    def __init__(self, store, name: str) -> None:
        self.store = store
        self.bundle = f"checkpoints/{name}"

    def save(self, tensors: dict, meta: dict) -> None:
        self.store.save_tensors(self.bundle, tensors, meta)

    def load(self):
        """(tensors, meta), or None when no checkpoint was saved yet."""
        try:
            return self.store.load_tensors(self.bundle), self.store.tensor_metadata(self.bundle)
        except FileNotFoundError:
            return None
