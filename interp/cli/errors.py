"""One-line descriptions of operating-system errors, and name checks made before any work.

1. `describe_os_error`: the path and the cause of an OSError (read-only or unwritable
   store, full disk, overlong name), phrased as what to do about it.
2. `check_name_fits` (from `interp.store.files`): refuse a store name whose path components exceed the filesystem's
   per-name limit before a job starts (training would otherwise fail only at the end).
"""

from __future__ import annotations

import errno

from interp.store.files import check_name_fits, name_max  # noqa: F401  (re-exported)

_CAUSES = {
    errno.EROFS: "the file system is read-only; give a writable --store or --home",
    errno.EACCES: "permission denied; give a writable --store or --home",
    errno.EPERM: "operation not permitted; give a writable --store or --home",
    errno.ENOSPC: "no space left on the device; free space or give another --store",
    errno.EDQUOT: "disk quota exceeded; free space or give another --store",
    errno.ENAMETOOLONG: "a file name is too long for the file system; choose a shorter name",
    errno.ENOENT: "no such file or directory",
    errno.EISDIR: "is a directory, expected a file",
    errno.ENOTDIR: "a component of the path is not a directory",
}


def describe_os_error(exc: OSError) -> str:
    """``<path>: <cause>`` for an OSError; interp's own messages are passed through."""
    if exc.errno is None or not exc.strerror:
        return str(exc.args[0]) if exc.args else repr(exc)
    cause = _CAUSES.get(exc.errno, exc.strerror)
    paths = [p for p in (exc.filename, exc.filename2) if p]
    where = " -> ".join(map(str, paths)) if paths else "(path not reported)"
    return f"{where}: {cause}"
