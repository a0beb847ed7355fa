"""Feature labels in the store: the only code that writes or reads the ``feature_labels`` table.

- `build_labels(store, model)`: the automatic labels of every feature of `model` from its
  ``feature_tokens`` and top ``activation_examples`` (`interp.methods.labels.rule`), with the
  agreement of the two sources per layer.
- `write_labels`: one write of the ``origin='auto'`` rows plus a ``results`` row
  (name `AGREEMENT`, key the model) holding the agreement table.
- `save_edit(store, fid, text, author)`: a user's label, an ``origin='user'`` row with author
  and time; the latest edit of a feature wins over its automatic label (`feature_labels`).
"""

from __future__ import annotations

import json
import time
from typing import NamedTuple

import pandas as pd

from interp.features import FeatureId
from interp.methods.labels import rule
from interp.store.lists import default_author
from interp.store.read.sql import lit, match

AGREEMENT = "label_agreement"
"""`results` name of the per-layer agreement of input and output labels (key: the model)."""
_IDENT = ", ".join(f'"{c}"' for c in rule.IDENTITY)


class LabelBuild(NamedTuple):
    """The automatic labels of one model and how often their two sources agree."""

    labels: pd.DataFrame
    """identity, output_label, input_label, agree (None without both), label."""
    agreement: pd.DataFrame
    """per (kind, source, layer): features, with_both, agreeing, share."""
    seconds: float


def _output_tokens(store, model: str) -> pd.DataFrame:
    dirs = ", ".join(lit(d) for d in rule.OUTPUT_DIRECTIONS)
    return store.sql(f"SELECT {_IDENT}, direction, variant, \"end\", rank, token_str FROM feature_tokens "
                     f"WHERE model = {lit(model)} AND direction IN ({dirs}) AND \"end\" = 'top' "
                     f"AND rank < {4 * rule.N_TOKENS}")


def _top_example_tokens(store, model: str) -> pd.DataFrame:
    # DuckDB lists are 1-based: the token at max_pos is tokens[max_pos + 1]
    return store.sql(f"SELECT {_IDENT}, tokens[max_pos + 1] AS token, max_act FROM activation_examples "
                     f"WHERE model = {lit(model)} AND \"group\" = 'top' AND max_pos IS NOT NULL")


def build_labels(store, model: str) -> LabelBuild:
    """Steps 1-4 of `interp.methods.labels.rule` over the stored tables of `model`."""
    start = time.perf_counter()
    tokens = _output_tokens(store, model)
    examples = _top_example_tokens(store, model)
    if tokens.empty and examples.empty:
        raise ValueError(f"model {model!r} has no decoded tokens or activation examples in this store; "
                         f"run `interp map-neurons --model {model}` (and `interp examples`) first")
    labels = rule.combine(rule.output_labels(tokens), rule.input_labels(examples))
    return LabelBuild(labels, rule.agreement_by_layer(labels), time.perf_counter() - start)


def write_labels(store, model: str, build: LabelBuild) -> str:
    """One run writing the automatic labels and the agreement summary; returns the run id."""
    now = pd.Timestamp.now(tz="UTC")
    rows = build.labels.drop(columns=["agree"]).assign(origin="auto", author="interp label", created_at=now)
    summary = build.agreement.assign(layer=build.agreement["layer"].astype(object))
    payload = {"model": model, "layers": json.loads(summary.to_json(orient="records")),
               "seconds": round(build.seconds, 3)}
    with store.run("interp label", {"model": model, "n_tokens": rule.N_TOKENS}) as run:
        store.write("feature_labels", rows, run_id=run)
        store.write("results", [{"name": AGREEMENT, "key": model, "payload": payload}], run_id=run)
    return run


def save_edit(store, fid: FeatureId, text: str, author: str | None = None) -> dict:
    """Store `text` as the user label of `fid` (author: `author` or $USER); returns the row."""
    text = str(text).strip()
    if not text:
        raise ValueError("a label edit cannot be empty; type a label")
    if len(text) > 200:
        raise ValueError(f"a label has at most 200 characters, got {len(text)}")
    row = {**fid.to_record(), "origin": "user", "label": text, "author": (author or "").strip() or default_author(),
           "created_at": pd.Timestamp.now(tz="UTC")}
    with store.run("interp label edit", {"feature": fid.key}) as run:
        store.write("feature_labels", [row], run_id=run)
    return row


def feature_labels(store, fid: FeatureId) -> dict:
    """``{"label": the label to show, "auto": row or None, "user": row or None}`` of `fid`.

    The label shown is the latest user edit, else the automatic combined label, else the
    features table's own ``label`` (None when there is none)."""
    rows = store.sql(f"SELECT origin, label, output_label, input_label, author, created_at FROM feature_labels x "
                     f"WHERE {match('x', fid)}")
    found = {r["origin"]: r for r in rows.to_dict("records")}
    auto, user = found.get("auto"), found.get("user")
    label = (user or {}).get("label") or (auto or {}).get("label")
    if not label:
        own = store.read("features", where=fid.to_record(), columns=["label"])
        label = own["label"].iloc[0] if len(own) and isinstance(own["label"].iloc[0], str) else None
    return {"label": label, "auto": auto, "user": user}


def label_agreement(store, model: str | None = None) -> pd.DataFrame:
    """The stored agreement tables (`write_labels`), one row per (model, kind, source, layer)."""
    where = {"name": AGREEMENT, **({"key": model} if model else {})}
    found = store.read("results", where=where, columns=["key", "payload"])
    parts = [pd.DataFrame(json.loads(p)["layers"]).assign(model=k) for k, p in zip(found["key"], found["payload"])]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
