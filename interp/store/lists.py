"""Named feature lists: the ``feature_lists`` table, written and read only here.

A list is the set of ``(list, feature)`` rows whose latest write is not ``removed``; each row
carries a note, its author (given, else $USER) and time. Adding a feature again replaces
its note; removing writes a ``removed=true`` row (the history stays in ``feature_lists_all``).

    add_to_list(store, "gender", fid, note="fires on ' she'")
    read_list(store, "gender")          # (interp.store.read.lists) key, identity, label, note, author, created_at
    export_list(read_list(store, "gender"), "csv")
"""

from __future__ import annotations

import getpass
import json

import pandas as pd

from interp.features import FeatureId
from interp.store.read.lists import COLUMNS, check_name, list_names, read_list

__all__ = ["COLUMNS", "FORMATS", "add_to_list", "check_name", "default_author", "export_list", "list_names",
           "read_list", "remove_from_list"]

FORMATS = ("csv", "json")


def default_author() -> str:
    """The editing user's name when none is given: $USER (or the login name)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _author(author: str | None) -> str:
    return (author or "").strip() or default_author()


def _write(store, name: str, fid: FeatureId, note: str, removed: bool, author: str | None) -> None:
    row = {"list": check_name(name), **fid.to_record(), "note": str(note or "").strip(), "removed": removed,
           "author": _author(author), "created_at": pd.Timestamp.now(tz="UTC")}
    with store.run("interp list", {"list": row["list"], "feature": fid.key, "removed": removed}) as run:
        store.write("feature_lists", [row], run_id=run)


def add_to_list(store, name: str, fid: FeatureId, note: str = "", author: str | None = None) -> None:
    """Put `fid` on list `name` with `note` (again: the note is replaced)."""
    _write(store, name, fid, note, False, author)


def remove_from_list(store, name: str, fid: FeatureId, author: str | None = None) -> None:
    """Take `fid` off list `name`; KeyError when it is not on it."""
    name = check_name(name)
    if fid.key not in set(read_list(store, name)["key"]):
        raise KeyError(f"{fid.key} is not on list {name!r}")
    _write(store, name, fid, "", True, author)


def export_list(frame: pd.DataFrame, fmt: str) -> str:
    """A `read_list` frame as CSV or JSON (records; times in ISO 8601)."""
    if fmt not in FORMATS:
        raise ValueError(f"export format {fmt!r} is not one of {', '.join(FORMATS)}")
    out = frame.assign(created_at=pd.to_datetime(frame["created_at"], utc=True).map(
        lambda t: t.isoformat() if pd.notna(t) else None))
    if fmt == "csv":
        return out.to_csv(index=False)
    return json.dumps(out.to_dict("records"), indent=1, default=str)

