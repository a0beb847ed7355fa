"""Store health: finding corrupt or leftover files, and compacting many small files.

`compact`:

1. for each partition folder with more than one file, or with a part of a multi-partition
   write, read the latest rows of the files listed at the start and write them as one
   ``-c`` file (rows keep their write ids, so a newer concurrent write still wins), then
   delete those inputs. A vanished input (another compactor) means the folder is listed
   again; a corrupt one is quarantined (see `reading`);
2. delete the commit markers of writes none of whose ``-m`` parts remain: markers are
   listed before the parts, so a marker written meanwhile is never taken for an orphan;
3. delete orphaned temp files (see `health`).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from interp.store.files import atomic_write, new_write_id
from interp.store.health import StaleRun, orphaned, remove_temp, temp_files
from interp.store.reading import data_problem, quarantined, read_retrying, short
from interp.store.schema import TABLES, TableSpec
from interp.store.tables import (COMMITS_DIR, TABLES_DIR, committed_ids, latest_sql, list_files, register_empty,
                                 table_dir, uncommitted_files, write_id_of)
from interp.store.tensors import TENSORS_DIR


@dataclass
class CheckReport:
    """What `check` found; `ok` when nothing is corrupt."""

    n_files: int = 0
    corrupt: list[tuple[Path, str]] = field(default_factory=list)
    temp_files: list[Path] = field(default_factory=list)
    """In-progress or crashed writes (ignored by readers)."""
    orphaned: list[Path] = field(default_factory=list)
    """The temp files among `temp_files` whose writer is gone (removed by ``check --fix``)."""
    uncommitted: list[Path] = field(default_factory=list)
    """Parts of multi-partition writes that never committed (ignored by readers)."""
    stale_runs: list[StaleRun] = field(default_factory=list)
    """Runs still ``running`` whose process is gone (marked ``stale`` by ``check --fix``)."""
    quarantined: list[Path] = field(default_factory=list)
    """Corrupt files set aside in ``<root>/quarantine`` (not served)."""
    fixed: list[str] = field(default_factory=list)
    """What ``check --fix`` did, one line each."""

    @property
    def ok(self) -> bool:
        return not self.corrupt


def check(root: Path) -> CheckReport:
    """Read every data file completely and report the ones that fail, plus leftovers."""
    report = CheckReport()
    for spec in TABLES.values():
        for path in list_files(root, spec):
            report.n_files += 1
            why = data_problem(path)
            if why:
                report.corrupt.append((path, why))
        report.uncommitted.extend(uncommitted_files(root, spec))
    tensors = root / TENSORS_DIR
    for path in sorted(tensors.rglob("*.safetensors")) if tensors.is_dir() else []:
        if path.name.startswith("."):
            continue
        report.n_files += 1
        try:
            _check_safetensors(path)
        except Exception as exc:
            report.corrupt.append((path, short(exc)))
    report.temp_files = temp_files(root)
    report.orphaned = [p for p in report.temp_files if orphaned(p)]
    report.quarantined = quarantined(root)
    return report


def _check_safetensors(path: Path) -> None:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        for key in handle.keys():
            handle.get_slice(key)


def compact(root: Path, table: str | None = None) -> int:
    """Steps 1-3 of the module docstring; returns the number of files removed."""
    specs = [TABLES[table]] if table else list(TABLES.values())
    removed = 0
    for spec in specs:
        for directory in _partition_dirs(root, spec):
            removed += _compact_dir(root, spec, directory)
    removed += clean_commit_markers(root)
    for path in temp_files(root):
        if orphaned(path):
            removed += remove_temp(path)
    return removed


def clean_commit_markers(root: Path) -> int:
    """Delete markers of writes with no ``-m`` part left (step 2); returns how many."""
    markers = committed_ids(root)  # before the parts: see the module docstring
    if not markers:
        return 0
    live = {write_id_of(p) for p in (root / TABLES_DIR).rglob("part-*-m.parquet")}
    removed = 0
    for marker in sorted(markers - live):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(root / COMMITS_DIR / marker)
            removed += 1
    return removed


def _partition_dirs(root: Path, spec: TableSpec) -> list[Path]:
    base = table_dir(root, spec)
    if not base.is_dir():
        return []
    dirs = [base]
    for _ in spec.partition:
        dirs = [d for parent in dirs for d in sorted(parent.iterdir()) if d.is_dir() and not d.name.startswith(".")]
    return dirs


def _compact_dir(root: Path, spec: TableSpec, directory: Path) -> int:
    def listed() -> list[Path]:
        return [f for f in list_files(root, spec) if f.parent == directory]

    def merge(files: list[Path]) -> int:
        if len(files) < 2 and not any(f.name.endswith("-m.parquet") for f in files):
            return 0
        con = duckdb.connect(":memory:")
        try:
            register_empty(con, spec)
            sql, params = latest_sql(spec, files, hidden=True)
            table = con.sql(sql, params=params).to_arrow_table()
        finally:
            con.close()
        atomic_write(directory / f"part-{new_write_id()}-c.parquet",
                     lambda tmp: pq.write_table(table, tmp, compression="zstd"))
        for path in files:
            path.unlink(missing_ok=True)
        return len(files)

    return read_retrying(root, listed, merge)
