"""The faithfulness benchmark's bookkeeping: records, bootstrap summaries, paired differences, the store."""

from __future__ import annotations

import numpy as np
import pytest

from interp.methods.attribution.baselines import BaselineConfig
from interp.methods.attribution.faithfulness import FaithfulnessConfig
from interp.jobs.faithfulness_benchmark import (
    METHODS,
    bootstrap_interval,
    evaluate_prompt,
    paired_differences,
    summarise,
)
from interp.methods.attribution.store import RECORDS, SUMMARY, stored_records, stored_summary
from interp.methods.attribution.reagent import ReagentConfig
from interp.store import Store


def _record(values: dict[str, tuple[float, float]]) -> dict:
    return {"methods": {m: {"soft_ns": ns, "soft_nc": nc, "comp@0.2": 0.0, "suff@0.2": 0.0, "seconds": 1.0,
                            "converged": 1} for m, (ns, nc) in values.items()}}


def test_bootstrap_interval_brackets_the_mean_and_collapses_for_constants():
    assert bootstrap_interval([0.3] * 20) == (pytest.approx(0.3), pytest.approx(0.3))
    rng = np.random.default_rng(0)
    values = rng.normal(1.0, 1.0, 400)
    lo, hi = bootstrap_interval(values)
    assert lo < values.mean() < hi
    assert hi - lo == pytest.approx(2 * 1.96 / np.sqrt(400), rel=0.2)  # the normal-theory width


def test_summary_means_and_paired_differences_are_computed_per_prompt():
    records = [_record({"reagent": (0.5, 0.9), "random": (0.1, 0.8)}),
               _record({"reagent": (0.3, 0.7), "random": (0.2, 0.9)}),
               _record({"reagent": (0.4, 0.8)})]  # random missing here: paired over the two shared prompts
    table = summarise(records).set_index("method")
    assert table.loc["reagent", "n"] == 3 and table.loc["random", "n"] == 2
    assert table.loc["reagent", "soft_ns"] == pytest.approx(0.4)
    assert table.loc["random", "soft_nc"] == pytest.approx(0.85)
    assert list(summarise(records)["method"]) == ["reagent", "random"]  # by Soft-NS
    paired = paired_differences(records).set_index("method")
    assert paired.loc["random", "n"] == 2
    assert paired.loc["random", "soft_ns_diff"] == pytest.approx((0.4 + 0.1) / 2)
    assert paired.loc["random", "soft_nc_diff"] == pytest.approx((0.1 - 0.2) / 2)
    assert paired.loc["random", "soft_ns_wins"] == 1.0 and paired.loc["random", "soft_nc_wins"] == 0.5


def test_records_and_summaries_round_trip_through_the_store(tmp_path):
    store = Store(tmp_path)
    run = store.start_run("test", {})
    records = [_record({"reagent": (0.1 * i, 0.5)}) for i in range(3)]
    store.write("results", [{"name": f"{RECORDS}:t", "key": f"{i:04d}", "payload": r} for i, r in
                            reversed(list(enumerate(records)))], run_id=run)
    assert [r["methods"]["reagent"]["soft_ns"] for r in stored_records(store, "t")] == [0.0, 0.1, 0.2]
    assert stored_summary(store) is None
    small, big = summarise(records[:1]), summarise(records)
    store.write("results", [{"name": SUMMARY, "key": "small:table", "payload": small.to_dict("records")},
                            {"name": SUMMARY, "key": "big:table", "payload": big.to_dict("records")},
                            {"name": SUMMARY, "key": "big:figure", "payload": "{}"}], run_id=run)
    tag, table = stored_summary(store)
    assert tag == "big" and int(table["n"].max()) == 3  # the largest benchmark by default
    assert stored_summary(store, "small")[1]["n"].tolist() == [1]
    assert stored_summary(store, "absent") is None
