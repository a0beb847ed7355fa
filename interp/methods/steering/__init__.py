"""steering family: steer a model along one or several features while it generates, and compare.

- `steering`: the edits (add a direction, clamp an activation, cap a projection), scoped hooks;
  `Steer`, `Edit`, `steered`, `steered_edits`, `neuron_steer`, `latent_steer`.
- `generation`: sampling with one seed, plain or chat prompts, per-step concept probabilities;
  `GenerateConfig`, `Continuation`, `sample`, `generate`, `compare`.
- `directions`: directions from any stored feature or a user vector; `DirectionSpec`, `parse_spec`,
  `resolve_direction`.
- `concepts`: the tokens a direction is about; `concept_tokens`.
- `attention`: frozen (clean patterns of the prompt) or live attention; `attention`, `frozen_attention`.
- `side_effects`: KL of steered vs unsteered next-token distributions on neutral prompts; `neutral_kl`.
- `workbench`: the whole comparison; `SteeringConfig`, `run_steering`, `SteeringRun`, `concept_counts`.
- `strength`: a suggested strength from the stored activations; `suggest_strength`.
- `probe`: difference-of-means directions and their store rows; `mean_difference`, `save_directions`.
- `store`: a run as a ``results`` row; `save_run`, `load_run`.
"""

from interp.methods.steering.attention import ATTENTION, attention, clean_patterns, frozen_attention
from interp.methods.steering.concepts import ConceptTokens, concept_tokens
from interp.methods.steering.directions import (DirectionSpec, SteeringDirection, parse_spec,
                                                resolve_direction)
from interp.methods.steering.generation import (Continuation, GenerateConfig, SteerResult, compare, generate,
                                                prompt_tokens, sample)
from interp.methods.steering.probe import mean_difference, save_directions
from interp.methods.steering.side_effects import SideEffect, neutral_kl
from interp.methods.steering.steering import (METHODS, Edit, Steer, latent_steer, neuron_steer, steered,
                                              steered_edits)
from interp.methods.steering.strength import StrengthSuggestion, suggest_strength
from interp.methods.steering.workbench import (ConceptCounts, DirectionRecord, SteeringConfig, SteeringRun,
                                               concept_counts, run_steering)

__all__ = [
    "ATTENTION", "METHODS", "ConceptCounts", "ConceptTokens", "Continuation", "DirectionRecord", "DirectionSpec",
    "Edit", "GenerateConfig", "SideEffect", "Steer", "SteerResult", "SteeringConfig", "SteeringDirection",
    "SteeringRun", "StrengthSuggestion", "attention", "clean_patterns", "compare", "concept_counts",
    "concept_tokens", "frozen_attention", "generate", "latent_steer", "mean_difference", "neuron_steer", "neutral_kl", "parse_spec",
    "prompt_tokens", "resolve_direction", "run_steering", "sample", "save_directions", "steered", "steered_edits", "suggest_strength",
]
