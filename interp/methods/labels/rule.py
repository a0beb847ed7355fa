"""Automatic feature labels from two sources: what a feature promotes and what it fires on.

Algorithm (pure functions of store-shaped frames; `interp.methods.labels.store` feeds them):

1. **Output label** (`output_labels`), from ``feature_tokens``: of a feature's decoded
   directions, the first of `OUTPUT_DIRECTIONS` it has (``down`` for an MLP neuron's W_out
   row, ``decoder`` for a dictionary latent), and of that direction's variants the
   alphabetically first; its ``end == 'top'`` tokens are walked in rank order, each
   stripped of surrounding whitespace and U+FFFD (a piece of a multi-byte character),
   empty ones skipped, and a token equal to an
   earlier one case-insensitively skipped; the first `N_TOKENS` (3) that remain, joined by
   ``'/'``, are the output label (" Paris", " paris", "Paris", " France" -> ``Paris/France``).
2. **Input label** (`input_labels`), from ``activation_examples`` of group ``'top'``: each
   top example contributes one token, the one at its maximum (``tokens[max_pos]``), cleaned as in 1,
   with weight ``max_act``; weights of tokens equal case-insensitively are summed (the
   spelling shown is the one of the heaviest single example), empty tokens are skipped,
   and the `N_TOKENS` heaviest (ties: alphabetical) joined by ``'/'`` are the input label.
3. **Agreement**: a feature's two labels *agree* when they share a token
   case-insensitively. **Combined label**: the output label when they agree or when
   there is no input label; the input label when there is no output label; else
   ``'in: <input> -> out: <output>'``.
4. **Agreement per layer** (`agreement_by_layer`): among the features that have both
   labels, the share that agree, per (kind, layer, source).

Every step is a pandas group-by over all features at once (no per-feature Python loop).
"""

from __future__ import annotations

import pandas as pd

from interp.sites import layer_of

IDENTITY = ["model", "site", "kind", "index", "source"]
OUTPUT_DIRECTIONS = ("down", "decoder")
"""Directions that say what a feature writes, in order of preference."""
N_TOKENS = 3
"""Tokens per label."""
SEP = "/"


def _clean(tokens: pd.Series) -> pd.Series:
    """Tokens stripped of surrounding whitespace and of U+FFFD (the marks of a token that is
    part of a multi-byte character)."""
    return tokens.fillna("").astype(str).str.strip().str.strip("\ufffd").str.strip()


def _first_tokens(frame: pd.DataFrame, order: list[str], ascending: list[bool]) -> pd.DataFrame:
    """Per feature, the first `N_TOKENS` distinct (case-insensitive) non-empty stripped tokens
    of column ``token`` in the given order, joined by SEP, as column ``text``."""
    frame = frame.assign(token=_clean(frame["token"]))
    frame = frame[frame["token"] != ""]
    frame = frame.assign(norm=frame["token"].str.lower())
    frame = frame.sort_values([*IDENTITY, *order], ascending=[True] * len(IDENTITY) + ascending, kind="stable")
    frame = frame.drop_duplicates([*IDENTITY, "norm"], keep="first")
    frame = frame.groupby(IDENTITY, sort=False).head(N_TOKENS)
    return frame.groupby(IDENTITY, as_index=False, sort=False).agg(text=("token", SEP.join))


def output_labels(tokens: pd.DataFrame) -> pd.DataFrame:
    """Step 1. `tokens`: feature_tokens rows (identity, direction, variant, end, rank, token_str).
    Returns identity + ``output_label`` for each feature with an output direction."""
    rows = tokens[(tokens["end"] == "top") & tokens["direction"].isin(OUTPUT_DIRECTIONS)]
    if rows.empty:
        return pd.DataFrame(columns=[*IDENTITY, "output_label"])
    pref = rows["direction"].map({d: i for i, d in enumerate(OUTPUT_DIRECTIONS)})
    rows = rows.assign(pref=pref)
    first = rows.groupby(IDENTITY)["pref"].transform("min")
    rows = rows[rows["pref"] == first]
    variant = rows.groupby(IDENTITY)["variant"].transform("min")
    rows = rows[rows["variant"] == variant].rename(columns={"token_str": "token"})
    return _first_tokens(rows, ["rank"], [True]).rename(columns={"text": "output_label"})


def input_labels(examples: pd.DataFrame) -> pd.DataFrame:
    """Step 2. `examples`: top-group rows with identity, ``token`` (the token at max_pos) and
    ``max_act``. Returns identity + ``input_label``."""
    if examples.empty:
        return pd.DataFrame(columns=[*IDENTITY, "input_label"])
    rows = examples.assign(token=_clean(examples["token"]))
    rows = rows[rows["token"] != ""]
    rows = rows.assign(norm=rows["token"].str.lower(), max_act=rows["max_act"].astype(float))
    # the spelling shown is the heaviest single example's
    rows = rows.sort_values([*IDENTITY, "norm", "max_act"], ascending=[True] * (len(IDENTITY) + 1) + [False])
    summed = rows.groupby([*IDENTITY, "norm"], as_index=False, sort=False).agg(
        token=("token", "first"), weight=("max_act", "sum"))
    summed = summed.assign(neg=-summed["weight"])
    return _first_tokens(summed, ["neg", "norm"], [True, True]).rename(columns={"text": "input_label"})


def _tokens_long(frame: pd.DataFrame, col: str) -> pd.DataFrame:
    """Identity + ``t``: one row per lower-cased token of label column `col`."""
    rows = frame.loc[frame[col].notna(), [*IDENTITY, col]]
    return rows.assign(t=rows[col].str.lower().str.split(SEP)).explode("t")[[*IDENTITY, "t"]]


def combine(outputs: pd.DataFrame, inputs: pd.DataFrame) -> pd.DataFrame:
    """Step 3. Identity + output_label, input_label, agree (None without both) and label."""
    both = outputs.merge(inputs, on=IDENTITY, how="outer")
    has_out, has_in = both["output_label"].notna(), both["input_label"].notna()
    hits = _tokens_long(both, "output_label").merge(_tokens_long(both, "input_label"), on=[*IDENTITY, "t"])
    hits = hits[IDENTITY].drop_duplicates().assign(shared=True)
    both = both.merge(hits, on=IDENTITY, how="left")
    shared = both["shared"].fillna(False).astype(bool)
    agree = shared.astype(object).where(has_out & has_in, None)
    mixed = "in: " + both["input_label"].fillna("") + " -> out: " + both["output_label"].fillna("")
    label = both["output_label"].where(has_out & (shared | ~has_in), both["input_label"].where(~has_out, mixed))
    return both.drop(columns=["shared"]).assign(agree=agree, label=label)


def agreement_by_layer(labels: pd.DataFrame) -> pd.DataFrame:
    """Step 4. Per (kind, layer, source): features, features with both labels, agreeing, share."""
    frame = labels.assign(layer=[layer_of(s) for s in labels["site"]],
                          both=labels["agree"].notna(), agrees=labels["agree"].fillna(False).astype(bool))
    table = frame.groupby(["kind", "layer", "source"], as_index=False, dropna=False).agg(
        features=("index", "size"), with_both=("both", "sum"), agreeing=("agrees", "sum"))
    table["share"] = (table["agreeing"] / table["with_both"]).where(table["with_both"] > 0)
    return table.sort_values(["kind", "layer", "source"]).reset_index(drop=True)
