"""ObsProp on the real SmolLM2 (RMSNorm, grouped-query attention, gated SiLU MLPs)."""

from __future__ import annotations

import pytest
import torch

from interp.methods.obsprop.observables import logit_diff, parse_observable
from interp.methods.obsprop.propagation import final_vector, head_vector, obsprop
from interp.methods.obsprop.checks import norm_angles

pytestmark = pytest.mark.model

PROMPTS = ["The nurse said that", "The mechanic walked in because", "When the florist finished the job,",
           "Everyone thanked the pilot because"]


def test_observable_tokens_checked_against_vocabulary(smollm2):
    obs = parse_observable(smollm2, [" she", "- he"])
    assert obs.vector[1041] == 1 and obs.vector[384] == -1
    with pytest.raises(ValueError, match=r"tokenises as \["):
        parse_observable(smollm2, ["she-he"])


def test_gqa_head_vectors_give_direct_contributions(smollm2):
    """Heads sharing a KV head use that block; z_h W_O v equals A (a . y_h) at every position."""
    obs = logit_diff(smollm2, " she", " he")
    v = final_vector(smollm2, obs)
    layer = 26
    s = smollm2.sites(layer)
    cache = smollm2.run(PROMPTS[0], names=[s.attn_in, s.attn_pattern, s.attn_z]).cache
    W_O = smollm2.weights.layer(layer).attn.W_O
    a, pattern, z = cache[s.attn_in][0], cache[s.attn_pattern][0], cache[s.attn_z][0]
    for h in (0, 2, 8):  # KV heads 0, 0 and 2
        direct = z[:, h] @ W_O[h] @ v
        torch.testing.assert_close(pattern[h] @ (a @ head_vector(smollm2, layer, h, v)), direct, atol=1e-3, rtol=1e-3)


def test_pronoun_ranking_and_norm_angle(smollm2):
    obs = logit_diff(smollm2, " she", " he")
    result = obsprop(smollm2, obs, PROMPTS)
    top = result.ranking().head(5)
    # The direct path to the logits is carried by late components.
    assert (top["layer"] >= smollm2.info.n_layers // 2).all()
    angles = norm_angles(smollm2, result, PROMPTS[:2], top=3)
    # The paper reports cosine ~0.998 between the propagated and exact-gradient directions.
    assert angles.table["mean_cos"].min() > 0.99
