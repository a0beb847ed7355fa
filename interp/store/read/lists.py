"""Reads of named feature lists (``feature_lists``; written by `interp.store.lists`)."""

from __future__ import annotations

import re

import pandas as pd

from interp.features import FeatureId
from interp.store.read.sql import IDENTITY, labels_sql, lit

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.-]{0,79}")
"""A list name: letters, digits, space, ``_ . -``; at most 80 characters, first a letter or digit."""
COLUMNS = ["key", *IDENTITY, "label", "note", "author", "created_at"]
"""The columns of `read_list` (and of its exports)."""


def check_name(name: str) -> str:
    """`name` stripped, or ValueError saying what a list name may be."""
    text = str(name).strip()
    if not NAME.fullmatch(text):
        raise ValueError(f"list name {text[:90]!r} is not valid: use 1-80 letters, digits, spaces, '_', '.' "
                         f"or '-', starting with a letter or digit")
    return text


def list_names(store) -> pd.DataFrame:
    """Every non-empty list: list, features, updated (its newest row's time), newest first."""
    return store.sql("SELECT list, count(*) AS features, max(created_at) AS updated FROM feature_lists "
                     "WHERE NOT coalesce(removed, false) GROUP BY list ORDER BY updated DESC, list")


def read_list(store, name: str) -> pd.DataFrame:
    """The features on list `name` in the order they were added (`COLUMNS`; empty if none)."""
    quoted = [f'"{c}"' for c in IDENTITY]
    ident = ", ".join(quoted)
    frame = store.sql(
        f"SELECT {', '.join(f'x.{q}' for q in quoted)}, "
        f"coalesce(l.label, f.label) AS label, x.note, x.author, x.created_at FROM feature_lists x "
        f"LEFT JOIN ({labels_sql()}) l USING ({ident}) LEFT JOIN features f USING ({ident}) "
        f"WHERE x.list = {lit(check_name(name))} AND NOT coalesce(x.removed, false) ORDER BY x.created_at")
    frame.insert(0, "key", [FeatureId.from_record(r).key for r in frame.to_dict("records")])
    return frame[COLUMNS]
