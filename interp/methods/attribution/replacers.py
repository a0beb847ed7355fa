"""Token replacers for perturbation-based attribution (ReAGent and friends).

A replacer turns one input into a sampling distribution over substitute tokens:
``replacer.distribution(adapter, tokens)`` returns either one (vocab,) distribution shared by
every position or a (pos, vocab) distribution per position. `sample_replacements` then draws
the substitutes for many masked copies of the input in one call. Special tokens (BOS, EOS,
padding, added specials) always get zero probability, and special input positions are never
replaced (the callers' masks exclude them).

- `UniformReplacer`    - uniform over the vocabulary (ReAGent's cheap default).
- `FrequencyReplacer`  - proportional to token counts in a corpus (``interp.corpus``).
- `PredictionReplacer` - the LM's own prediction at each position given the original prefix
  (position i is replaced by a sample from ``p(. | x_<i)``), from one forward pass.
- `MaskedLMReplacer`   - a masked LM (RoBERTa in the ReAGent paper) fills each position given
  the rest; its candidates are mapped onto the LM's vocabulary by their text. Optional: the
  user must be able to load the masked LM.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from interp.methods.attribution.targets import special_mask


def _special_ids(adapter) -> list[int]:
    ids = set(getattr(adapter.tokenizer, "all_special_ids", []) or [])
    if adapter.info.bos_token_id is not None:
        ids.add(adapter.info.bos_token_id)
    return sorted(i for i in ids if 0 <= i < adapter.info.d_vocab)


def _without_specials(adapter, probs: torch.Tensor) -> torch.Tensor:
    probs = probs.clone().float()
    probs[..., _special_ids(adapter)] = 0.0
    total = probs.sum(-1, keepdim=True)
    if (total <= 0).any():
        raise ValueError("a replacement distribution has no mass outside the special tokens")
    return probs / total


@dataclass(frozen=True)
class UniformReplacer:
    """Uniform over the vocabulary, special tokens excluded."""

    name: str = "uniform"

    def distribution(self, adapter, tokens: torch.Tensor) -> torch.Tensor:
        """(vocab,) distribution."""
        return _without_specials(adapter, torch.ones(adapter.info.d_vocab, device=adapter.device))


@dataclass(frozen=True)
class FrequencyReplacer:
    """Proportional to `counts` (vocab,), e.g. corpus token counts (see `from_corpus`)."""

    counts: torch.Tensor
    name: str = "frequency"

    def distribution(self, adapter, tokens: torch.Tensor) -> torch.Tensor:
        if self.counts.shape != (adapter.info.d_vocab,):
            raise ValueError(f"counts have shape {tuple(self.counts.shape)}, expected ({adapter.info.d_vocab},)")
        # Add-one smoothing keeps every ordinary token reachable.
        return _without_specials(adapter, self.counts.to(adapter.device).float() + 1.0)

    @classmethod
    def from_corpus(cls, adapter, corpus: str = "imdb", max_tokens: int = 200_000, seed: int = 0) -> "FrequencyReplacer":
        """Count tokens over the train split of `corpus` (cached by ``interp.corpus``)."""
        from interp.corpus import token_windows

        windows = token_windows(corpus, adapter.tokenizer, split="train", max_tokens=max_tokens, seed=seed)
        counts = torch.bincount(windows.tokens.reshape(-1), minlength=adapter.info.d_vocab)[: adapter.info.d_vocab]
        return cls(counts, name=f"frequency:{corpus}")


@dataclass(frozen=True)
class PredictionReplacer:
    """The LM's own next-token distribution at each position, given the original prefix."""

    temperature: float = 1.0
    """Softmax temperature of the predictions (lower = closer to the argmax)."""
    name: str = "prediction"

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")

    def distribution(self, adapter, tokens: torch.Tensor) -> torch.Tensor:
        """(pos, vocab): row i is p(. | x_<i); row 0 (never replaced: BOS) is uniform."""
        logits = adapter.logits(tokens[None])[0].float()  # (pos, vocab)
        probs = torch.ones_like(logits)
        probs[1:] = torch.softmax(logits[:-1] / self.temperature, dim=-1)
        return _without_specials(adapter, probs)


