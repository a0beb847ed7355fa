"""Sampling continuations under whatever steering hooks are active.

1. The prompt becomes token ids (`prompt_tokens`): as plain text (the model's BOS policy), or
   through the tokenizer's chat template as one user turn with the assistant's turn opened
   (``apply_chat_template(..., add_generation_prompt=True)``; the template writes its own
   special tokens, so no BOS is prepended). A tokenizer without a template is refused.
2. Tokens are sampled one at a time from the last position's distribution (`sample`) with
   temperature T (T = 0: greedy) and top-p (nucleus) filtering, from a `torch.Generator`
   seeded with `seed`; each step is one forward pass over the whole sequence (no KV cache:
   continuations are short, and a frozen attention pattern stays a plain hook). Sampling
   stops after `max_tokens`, at the end of the context, or (``stop_at_eos``) after the
   end-of-sequence token.
3. At every step the probability mass the model's own distribution (temperature 1, before
   top-p) puts on each concept's token family is recorded: ``m_k[t] = sum_{v in C_k}
   softmax(logits_t)[v]``, the curve `interp.viz.steering` draws.

`compare` runs the default and the steered continuation with the same settings and the same
seed, so they differ only by the steering.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from interp.methods.steering.steering import Steer, steered


@dataclass(frozen=True)
class GenerateConfig:
    """Sampling settings shared by the default and the steered continuation."""

    max_tokens: int = 20
    """Tokens to generate."""
    temperature: float = 0.7
    """Softmax temperature (0: greedy)."""
    top_p: float = 0.9
    """Nucleus: sample among the most likely tokens whose probabilities sum to top_p."""
    seed: int = 0
    """Seed of the sampler (the same for both continuations)."""
    stop_at_eos: bool = True
    """Stop after the tokenizer's end-of-sequence token."""

    def __post_init__(self) -> None:
        if isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int) or self.max_tokens < 1:
            raise ValueError(f"max_tokens must be a positive int, got {self.max_tokens!r}")
        if not self.temperature >= 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an int, got {self.seed!r}")


@dataclass(frozen=True)
class Continuation:
    """One sampled continuation and what the model's distribution said at each step."""

    text: str
    """The generated text (the prompt excluded)."""
    token_ids: tuple[int, ...]
    """(n_steps,) the sampled token ids."""
    tokens: tuple[str, ...] = ()
    """(n_steps,) each sampled token decoded on its own."""
    concept_probs: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    """(n_concepts, n_steps) probability mass on each concept's tokens at each step (step 3)."""

    def hits(self, token_ids: Sequence[int]) -> bool:
        """Whether any sampled token is one of `token_ids`."""
        wanted = {int(t) for t in token_ids}
        return any(t in wanted for t in self.token_ids)


def has_chat_template(adapter) -> bool:
    return bool(getattr(adapter.tokenizer, "chat_template", None))


def prompt_tokens(adapter, prompt: str, chat: bool = False) -> torch.Tensor:
    """(1, pos) token ids of `prompt`, plain or as a chat turn (step 1)."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError(f"prompt {prompt!r} is empty: give the text to continue")
    if not chat:
        return adapter.to_tokens(prompt)
    if not has_chat_template(adapter):
        raise ValueError(f"the tokenizer of {adapter.name} has no chat template: steer the plain prompt instead")
    text = adapter.tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                 add_generation_prompt=True)
    return adapter.to_tokens(text, prepend_bos=False)


def _sample(logits: torch.Tensor, config: GenerateConfig, generator: torch.Generator) -> int:
    """One token id from (d_vocab,) logits."""
    if config.temperature == 0:
        return int(logits.argmax())
    probs = (logits.float() / config.temperature).softmax(-1)
    sorted_p, order = probs.sort(descending=True)
    keep = sorted_p.cumsum(-1) - sorted_p < config.top_p  # the smallest prefix reaching top_p
    sorted_p = torch.where(keep, sorted_p, 0.0)
    return int(order[torch.multinomial(sorted_p / sorted_p.sum(), 1, generator=generator)])


@torch.no_grad()
def sample(adapter, tokens: torch.Tensor, config: GenerateConfig = GenerateConfig(),
           concepts: Sequence[Sequence[int]] = ()) -> Continuation:
    """Steps 2-3 from (1, pos) prompt `tokens`, under whatever hooks are active."""
    start = tokens.shape[1]
    generator = torch.Generator().manual_seed(config.seed)
    ids = [torch.as_tensor(list(c), dtype=torch.long) for c in concepts]
    masses: list[list[float]] = [[] for _ in ids]
    eos = adapter.tokenizer.eos_token_id
    for _ in range(config.max_tokens):
        if tokens.shape[1] >= adapter.info.n_ctx:
            break
        logits = adapter.run(tokens, last_position=True).output[0, -1]
        if ids:
            probs = logits.float().softmax(-1).cpu()
            for mass, c in zip(masses, ids):
                mass.append(float(probs[c].sum()))
        nxt = _sample(logits, config, generator)
        tokens = torch.cat([tokens, torch.tensor([[nxt]], device=tokens.device)], 1)
        if config.stop_at_eos and eos is not None and nxt == eos:
            break
    new = tokens[0, start:].tolist()
    return Continuation(adapter.decode(new), tuple(int(t) for t in new), tuple(adapter.decode([t]) for t in new),
                        np.array(masses, dtype=float).reshape(len(ids), len(new)))


def generate(adapter, prompt: str, config: GenerateConfig = GenerateConfig()) -> str:
    """A sampled continuation of a plain `prompt` under whatever hooks are active."""
    return sample(adapter, prompt_tokens(adapter, prompt), config).text


@dataclass(frozen=True)
class SteerResult:
    """Default and steered continuations of one prompt, same sampling settings and seed."""

    prompt: str
    method: str
    strength: float
    default: str
    steered: str
    config: GenerateConfig


def compare(adapter, steer: Steer, prompt: str, strength: float, method: str = "add",
            config: GenerateConfig = GenerateConfig()) -> SteerResult:
    """`generate` without and with one feature's steering (see the module docstring)."""
    default = generate(adapter, prompt, config)
    with steered(adapter, steer, method, strength):
        out = generate(adapter, prompt, config)
    return SteerResult(prompt, method, float(strength), default, out, config)
