"""Reads that survive concurrent compaction and damaged files.

`read_retrying(root, list_files, read)`:

1. list the files and run the read over them;
2. if the read fails and some listed file no longer exists, a concurrent `compact` (or
   quarantine) replaced it: list again and retry, at most `MAX_ATTEMPTS` times (or until
   `MAX_WAIT_S` has passed, whichever comes later, so a busy machine does not fail a read) with a
   short growing pause. A vanished file is never reported as corrupt;
3. if files that exist cannot be parsed (a bad footer, or a bad page in a file the error
   points at), they are corrupt: each is skipped for this read, a `StoreWarning` names it
   (and says that ``interp store check --fix`` moves it into ``<root>/quarantine/``), and
   the read is retried without it, so one damaged file never stops queries over the rest.
   A read never writes: moving the file aside is `quarantine`'s, called by the check;
4. any other failure (bad SQL, an unknown column) is the caller's and is raised as is.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from interp.store.files import StoreError

QUARANTINE_DIR = "quarantine"
MAX_ATTEMPTS = 10
MAX_WAIT_S = 10.0
_READ_ERRORS = (duckdb.Error, OSError, pa.ArrowException)
T = TypeVar("T")


class StoreWarning(UserWarning):
    """Something in the store was set aside so that reads could go on (a corrupt file)."""


def read_retrying(root: Path, list_files: Callable[[], list[Path]], read: Callable[[list[Path]], T],
                  suspects: Callable[[Exception, list[Path]], list[Path]] | None = None,
                  on_error: Callable[[Exception], Exception] | None = None) -> T:
    """``read(list_files())``, retried over vanished files and without corrupt ones (see above).

    `suspects(exc, files)`: files to read completely when no footer is bad (default: the
    listed files the error message names; all of them when it names none). `on_error(exc)`: the error to raise for a
    failure that is neither (default: a `StoreError` "store read failed").
    """
    skipped: set[Path] = set()
    started = time.monotonic()
    attempt = -1
    while (attempt := attempt + 1) < MAX_ATTEMPTS or time.monotonic() - started < MAX_WAIT_S:
        files = [f for f in list_files() if f not in skipped]
        try:
            return read(files)
        except _READ_ERRORS as exc:
            if any(not f.exists() for f in files):
                time.sleep(min(0.002 * 2 ** attempt, 0.25))
                continue
            bad = find_corrupt(files, exc, suspects)
            if not bad:
                if on_error is not None:
                    raise on_error(exc) from None
                raise StoreError(f"store read failed: {_first_line(exc)}") from None
            for path, why in bad:
                warnings.warn(f"corrupt store file {path} ({why}): skipped; `interp store check --fix` moves it "
                              f"into {root / QUARANTINE_DIR} (its rows are not served until the job that wrote "
                              "them is re-run)", StoreWarning, stacklevel=2)
                skipped.add(path)
    raise StoreError(f"store files under {root} kept changing during {attempt} read attempts "
                     "(a compaction running in a loop?); retry the read")


def find_corrupt(files: list[Path], exc: Exception | None = None,
                 suspects: Callable[[Exception, list[Path]], list[Path]] | None = None) -> list[tuple[Path, str]]:
    """(path, why) of the listed files that exist but cannot be parsed."""
    bad = [(p, why) for p in files if (why := footer_problem(p))]
    if bad or exc is None:
        return bad
    named = suspects(exc, files) if suspects else [f for f in files if str(f) in str(exc)]
    # DuckDB does not always name the file it failed on: then every listed file is read
    # completely (slow on a big table, but only on a failure that would stop the read anyway).
    return [(p, why) for p in (named or files) if (why := data_problem(p))]


def footer_problem(path: Path) -> str | None:
    """Why `path`'s Parquet footer cannot be read; None when it can (or the file vanished)."""
    try:
        pq.read_metadata(path)
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        return None  # vanished or unreadable for other reasons: not evidence of damage
    except Exception as exc:  # pyarrow raises several types for damaged files
        if isinstance(exc, OSError) and not isinstance(exc, pa.ArrowException) and exc.errno is not None:
            return None  # an IO error (EIO, ESTALE...): the file may be fine
        return short(exc)
    return None


def data_problem(path: Path) -> str | None:
    """Why `path` cannot be read completely; None when it can (or the file vanished)."""
    why = footer_problem(path)
    if why:
        return why
    try:
        pq.read_table(path)
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        return None
    except Exception as exc:
        return short(exc)
    return None


def quarantine(root: Path, path: Path, why: str) -> Path | None:
    """Move corrupt `path` to ``<root>/quarantine/<its path in the store>``; warn naming it."""
    dest = root / QUARANTINE_DIR / path.relative_to(root)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, dest)
        where = f"moved to {dest}"
    except FileNotFoundError:
        return None  # already moved or compacted away by another process
    except OSError as exc:
        dest = None
        where = f"left in place ({exc.strerror or exc}) and skipped"
    warnings.warn(f"corrupt store file {path} ({why}): {where}; its rows are not served until "
                  "the job that wrote them is re-run", StoreWarning, stacklevel=2)
    return dest


def quarantined(root: Path) -> list[Path]:
    """Files set aside by `quarantine`."""
    base = root / QUARANTINE_DIR
    return sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else []


def short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {_first_line(exc)}"


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else ""