@dataclass(frozen=True)
class MaskedLMReplacer:
    """A masked LM's fill-in distribution per position, mapped onto the LM's vocabulary.

    `fill`: ``fill(words, i) -> {text: prob}`` - candidates for position i of the list of
    token strings `words` with position i masked. Build one from a Hugging Face masked LM with
    `from_pretrained`. Candidates that are not exactly one token of the LM are dropped.
    """

    fill: Callable[[list[str], int], dict[str, float]]
    name: str = "masked_lm"

    def distribution(self, adapter, tokens: torch.Tensor) -> torch.Tensor:
        words = adapter.to_str_tokens(tokens)
        probs = torch.zeros(len(words), adapter.info.d_vocab, device=adapter.device)
        probs[:] = 1e-9  # a floor so a position with no mapped candidate falls back to uniform
        special = special_mask(adapter, tokens).tolist()
        for i, is_special in enumerate(special):
            if is_special:
                continue
            for text, p in self.fill(words, i).items():
                ids = adapter.tokenizer(text, add_special_tokens=False)["input_ids"]
                if len(ids) == 1:
                    probs[i, ids[0]] += float(p)
        return _without_specials(adapter, probs)

    @classmethod
    def from_pretrained(cls, name: str = "roberta-base", top_k: int = 50) -> "MaskedLMReplacer":
        """Load a masked LM with the `transformers` fill-mask pipeline.

        Imported here, not through `interp.models`: the adapter serves causal LMs only and a
        masked LM is just a sampling distribution for this replacer.
        """
        try:
            from transformers import pipeline

            pipe = pipeline("fill-mask", model=name, top_k=top_k)
        except Exception as exc:  # noqa: BLE001 - any load failure gets the same actionable message
            raise ValueError(
                f"could not load masked LM {name!r} for token replacement ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}); download it first (needs network, "
                "HF_HUB_OFFLINE unset) or use the 'uniform', 'frequency' or 'prediction' replacer"
            ) from None
        mask = pipe.tokenizer.mask_token

        def fill(words: list[str], i: int) -> dict[str, float]:
            text = "".join(words[:i]) + (" " if words[i].startswith(" ") else "") + mask + "".join(words[i + 1 :])
            return {(" " if words[i].startswith(" ") else "") + c["token_str"].strip(): c["score"] for c in pipe(text)}

        return cls(fill, name=f"masked_lm:{name}")


Replacer = UniformReplacer | FrequencyReplacer | PredictionReplacer | MaskedLMReplacer

REPLACERS = ("uniform", "frequency", "prediction", "masked_lm")


def make_replacer(kind: str, adapter=None, **kwargs) -> Replacer:
    """A replacer by kind (see `REPLACERS`); keyword arguments go to its constructor."""
    if kind == "uniform":
        return UniformReplacer()
    if kind == "frequency":
        if adapter is None:
            raise ValueError("the 'frequency' replacer needs the adapter to count corpus tokens")
        return FrequencyReplacer.from_corpus(adapter, **kwargs)
    if kind == "prediction":
        return PredictionReplacer(**kwargs)
    if kind == "masked_lm":
        return MaskedLMReplacer.from_pretrained(**kwargs)
    raise ValueError(f"unknown replacer {kind!r}; valid: {', '.join(REPLACERS)}")


def sample_replacements(probs: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor,
                        generator: torch.Generator) -> torch.Tensor:
    """Copies of `tokens` with the masked positions replaced by draws from `probs`.

    probs: (vocab,) or (pos, vocab); tokens: (pos,); mask: (batch, pos) bool -> (batch, pos).
    """
    batch, pos = mask.shape
    if probs.ndim == 1:
        draws = torch.multinomial(probs, batch * pos, replacement=True, generator=generator).view(batch, pos)
    else:
        # One draw per (row, position) from that position's distribution: (pos, batch) -> (batch, pos)
        draws = torch.multinomial(probs, batch, replacement=True, generator=generator).T
    return torch.where(mask, draws.to(tokens.device), tokens.expand(batch, pos))
