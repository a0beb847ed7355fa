"""Leftovers of killed processes: runs still marked ``running`` and orphaned temp files.

1. A run is stale when its status is still ``running`` and the process that started it is
   gone. On this host that is decided from the recorded pid (not alive, a zombie, or a
   later process that reused the pid); for runs of other hosts, or runs recorded without a
   pid, only by age: started more than `older_than_s` ago.
2. A temp file (or temp folder) is orphaned when the process writing it is gone: its name
   carries the writer's host tag and pid (`files.temp_name`), checked as in step 1; names
   from other hosts, or without an owner, when older than `TEMP_STALE_S`.
3. `fix_leftovers` removes orphaned temps; marking runs stale is the store's (a new runs row).
"""

from __future__ import annotations

import contextlib
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from interp.store.files import host_tag, is_temp_name, temp_owner
from interp.store.runs import host, process_alive

TEMP_STALE_S = 3600.0
"""Temp files of other hosts older than this are leftovers (live writes take seconds)."""
RUN_STALE_S = 7 * 24 * 3600.0
"""Runs of other hosts (or without a pid) still ``running`` after this long are stale."""


@dataclass(frozen=True)
class StaleRun:
    """A run left ``running`` by a process that is gone."""

    run_id: str
    command: str | None
    host: str | None
    pid: int | None
    started_at: pd.Timestamp | None
    reason: str


def stale_runs(runs: pd.DataFrame, older_than_s: float = RUN_STALE_S, now: float | None = None) -> list[StaleRun]:
    """The rows of `runs` (latest rows of the runs table) that are stale (step 1)."""
    now = time.time() if now is None else now
    here = host()
    found = []
    for row in runs.to_dict("records"):
        if row.get("status") != "running":
            continue
        started = row.get("started_at")
        started = None if started is None or pd.isna(started) else pd.Timestamp(started)
        t0 = started.timestamp() if started is not None else None
        pid = row.get("pid")
        pid = None if pid is None or pd.isna(pid) else int(pid)
        if row.get("host") == here and pid is not None:
            if process_alive(pid, started_before=t0):
                continue
            reason = f"process {pid} on this host is gone"
        elif t0 is not None and now - t0 > older_than_s:
            where = "no pid recorded" if pid is None else f"host {row.get('host')}"
            reason = f"{where}; started {(now - t0) / 3600:.1f} h ago"
        else:
            continue
        found.append(StaleRun(row["run_id"], row.get("command"), row.get("host"), pid, started, reason))
    return found


def temp_files(root: Path) -> list[Path]:
    """Every temp file or folder under `root` (outermost only)."""
    found: list[Path] = []
    for path in sorted(root.rglob("*")):
        if is_temp_name(path.name) and not any(is_temp_name(p.name) for p in path.relative_to(root).parents
                                              if p != Path(".")):
            found.append(path)
    return found


def orphaned(path: Path, older_than_s: float = TEMP_STALE_S, now: float | None = None) -> bool:
    """Whether temp `path` was left by a process that is gone (step 2)."""
    owner = temp_owner(path.name)
    if owner is not None and owner[0] == host_tag():
        return not process_alive(owner[1])
    now = time.time() if now is None else now
    try:
        return now - path.stat().st_mtime > older_than_s
    except FileNotFoundError:
        return False


def remove_temp(path: Path) -> bool:
    """Delete a temp file or folder; False when it was already gone."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        return False
    return True


def fix_leftovers(paths: list[Path]) -> int:
    """Remove the given orphaned temps (step 3); returns how many were removed."""
    removed = 0
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            removed += remove_temp(path)
    return removed
