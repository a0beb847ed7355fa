"""Non-converged ReAGent attributions are stored as such and kept out of the headline means."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from interp.store.read import faithfulness_summary
from interp.methods.attribution.store import store_attribution
from interp.methods.attribution.targets import AttributionResult
from interp.store import Store


def _result(method, prompt_scores, converged_probes=None):
    extra = {} if converged_probes is None else {"converged_probes": converged_probes, "num_probes": 8}
    return AttributionResult(["<s>", "a", "b"], torch.tensor([0, 5, 6]), torch.tensor(prompt_scores), method,
                             "p(' c')", extra)


def test_converged_column_and_summary_exclusion(tmp_path):
    store = Store(tmp_path / "store")
    run = store.start_run("test", {})
    rows = [("p1", "reagent", 3, 0.6), ("p2", "reagent", 0, 0.0), ("p3", "reagent", 8, 0.2),
            ("p1", "random", None, 0.1), ("p2", "random", None, 0.3)]
    for prompt, method, conv, ns in rows:
        faith = {"soft_ns": ns, "soft_nc": ns / 2, "convention": "reagent", "n_masks": 8}
        store_attribution(store, run, "smollm2-135m", prompt, _result(method, [0.0, 0.5, 0.5], conv), faith)
    store.finish_run(run, "done")
    table = store.read("attributions")
    by = {(r.prompt, r.method): r for r in table.itertuples()}
    assert bool(by[("p2", "reagent")].converged) is False and by[("p2", "reagent")].converged_probes == 0
    assert bool(by[("p1", "reagent")].converged) is True and by[("p1", "reagent")].converged_probes == 3
    assert pd.isna(by[("p1", "random")].converged)  # no stopping rule: null
    summary = faithfulness_summary(store).set_index("method")
    # ReAGent: p2 did not converge -> left out: mean of 0.6 and 0.2 over n = 2
    assert summary.loc["reagent", "n"] == 2 and summary.loc["reagent", "not_converged"] == 1
    assert summary.loc["reagent", "soft_ns"] == pytest.approx(0.4)
    assert summary.loc["random", "n"] == 2 and summary.loc["random", "not_converged"] == 0
    assert summary.loc["random", "soft_ns"] == pytest.approx(0.2)
    assert summary.loc["reagent", "soft_ns_lo"] <= 0.4 <= summary.loc["reagent", "soft_ns_hi"]
    assert set(summary["convention"]) == {"reagent"}
