"""Shared test helpers (tiny models, planted neurons, a populated dashboard store, paths)."""
