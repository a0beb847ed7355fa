"""The faithfulness benchmark's bookkeeping: records, bootstrap summaries, paired differences, the store."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interp.methods.attribution.baselines import BaselineConfig
from interp.methods.attribution.faithfulness import FaithfulnessConfig
from interp.jobs.faithfulness_benchmark import METHODS, evaluate_prompt
from interp.methods.attribution.reagent import ReagentConfig


def test_one_prompt_record_scores_every_method(tiny_models):
    model = tiny_models["llama"]
    tokens = model.to_tokens("the cat sat on the mat and")[0].tolist()
    target = int(model.logits(torch.tensor(tokens))[0, -1].argmax())
    item = {"tokens": tokens, "prompt": "the cat sat on the mat and", "target": target, "p": 0.9}
    record = evaluate_prompt(model, item, 3, ReagentConfig(num_probes=4, max_probe_steps=20),
                             BaselineConfig(n_steps=4), FaithfulnessConfig(n_samples=2))
    assert list(record["methods"]) == list(METHODS)
    for name, m in record["methods"].items():
        assert 0.0 <= m["soft_ns"] <= 1.0 and m["soft_nc"] >= 0.0, name
        assert len(m["scores"]) == len(tokens) and m["scores"][0] == 0.0, name  # BOS is never attributed
        assert m["seconds"] >= 0.0 and m["cpu_seconds"] >= 0.0
    # min-max of the same probes: the same ranking as ReAGent's softmax importances
    assert np.argsort(record["methods"]["reagent"]["scores"][1:]).tolist() == \
        np.argsort(record["methods"]["reagent_minmax"]["scores"][1:]).tolist()
    with pytest.raises(ValueError, match="right after 'reagent'"):
        evaluate_prompt(model, item, 3, ReagentConfig(num_probes=2, max_probe_steps=2), BaselineConfig(n_steps=2),
                        FaithfulnessConfig(n_samples=1), methods=("random", "reagent_minmax"))
