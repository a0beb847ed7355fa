"""Observables: linear functionals on a model's logits (Dunefsky & Cohan 2023, sec. 3).

An observable is a vector ``n`` over the vocabulary; its value on an input at one position
is ``n . logits``. Typical observables:

1. a logit difference ``e_A - e_B`` (``" she" - " he"``): `logit_diff`;
2. a weighted token set ``sum_i w_i e_{t_i}`` (``0.5*" great" + 0.5*" excellent" -
   " bad"``): `token_set`;
3. any vocabulary-space vector: `Observable.from_vector`.

Tokens must be single tokens of the model's vocabulary; `adapter.token_id` raises a
ValueError that shows how a string tokenises otherwise.

`parse_observable` reads the command-line form: a list of terms ``[+|-][weight*]token``,
e.g. ``[" she", "- he"]`` (what the shell makes of ``" she" -" he"``), or one string with
quoted tokens ``'" she" - " he"'``; ``0.5*" she"`` weights a term.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_TERM = re.compile(rf"^(?P<sign>[+-])?(?:(?P<weight>{_NUMBER})\*)?(?P<token>.+)$", re.S)
_QUOTED_TERM = re.compile(
    rf"\s*(?P<sign>[+-])?\s*(?:(?P<weight>{_NUMBER})\s*\*\s*)?(?P<q>[\"'])(?P<token>.*?)(?P=q)\s*", re.S
)


@dataclass(frozen=True)
class Observable:
    """A linear functional ``n . logits`` on the vocabulary."""

    name: str
    """A short label, e.g. ``' she' - ' he'`` (used as the store source)."""
    vector: torch.Tensor
    """(d_vocab,) the coefficients ``n``."""
    terms: tuple[tuple[str, int, float], ...] = ()
    """(token string, token id, weight) for token-built observables; empty for raw vectors."""

    def __post_init__(self) -> None:
        if not isinstance(self.vector, torch.Tensor) or self.vector.ndim != 1:
            raise ValueError(f"observable {self.name!r}: vector must be a 1-D (d_vocab,) tensor")
        if not torch.isfinite(self.vector).all() or not self.vector.abs().sum() > 0:
            raise ValueError(f"observable {self.name!r}: vector must be finite and not all zero")

    @classmethod
    def from_vector(cls, vector: torch.Tensor, name: str = "vector") -> Observable:
        """An observable from any (d_vocab,) vector."""
        return cls(name, torch.as_tensor(vector, dtype=torch.float32).detach().reshape(-1))

    @property
    def d_vocab(self) -> int:
        return self.vector.shape[0]

    def value(self, logits: torch.Tensor) -> torch.Tensor:
        """``n . logits`` over the last axis: (..., d_vocab) -> (...)."""
        if logits.shape[-1] != self.d_vocab:
            raise ValueError(f"logits have {logits.shape[-1]} entries but observable {self.name!r} "
                             f"has {self.d_vocab} (built for another model?)")
        return logits @ self.vector.to(logits.dtype).to(logits.device)

    def to_record(self) -> dict:
        """A JSON-able description (the vector itself is summarised by its nonzeros)."""
        if self.terms:
            return {"name": self.name, "terms": [{"token": t, "id": i, "weight": w} for t, i, w in self.terms]}
        nz = self.vector.nonzero().reshape(-1)
        return {"name": self.name, "nonzero": int(nz.numel()), "norm": float(self.vector.norm())}


def token_set(adapter, weights: Mapping[str, float] | Sequence[tuple[str, float]], name: str | None = None) -> Observable:
    """``sum_t w_t e_t`` over single tokens `t` (weights may be negative)."""
    items = list(weights.items()) if isinstance(weights, Mapping) else list(weights)
    if not items:
        raise ValueError("an observable needs at least one token, got none")
    vector = torch.zeros(adapter.info.d_vocab)
    terms = []
    for token, weight in items:
        weight = float(weight)
        if weight == 0:
            raise ValueError(f"token {token!r} has weight 0; drop it or give a nonzero weight")
        idx = adapter.token_id(token)
        vector[idx] += weight
        terms.append((token, idx, weight))
    if name is None:
        name = " ".join(_format_term(t, w, first=i == 0) for i, (t, _, w) in enumerate(terms))
    return Observable(name, vector, tuple(terms))


def logit_diff(adapter, positive: str | Sequence[str], negative: str | Sequence[str]) -> Observable:
    """Mean logit of the `positive` tokens minus mean logit of the `negative` ones."""
    pos = [positive] if isinstance(positive, str) else list(positive)
    neg = [negative] if isinstance(negative, str) else list(negative)
    if not pos or not neg:
        raise ValueError(f"logit_diff needs tokens on both sides, got {pos!r} and {neg!r}")
    return token_set(adapter, [(t, 1.0 / len(pos)) for t in pos] + [(t, -1.0 / len(neg)) for t in neg])


def parse_terms(spec: str | Sequence[str]) -> list[tuple[str, float]]:
    """(token, weight) pairs from the command-line syntax (see the module docstring)."""
    if isinstance(spec, str):
        return _parse_quoted(spec)
    terms = []
    for arg in spec:
        if not isinstance(arg, str) or not arg:
            raise ValueError(f"observable term {arg!r} is empty; write tokens like ' she' or -' he'")
        m = _TERM.match(arg)
        token = _unquote(m.group("token"))
        weight = float(m.group("weight") or 1.0) * (-1.0 if m.group("sign") == "-" else 1.0)
        if not token:
            raise ValueError(f"observable term {arg!r} has no token after its sign/weight")
        terms.append((token, weight))
    if not terms:
        raise ValueError("an observable needs at least one term, e.g. ' she' -' he'")
    return terms


def parse_observable(adapter, spec: str | Sequence[str]) -> Observable:
    """An `Observable` from the command-line syntax, checked against the vocabulary."""
    return token_set(adapter, parse_terms(spec))


def _parse_quoted(spec: str) -> list[tuple[str, float]]:
    terms, pos = [], 0
    while pos < len(spec):
        m = _QUOTED_TERM.match(spec, pos)
        if not m or m.end() == pos:
            raise ValueError(
                f"cannot parse observable {spec!r} at position {pos}: write quoted tokens with an "
                "optional sign and weight, e.g. '\" she\" - \" he\"' or '0.5*\" great\" - \" bad\"'"
            )
        weight = float(m.group("weight") or 1.0) * (-1.0 if m.group("sign") == "-" else 1.0)
        terms.append((m.group("token"), weight))
        pos = m.end()
    if not terms or any(not t for t, _ in terms):
        raise ValueError(f"observable {spec!r} has an empty token; valid example: '\" she\" - \" he\"'")
    return terms


def _unquote(token: str) -> str:
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "\"'":
        return token[1:-1]
    return token


def _format_term(token: str, weight: float, first: bool) -> str:
    sign = "-" if weight < 0 else ("" if first else "+")
    mag = abs(weight)
    coef = "" if mag == 1 else f"{mag:g}*"
    return f"{sign}{coef}{token!r}"
