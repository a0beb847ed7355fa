"""The Attribution page badges a non-converged ReAGent attribution and names the convention."""

from __future__ import annotations

from pathlib import Path

import torch
from streamlit.testing.v1 import AppTest

from interp.methods.attribution.store import store_attribution
from interp.methods.attribution.targets import AttributionResult
from interp.store import Store

VIEWS = Path(__file__).resolve().parents[3] / "app" / "views"


def test_badge_and_convention(tmp_path, monkeypatch):
    store = Store(tmp_path)
    run = store.start_run("test", {})
    for method, conv, ns in (("reagent", 0, 0.5), ("random", None, 0.1)):
        extra = {} if conv is None else {"converged_probes": conv, "num_probes": 8}
        result = AttributionResult(["<s>", "a", "b"], torch.tensor([0, 5, 6]), torch.tensor([0.0, 0.3, 0.7]),
                                   method, "p(' c')", extra)
        faith = {"soft_ns": ns, "soft_nc": ns, "convention": "reagent", "n_masks": 8, "soft_ns_lo": ns, "soft_ns_hi": ns}
        store_attribution(store, run, "smollm2-135m", "a b", result, faith)
    store.finish_run(run, "done")
    monkeypatch.setenv("INTERP_STORE", str(tmp_path))
    at = AppTest.from_file(str(VIEWS / "attribution.py"), default_timeout=60)
    at.run()
    assert not at.exception
    texts = " ".join(m.value for m in at.markdown)  # st.badge renders as a markdown badge
    assert "reagent: not converged (0 probes" in texts
    captions = " ".join(c.value for c in at.caption)
    assert "the ReAGent authors' convention" in captions and "1 non-converged ReAGent attribution(s) left out" in captions
    summary = at.dataframe[0].value.set_index("method")
    assert summary.loc["reagent", "n"] == 0 and summary.loc["reagent", "not_converged"] == 1
