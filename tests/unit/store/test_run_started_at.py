"""A run is recorded when its body starts: started_at precedes the work inside ``with store.run``."""

from __future__ import annotations

import time

import pandas as pd

from interp.store import Store
from interp.store.runs import utcnow


def test_started_at_precedes_the_body(tmp_path):
    store = Store(tmp_path / "store")
    with store.run("slow job", {"k": 1}) as run_id:
        inside = store.get_run(run_id)
        assert inside["status"] == "running" and pd.isna(inside["finished_at"])
        before_work = utcnow()
        time.sleep(0.3)
    row = store.get_run(run_id)
    started, finished = pd.Timestamp(row["started_at"]), pd.Timestamp(row["finished_at"])
    assert started <= pd.Timestamp(before_work)
    assert (finished - started).total_seconds() >= 0.3
    assert row["status"] == "done"
