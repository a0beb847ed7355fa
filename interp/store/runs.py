"""Provenance captured with every run: package versions, git revision, host, timestamps."""

from __future__ import annotations

import platform
import socket
import subprocess
import sys
import uuid
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

RUN_STATUSES = ("running", "done", "failed", "cancelled")
_PACKAGES = ("interp", "torch", "transformer-lens", "sae-lens", "transformers", "duckdb", "pyarrow", "safetensors")
_REPO = Path(__file__).resolve().parent.parent.parent


def new_run_id(now: datetime | None = None) -> str:
    """A sortable, unique run id such as ``20250101T120000Z-1a2b3c4d``."""
    now = now or utcnow()
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages that decide results (None when absent).

    Read from package metadata, so nothing heavy (torch) is imported.
    """
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_revision() -> str | None:
    """``git rev-parse HEAD`` of the interp checkout, or None (installed wheel, no git)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=_REPO, capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def host() -> str:
    try:
        return socket.gethostname()
    except OSError:
        return platform.node() or "unknown"


def check_status(status: str) -> str:
    if status not in RUN_STATUSES:
        raise ValueError(f"unknown run status {status!r}; valid statuses: {', '.join(RUN_STATUSES)}")
    return status


def command_line() -> str:
    return " ".join(sys.argv)
