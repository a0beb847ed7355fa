"""ReAGent and the baselines on a tiny llama where, by construction, one input token matters.

An intervention on ``blocks.0.hook_resid_pre`` zeroes every position except `KEY`, so the
logits at the last position are a function of the token at `KEY` alone: replacing, occluding
or interpolating any other token changes nothing, and its gradient is exactly 0.
"""

from __future__ import annotations


import pytest
import torch

from interp.methods.attribution.registry import method_fn
from interp.methods.attribution.reagent import ReagentConfig


def test_config_validation_names_the_bad_value():
    with pytest.raises(ValueError, match="replacing_ratio"):
        ReagentConfig(replacing_ratio=0.0)
    with pytest.raises(ValueError, match="top_k"):
        ReagentConfig(top_k=0)
    with pytest.raises(ValueError, match="unknown replacer 'pos'"):
        ReagentConfig(replacer="pos")
    with pytest.raises(ValueError, match="unknown attribution method"):
        method_fn("shap")


def test_aggregate_probes_by_hand():
    from interp.methods.attribution.reagent import aggregate_probes

    scores = torch.tensor([[5.0, 1.0, 3.0, 2.0], [5.0, 2.0, 1.0, 1.0]])
    attributable = torch.tensor([False, True, True, True])
    converged = torch.tensor([True, False])
    assert aggregate_probes(scores, converged, attributable, "minmax").tolist() == pytest.approx([0, 0, 1, 0.5])
    soft = torch.softmax(torch.tensor([1.0, 3.0, 2.0]), 0).tolist()
    assert aggregate_probes(scores, converged, attributable, "softmax").tolist() == pytest.approx([0, *soft])
    both = aggregate_probes(scores, torch.tensor([False, False]), attributable, "minmax")
    assert both.tolist() == pytest.approx([0, 0.5, 0.5, 0.25])
