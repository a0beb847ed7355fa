"""Steering SmolLM2 (the acceptance check): neuron 18:1036, whose top decoded token is 'dog', added at
the suggested strength (8 x its corpus maximum activation), writes ' dog' into sampled text more often
than the default does, over 5 seeds with the same sampling settings."""

from __future__ import annotations

import pytest

from interp.methods.steering import GenerateConfig, SteeringConfig, concept_counts, parse_spec, prompt_tokens
from interp.methods.steering.strength import ADD_FACTOR

MAX_ACT = 1.154
"""Neuron 18:1036's largest activation over 8,128 IMDB held-out tokens (the scale the examples job stores)."""


@pytest.mark.model
def test_dog_neuron_steers_sampled_text_towards_dog(smollm2):
    spec = parse_spec(f"18:1036={ADD_FACTOR * MAX_ACT:.3f}")
    counts = concept_counts(smollm2, "I went to the park with my", [spec], seeds=range(5),
                            generate=GenerateConfig(max_tokens=20), config=SteeringConfig(concept_k=1))
    concept = counts.runs[0].directions[0].concept
    assert concept.strings == ("dog",) and smollm2.token_id(" dog") in concept.family
    assert counts.steered["live"] > counts.default, (counts.default, counts.steered)
    assert all(r.steered["live"].text != r.default.text for r in counts.runs)


@pytest.mark.model
def test_chat_prompt_uses_the_template_once(smollm2):
    tokens = prompt_tokens(smollm2, "Tell me about your day.", chat=True)[0].tolist()
    start = smollm2.tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert tokens[0] == start and tokens.count(start) == 3  # system, user, assistant turns; no extra BOS
    assert smollm2.decode(tokens).endswith("<|im_start|>assistant\n")
