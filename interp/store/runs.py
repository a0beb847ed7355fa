"""Provenance captured with every run: package versions, git revision, host, pid, timestamps.

`process_alive` tells whether the process that started a run still runs on this host (used
by `interp store check` to find runs left ``running`` by a killed process).
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import uuid
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

RUN_STATUSES = ("running", "done", "failed", "cancelled", "stale")
"""``stale``: left ``running`` by a process that is gone (set by ``interp store check --fix``)."""
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


def process_alive(pid: int, started_before: float | None = None) -> bool:
    """Whether process `pid` runs on this host (zombies count as gone).

    `started_before` (a UNIX time): a process that started after it is a later process that
    reused the pid, so it counts as gone too. Where /proc is missing only `kill(pid, 0)` is used.
    """
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        pass
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return True
    if fields[0] in ("Z", "X"):  # zombie / dead, not yet reaped
        return False
    if started_before is not None:
        boot = _boot_time()
        if boot is not None:
            started = boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
            return started <= started_before + 1.0  # 1 s: clock-tick rounding
    return True


def _boot_time() -> float | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        pass
    return None
