"""The steering workbench: default vs steered continuations of one prompt, several directions at once.

1. Each `DirectionSpec` is resolved to its direction (`interp.methods.steering.directions`)
   and its concept tokens (`interp.methods.steering.concepts`); the specs become one list of
   edits that act together in every steered forward pass.
2. The prompt becomes tokens, plain or through the chat template
   (`interp.methods.steering.generation.prompt_tokens`).
3. Default continuation: sampled with no edit (seed, temperature, top-p, max tokens of
   `GenerateConfig`), recording each direction's concept probability at every step.
4. Steered continuation, once per attention mode asked for (``frozen``: the prompt's clean
   patterns, `interp.methods.steering.attention`; ``live``), with the same settings and seed,
   so the only difference from step 3 is the steering (and, between the modes, whether the
   edit may move attention).
5. Optionally the side effect per mode: the KL of steered vs unsteered next-token
   distributions on the neutral prompts (`interp.methods.steering.side_effects`).

`concept_counts` repeats steps 3-4 over several seeds and counts the continuations that
sample a token of one of the directions' concept families: the check that steering shows its concept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from interp.methods.neurons.clamping import NEUTRAL_PROMPTS
from interp.methods.steering.attention import attention, check_attention
from interp.methods.steering.concepts import ConceptTokens, concept_tokens
from interp.methods.steering.directions import DirectionSpec, SteeringDirection, resolve_direction
from interp.methods.steering.generation import Continuation, GenerateConfig, prompt_tokens, sample
from interp.methods.steering.side_effects import SideEffect, neutral_kl
from interp.methods.steering.steering import Edit, steered_edits


@dataclass(frozen=True)
class SteeringConfig:
    """What to compute besides the default and steered continuations."""

    attention: tuple[str, ...] = ("live",)
    """Attention modes of the steered run: frozen, live, or both (each gets its continuation)."""
    chat: bool = False
    """Wrap the prompt in the tokenizer's chat template (one user turn)."""
    kl: bool = False
    """Measure the side effect: KL(clean || steered) on the neutral prompts, per attention mode."""
    neutral_prompts: tuple[str, ...] = NEUTRAL_PROMPTS
    """Prompts of the KL side effect."""
    concept_k: int = 10
    """Concept tokens per direction (its top decoded tokens)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "attention", check_attention(self.attention))
        object.__setattr__(self, "neutral_prompts", tuple(self.neutral_prompts))
        if isinstance(self.concept_k, bool) or not isinstance(self.concept_k, int) or self.concept_k < 1:
            raise ValueError(f"concept_k must be a positive integer, got {self.concept_k!r}")
        if self.kl and not self.neutral_prompts:
            raise ValueError("kl needs at least one neutral prompt")


@dataclass(frozen=True)
class DirectionRecord:
    """A steered direction as a run records it: its spec, identity and concept tokens."""

    spec: DirectionSpec
    label: str
    kind: str
    site: str
    """The hook it was steered at."""
    concept: ConceptTokens
    feature: dict | None = None
    """The stored feature's identity (`FeatureId.to_record`), None for a user vector."""


@dataclass(frozen=True)
class SteeringRun:
    """Everything one workbench run computed (steps 1-5)."""

    model: str
    prompt: str
    directions: tuple[DirectionRecord, ...]
    generate: GenerateConfig
    config: SteeringConfig
    default: Continuation
    steered: dict[str, Continuation]
    """Attention mode -> the steered continuation."""
    side_effects: dict[str, SideEffect] = field(default_factory=dict)
    """Attention mode -> the KL side effect (empty unless `SteeringConfig.kl`)."""

    @property
    def concept_ids(self) -> tuple[int, ...]:
        """Every direction's concept token family, first appearance order."""
        return tuple(dict.fromkeys(t for d in self.directions for t in d.concept.family))


def _record(direction: SteeringDirection, spec: DirectionSpec, concept: ConceptTokens) -> DirectionRecord:
    feature = direction.feature.to_record() if direction.feature is not None else None
    return DirectionRecord(spec, direction.label, direction.kind, direction.steer.write_site, concept, feature)


def prepare(store, adapter, specs: Sequence[DirectionSpec], concept_k: int = 10
            ) -> tuple[list[Edit], tuple[DirectionRecord, ...]]:
    """Step 1: the edits of `specs` and their records."""
    if not specs:
        raise ValueError("no direction to steer: give at least one feature (KEY=STRENGTH)")
    edits, records = [], []
    for spec in specs:
        direction = resolve_direction(store, adapter, spec)
        edits.append(direction.edit(spec))
        records.append(_record(direction, spec, concept_tokens(adapter, direction, store, concept_k)))
    return edits, tuple(records)


def run_steering(adapter, prompt: str, specs: Sequence[DirectionSpec], generate: GenerateConfig = GenerateConfig(),
                 config: SteeringConfig = SteeringConfig(), store=None) -> SteeringRun:
    """Steps 1-5 (see the module docstring); `store` resolves stored features (None: neurons and vectors)."""
    edits, records = prepare(store, adapter, specs, config.concept_k)
    return run_prepared(adapter, prompt, edits, records, generate, config)


def run_prepared(adapter, prompt: str, edits: Sequence[Edit], records: tuple[DirectionRecord, ...],
                 generate: GenerateConfig = GenerateConfig(), config: SteeringConfig = SteeringConfig()
                 ) -> SteeringRun:
    """Steps 2-5 for edits `prepare` made."""
    tokens = prompt_tokens(adapter, prompt, config.chat)
    concepts = [r.concept.family for r in records]
    default = sample(adapter, tokens, generate, concepts)
    steered = {}
    for mode in config.attention:
        with attention(adapter, mode, tokens), steered_edits(adapter, edits):
            steered[mode] = sample(adapter, tokens, generate, concepts)
    effects = {mode: neutral_kl(adapter, edits, mode, config.neutral_prompts) for mode in config.attention} \
        if config.kl else {}
    return SteeringRun(adapter.store_name, prompt, records, generate, config, default, steered, effects)


@dataclass(frozen=True)
class ConceptCounts:
    """How many of n seeded continuations contain a concept token, default vs steered."""

    seeds: tuple[int, ...]
    default: int
    steered: dict[str, int]
    """Attention mode -> count."""
    runs: tuple[SteeringRun, ...]


def concept_counts(adapter, prompt: str, specs: Sequence[DirectionSpec], seeds: Sequence[int],
                   generate: GenerateConfig = GenerateConfig(), config: SteeringConfig = SteeringConfig(),
                   store=None) -> ConceptCounts:
    """Steps 3-4 for every seed; a continuation counts when it samples a token of a concept's family."""
    from dataclasses import replace

    seeds = tuple(int(s) for s in seeds)
    if not seeds:
        raise ValueError("concept_counts needs at least one seed")
    edits, records = prepare(store, adapter, specs, config.concept_k)
    quiet = replace(config, kl=False)
    runs = tuple(run_prepared(adapter, prompt, edits, records, replace(generate, seed=s), quiet) for s in seeds)
    ids = runs[0].concept_ids
    steered = {m: sum(r.steered[m].hits(ids) for r in runs) for m in config.attention}
    return ConceptCounts(seeds, sum(r.default.hits(ids) for r in runs), steered, runs)
