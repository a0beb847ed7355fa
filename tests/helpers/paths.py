"""The repository root, for tests that read files outside the package (views, notebooks)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
