"""Store health: finding corrupt or leftover files, and compacting many small files."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from interp.store.files import StoreError, atomic_write, is_temp_name, new_write_id
from interp.store.schema import TABLES, TableSpec
from interp.store.tables import latest_sql, list_files, register_empty, table_dir, uncommitted_files
from interp.store.tensors import TENSORS_DIR

STALE_AFTER_S = 3600.0
"""Temp files older than this are leftovers of crashed writers (live writes take seconds)."""


@dataclass
class CheckReport:
    """What `check` found; `ok` when nothing is corrupt."""

    n_files: int = 0
    corrupt: list[tuple[Path, str]] = field(default_factory=list)
    temp_files: list[Path] = field(default_factory=list)
    """In-progress or crashed writes (ignored by readers; removed by compact when stale)."""
    uncommitted: list[Path] = field(default_factory=list)
    """Parts of multi-partition writes that never committed (ignored by readers)."""

    @property
    def ok(self) -> bool:
        return not self.corrupt


def check(root: Path) -> CheckReport:
    """Read every data file completely and report the ones that fail."""
    report = CheckReport()
    for spec in TABLES.values():
        for path in list_files(root, spec):
            report.n_files += 1
            try:
                pq.read_table(path)
            except Exception as exc:  # pyarrow raises several types for damaged files
                report.corrupt.append((path, _short(exc)))
        report.uncommitted.extend(uncommitted_files(root, spec))
    tensors = root / TENSORS_DIR
    for path in sorted(tensors.rglob("*.safetensors")) if tensors.is_dir() else []:
        if path.name.startswith("."):
            continue
        report.n_files += 1
        try:
            _check_safetensors(path)
        except Exception as exc:
            report.corrupt.append((path, _short(exc)))
    report.temp_files = sorted(p for p in root.rglob("*") if is_temp_name(p.name))
    return report


def _check_safetensors(path: Path) -> None:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        for key in handle.keys():
            handle.get_slice(key)


def corrupt_among(files: list[Path]) -> list[tuple[Path, str]]:
    """The files whose Parquet footer cannot be read (a cheap test, used after a failed read)."""
    bad = []
    for path in files:
        try:
            pq.read_metadata(path)
        except Exception as exc:
            bad.append((path, _short(exc)))
    return bad


def read_error(files: list[Path], exc: Exception) -> StoreError:
    """Turn a failed DuckDB read into an error that names the damaged file(s)."""
    bad = corrupt_among(files)
    if bad:
        names = "; ".join(f"{p} ({why})" for p, why in bad)
        return StoreError(f"corrupt store file(s): {names}. Run `interp store check`; "
                          "delete or move the file(s) and re-run the job that wrote them")
    if "No files found" in str(exc) or "No such file" in str(exc):
        return StoreError(f"store files changed during the read (a concurrent compact?); retry: {exc}")
    return StoreError(f"store read failed: {exc}")


def compact(root: Path, table: str | None = None) -> int:
    """Rewrite each partition's files as one file of its latest rows; returns files removed.

    Safe alongside writers: only the files listed at the start are replaced, and rows keep
    their original write ids, so a newer concurrent write still wins. Stale temp files
    (older than `STALE_AFTER_S`) are deleted too.
    """
    specs = [TABLES[table]] if table else list(TABLES.values())
    removed = 0
    for spec in specs:
        for directory in _partition_dirs(root, spec):
            files = [f for f in list_files(root, spec) if f.parent == directory]
            if len(files) > 1:
                removed += _compact_dir(root, spec, directory, files)
    cutoff = time.time() - STALE_AFTER_S
    for path in list(root.rglob("*")):
        if is_temp_name(path.name) and path.is_file() and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def _partition_dirs(root: Path, spec: TableSpec) -> list[Path]:
    base = table_dir(root, spec)
    if not base.is_dir():
        return []
    dirs = [base]
    for _ in spec.partition:
        dirs = [d for parent in dirs for d in sorted(parent.iterdir()) if d.is_dir() and not is_temp_name(d.name)]
    return dirs


def _compact_dir(root: Path, spec: TableSpec, directory: Path, files: list[Path]) -> int:
    con = duckdb.connect(":memory:")
    try:
        register_empty(con, spec)
        sql, params = latest_sql(spec, files, hidden=True)
        table = con.sql(sql, params=params).to_arrow_table()
    except duckdb.Error as exc:
        raise read_error(files, exc) from None
    finally:
        con.close()
    atomic_write(directory / f"part-{new_write_id()}-c.parquet",
                 lambda tmp: pq.write_table(table, tmp, compression="zstd"))
    for path in files:
        path.unlink(missing_ok=True)
    return len(files)


def _short(exc: Exception) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
