"""The tokens a steering direction is about: what its concept probability curve sums over.

1. A stored feature with decoded tokens in the store (``feature_tokens``, top end): its
   ``k`` best-ranked tokens, preferring the write direction's decoding (``down`` for a
   neuron, ``decoder`` for a latent) and the ``folded`` variant.
2. Otherwise its residual-stream direction ``w`` decoded through the final norm and the
   unembedding, ``logits = (g (.) N(w)) @ W_U`` (`interp.methods.neurons.decoding`, the
   folded variant): the ``k`` tokens of largest logit.
3. A direction off the residual stream with nothing stored has no concept tokens.
4. The concept's token family: every vocabulary token whose text, stripped of surrounding
   spaces and lowercased, equals one of the top tokens' (``dog`` brings `` dog``, ``Dog``,
   `` Dog``...), since a tokenizer spells one word several ways and the decoded top token is
   often not the spelling running text uses (a token that decodes to a partial character,
   ``\ufffd``, stands only for itself). The concept probability sums over the family,
   and a continuation "samples the concept" when it samples a token of it.
"""

from __future__ import annotations

from dataclasses import dataclass

from interp.methods.steering.directions import SteeringDirection

WRITE_DIRECTIONS = ("down", "decoder")


@dataclass(frozen=True)
class ConceptTokens:
    """The top tokens of one steering direction."""

    ids: tuple[int, ...]
    """Token ids, best first."""
    strings: tuple[str, ...]
    """Their decoded strings."""
    source: str
    """'stored' (step 1), 'unembed' (step 2) or 'none' (step 3)."""
    family: tuple[int, ...] = ()
    """Every token id spelling one of `strings` up to case and surrounding spaces (step 4)."""


def _stored(store, direction: SteeringDirection, k: int) -> ConceptTokens | None:
    if store is None or direction.feature is None:
        return None
    rows = store.feature_tokens(direction.feature)
    rows = rows[rows["end"] == "top"] if len(rows) else rows
    if rows.empty:
        return None
    groups = list(rows.groupby(["direction", "variant"], sort=False))
    rank = lambda g: (g[0][0] not in WRITE_DIRECTIONS, g[0][1] != "folded")  # noqa: E731
    _, best = min(groups, key=rank)
    best = best.sort_values("rank").head(k)
    return ConceptTokens(tuple(int(t) for t in best["token_id"]), tuple(str(s) for s in best["token_str"]), "stored")


def _form(text: str) -> str:
    return text.strip().lower()


def token_family(adapter, strings) -> tuple[int, ...]:
    """Step 4: the ids of every vocabulary token that spells one of `strings` up to case and spaces."""
    forms = {_form(s) for s in strings if _form(s) and "\ufffd" not in s}
    vocab = adapter.vocab_strings()
    return tuple(i for i, text in enumerate(vocab) if _form(text) in forms)


def concept_tokens(adapter, direction: SteeringDirection, store=None, k: int = 10) -> ConceptTokens:
    """Steps 1-4 for one direction."""
    from dataclasses import replace

    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k (concept tokens per direction) must be a positive integer, got {k!r}")
    found = _stored(store, direction, k) or _unembedded(adapter, direction, k)
    family = tuple(dict.fromkeys(found.ids + token_family(adapter, found.strings)))
    return replace(found, family=family)


def _unembedded(adapter, direction: SteeringDirection, k: int) -> ConceptTokens:
    """Steps 2-3."""
    if direction.residual is None:
        return ConceptTokens((), (), "none")
    from interp.methods.neurons.decoding import DecodeConfig, decode_directions

    W_U = adapter.weights.W_U
    decoded = decode_directions(direction.residual[None].to(W_U.device), W_U, adapter.weights.final_norm,
                                DecodeConfig(top_k=min(k, W_U.shape[1]), backend="torch"))
    ids = tuple(int(t) for t in decoded.top_ids[0])
    return ConceptTokens(ids, tuple(adapter.decode([t]) for t in ids), "unembed")
