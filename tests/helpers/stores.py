"""Store comparisons shared by the neuron-map tests."""

from __future__ import annotations

import pandas as pd

from interp.store import Store


def content(store: Store, table: str) -> pd.DataFrame:
    """A table's rows without provenance, in a canonical order."""
    frame = store.read(table).drop(columns=["run_id"])
    return frame.sort_values(list(frame.columns[:10])).reset_index(drop=True)


def assert_same_store(a: Store, b: Store, exact: bool = True) -> None:
    """The neuron map's tables and markers of `a` and `b` agree (bitwise when `exact`)."""
    for table in ("feature_tokens", "features"):
        x, y = content(a, table), content(b, table)
        if exact:
            pd.testing.assert_frame_equal(x, y, check_exact=True)
        else:
            pd.testing.assert_frame_equal(x, y, check_exact=False, rtol=1e-5)
    keys = lambda s: sorted(s.read("results", where={"name": "neuron_map"})["key"])  # noqa: E731
    assert keys(a) == keys(b)
