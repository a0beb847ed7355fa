"""The complexity read rule (`interp.store.read.complexity`) on a temp store: only finished runs
count, the newest finished run wins per feature, and within one run its latest write."""

from __future__ import annotations

import pandas as pd
import pytest

from interp.features import FeatureId, FeatureKind
from interp.methods.complexity.store import feature_complexity, read_complexity, save_complexity
from interp.store import Store

SITE = "blocks.1.hook_resid_post"


def _frame(ks: dict[int, float]) -> pd.DataFrame:
    """One row per feature index -> K (first decodable layer = ceil(K), a two-point curve)."""
    return pd.DataFrame([{**FeatureId("tiny", SITE, FeatureKind.SAE, i, "sae_a").to_record(), "K": k,
                          "first_decodable_layer": int(-(-k // 1)), "curve": [0.0, 1.0], "importance": 0.5}
                         for i, k in ks.items()])


def _ks(frame: pd.DataFrame) -> dict[int, float]:
    return {int(i): float(k) for i, k in zip(frame["index"], frame["K"])}


def test_newest_finished_run_wins_failed_run_ignored(tmp_path):
    store = Store(tmp_path)
    with store.run("complexity early") as early:  # finishes last: the newest finished run
        with store.run("complexity late") as late:
            save_complexity(store, _frame({0: 1.0, 1: 2.0, 2: 3.0}), {"n": 3}, {}, late)
        save_complexity(store, _frame({0: 4.0, 1: 5.0}), {"n": 2}, {}, early)
        save_complexity(store, _frame({0: 6.0}), {"n": 1}, {}, early)  # the run's latest write of feature 0
    with pytest.raises(RuntimeError):
        with store.run("complexity crashed") as failed:  # newest of all, but failed
            save_complexity(store, _frame({0: 9.0, 1: 9.0, 2: 9.0, 3: 9.0}), {"n": 4}, {}, failed)
            raise RuntimeError("killed mid-run")
    runs = store.read("runs").set_index("run_id")
    assert runs.loc[failed, "status"] == "failed" and runs.loc[early, "status"] == "done"

    won = read_complexity(store, "tiny")
    assert _ks(won) == {0: 6.0, 1: 5.0, 2: 3.0}  # feature 3 exists only in the failed run
    assert dict(zip(won["index"], won["run_id"])) == {0: early, 1: early, 2: late}
    one = feature_complexity(store, FeatureId("tiny", SITE, FeatureKind.SAE, 1, "sae_a"))
    assert len(one) == 1 and float(one["K"].iloc[0]) == 5.0
    assert read_complexity(store, "other-model").empty
