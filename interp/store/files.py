"""Atomic file IO and name validation for the store.

Every write creates a *new* uniquely named file: the bytes go to a dot-prefixed temp file
in the destination directory, are fsynced, and the temp file is `os.replace`d onto its
final name. A rename within one directory is atomic on POSIX filesystems (and on NFS from
a single client), so readers, which glob only final names, never see half a file, and a
writer killed mid-write leaves at most a dot-prefixed temp file that readers ignore. Temp
names carry the writer's host tag and pid, so `interp store check --fix` can tell a killed
writer's leftover from a write in progress.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote, unquote

_SEGMENT_RE = re.compile(r"^[A-Za-z0-9._-]+$")
TMP_PREFIX = "."
TMP_SUFFIX = ".tmp"
_OWNER_RE = re.compile(r"\.(?P<host>[0-9a-f]{8})\.(?P<pid>[0-9]+)\.[0-9a-f]{8}(\.old)?\.tmp$")


class StoreError(ValueError):
    """A store problem a person can act on (bad name, corrupt file, version mismatch).

    A `ValueError` so that the CLI shows the message without a traceback.
    """


def validate_name(name: str, what: str, allow_slash: bool = False) -> str:
    """Return `name` if it is a safe relative name, else raise `StoreError`.

    Allowed: ``[A-Za-z0-9._-]`` per segment, ``/`` between segments when `allow_slash`
    (model ids like ``EleutherAI/pythia-70m``); no empty, ``.`` or ``..`` segments, no
    leading dot (dot-prefixed names are reserved for temp files), no absolute paths.
    """
    if not isinstance(name, str) or not name:
        raise StoreError(f"{what} must be a non-empty string, got {name!r}")
    segments = name.split("/") if allow_slash else [name]
    for seg in segments:
        if seg in ("", ".", "..") or seg.startswith(".") or not _SEGMENT_RE.match(seg):
            rule = "segments of [A-Za-z0-9._-] separated by '/'" if allow_slash else "[A-Za-z0-9._-] characters"
            raise StoreError(
                f"invalid {what} {name!r}: use {rule}, not starting with '.', no '..' or absolute paths"
            )
    return name


def encode_partition_value(value: str) -> str:
    """Encode a partition value for a directory name: url-quote, so ``/`` becomes ``%2F``.

    ``%`` is not an allowed name character, so the encoding is unambiguous and reversible.
    """
    return quote(str(value), safe="")


def decode_partition_value(text: str) -> str:
    """Inverse of `encode_partition_value`."""
    return unquote(text)


def inside(root: Path, *parts: str) -> Path:
    """``root/parts...``, refusing any result that escapes `root` (belt and braces)."""
    path = root.joinpath(*parts).resolve()
    if path != root and root not in path.parents:
        raise StoreError(f"path {path} escapes the store root {root}")
    return path


def new_write_id() -> str:
    """A unique, time-ordered id: 20-digit UTC nanoseconds, then a random uuid.

    Sorting ids as strings sorts writes by time (ties broken arbitrarily but consistently);
    this is what "latest wins" compares. On a shared filesystem it relies on the writers'
    clocks being roughly in sync (NTP), which is the usual assumption for such setups.
    """
    return f"{time.time_ns():020d}-{uuid.uuid4().hex}"


def is_temp_name(name: str) -> bool:
    """True for in-progress temp files/dirs, which readers must ignore."""
    return name.startswith(TMP_PREFIX) or name.endswith(TMP_SUFFIX)


def host_tag(host: str | None = None) -> str:
    """8 hex digits standing for a host name (temp names carry it with the writer's pid)."""
    name = socket.gethostname() if host is None else host
    return hashlib.sha1(name.encode()).hexdigest()[:8]


def temp_name(name: str, old: bool = False) -> str:
    """``.<name>.<host tag>.<pid>.<random>[.old].tmp``: whose write it is, for `temp_owner`."""
    tail = ".old" if old else ""
    return f"{TMP_PREFIX}{name}.{host_tag()}.{os.getpid()}.{uuid.uuid4().hex[:8]}{tail}{TMP_SUFFIX}"


def temp_owner(name: str) -> tuple[str, int] | None:
    """(host tag, pid) of the process that made temp file `name`, None for older names."""
    match = _OWNER_RE.search(name)
    return (match["host"], int(match["pid"])) if match and name.startswith(TMP_PREFIX) else None


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` then rename the temp file onto `path` atomically.

    The temp file lives in the same directory (a rename across filesystems is a copy).
    On any error the temp file is removed and the error propagates.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / temp_name(path.name)
    try:
        write(tmp)
        _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        # A failed clean-up (read-only or vanished directory) must not hide the real error.
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Atomically write `data` to `path` (replacing any existing file as one rename)."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


@contextlib.contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield a temp directory; on success it replaces `target` as a whole.

    Readers see the old directory or the new one, never a half-written one. Replacing an
    existing directory takes two renames (old aside, new in), so for an instant the name
    is absent; callers reading it should retry once on FileNotFoundError.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / temp_name(target.name)
    tmp.mkdir()
    try:
        yield tmp
        old = None
        if target.exists():
            old = target.parent / temp_name(target.name, old=True)
            os.replace(target, old)
        os.replace(tmp, target)
        _fsync_dir(target.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    # Makes the rename itself durable; not supported on every platform/filesystem.
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def name_max(directory: str | os.PathLike) -> int:
    """The longest file name (bytes) the file system at `directory` (or its nearest existing parent) takes."""
    path = Path(directory).expanduser().absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return int(os.pathconf(path, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


def check_name_fits(name: str, directory: str | os.PathLike, what: str = "name", reserve: int = 32) -> None:
    """Raise ValueError when a component of `name` would exceed the per-name limit at `directory`.

    `reserve` bytes are kept for the prefixes and suffixes the store adds (temp files).
    """
    limit = name_max(directory) - reserve
    for part in str(name).replace("\\", "/").split("/"):
        size = len(part.encode("utf-8"))
        if size > limit:
            raise ValueError(f"{what} {name!r} is too long: the component {part[:24]!r}... is {size} bytes; "
                             f"the file system at {directory} takes at most {limit} bytes per name "
                             f"(after {reserve} kept for the store's temp files)")
