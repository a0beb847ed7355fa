"""Steering runs in the store: one ``results`` row each, loaded back by key.

- Row: name ``steering_run``, key ``<model>/<12 hex>`` (the sha256 of the payload, so the same
  run saved twice is one row), payload = the run's JSON form (`run_payload`): the prompt and
  chat flag, every direction's spec, identity (feature record or vector label), site and
  concept tokens, the sampling settings and seed, the attention modes, the default and
  steered continuations (text, token ids, per-step concept probabilities) and the KL side
  effects.
- `save_run` writes it inside a ``interp steer`` store run (provenance: its settings and seed)
  unless the caller passes an open `run_id`; `load_run` rebuilds the `SteeringRun`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict

import numpy as np

from interp.methods.steering.concepts import ConceptTokens
from interp.methods.steering.directions import DirectionSpec
from interp.methods.steering.generation import Continuation, GenerateConfig
from interp.methods.steering.side_effects import SideEffect
from interp.methods.steering.workbench import DirectionRecord, SteeringConfig, SteeringRun

RUN_NAME = "steering_run"
"""``results`` name of stored steering runs."""


def _continuation(c: Continuation) -> dict:
    return {"text": c.text, "token_ids": list(c.token_ids), "tokens": list(c.tokens),
            "concept_probs": np.asarray(c.concept_probs).tolist()}


def _direction(d: DirectionRecord) -> dict:
    return {"spec": asdict(d.spec), "label": d.label, "kind": d.kind, "site": d.site, "feature": d.feature,
            "concept": {"ids": list(d.concept.ids), "strings": list(d.concept.strings), "source": d.concept.source,
                        "family": list(d.concept.family)}}


def run_payload(run: SteeringRun) -> dict:
    """The JSON form of `run` (see the module docstring)."""
    config = asdict(run.config)
    return {"model": run.model, "prompt": run.prompt, "directions": [_direction(d) for d in run.directions],
            "generate": asdict(run.generate), "config": {k: list(v) if isinstance(v, tuple) else v
                                                         for k, v in config.items()},
            "default": _continuation(run.default),
            "steered": {mode: _continuation(c) for mode, c in run.steered.items()},
            "side_effects": {mode: {"prompts": list(e.prompts), "per_prompt": list(e.per_prompt)}
                             for mode, e in run.side_effects.items()}}


def _load_continuation(p: dict) -> Continuation:
    probs = np.asarray(p["concept_probs"], dtype=float)
    return Continuation(p["text"], tuple(int(t) for t in p["token_ids"]), tuple(p.get("tokens", ())),
                        probs.reshape(len(probs), -1) if probs.size else probs.reshape(len(probs), 0))


def run_from_payload(payload: dict) -> SteeringRun:
    """Inverse of `run_payload`."""
    directions = tuple(
        DirectionRecord(DirectionSpec(**d["spec"]), d["label"], d["kind"], d["site"],
                        ConceptTokens(tuple(d["concept"]["ids"]), tuple(d["concept"]["strings"]), d["concept"]["source"],
                                      tuple(d["concept"].get("family", ()))),
                        d.get("feature"))
        for d in payload["directions"])
    effects = {mode: SideEffect(mode, tuple(e["prompts"]), tuple(e["per_prompt"]))
               for mode, e in payload.get("side_effects", {}).items()}
    return SteeringRun(payload["model"], payload["prompt"], directions, GenerateConfig(**payload["generate"]),
                       SteeringConfig(**payload["config"]), _load_continuation(payload["default"]),
                       {mode: _load_continuation(c) for mode, c in payload["steered"].items()}, effects)


def run_key(run: SteeringRun) -> str:
    """``<model>/<12 hex of the payload's sha256>``."""
    digest = hashlib.sha256(json.dumps(run_payload(run), sort_keys=True).encode()).hexdigest()[:12]
    return f"{run.model}/{digest}"


def save_run(store, run: SteeringRun, run_id: str | None = None) -> str:
    """Write `run` as a ``steering_run`` results row; returns its key."""
    key, payload = run_key(run), run_payload(run)
    row = [{"name": RUN_NAME, "key": key, "payload": payload}]
    if run_id is not None:
        store.write("results", row, run_id=run_id)
        return key
    settings = {"model": run.model, "prompt": run.prompt, "directions": [d.spec.text() for d in run.directions],
                "generate": payload["generate"], "config": payload["config"]}
    with store.run("interp steer", settings, seed=run.generate.seed) as opened:
        store.write("results", row, run_id=opened)
    return key


def load_run(store, key: str) -> SteeringRun:
    """The steering run stored under `key`; KeyError naming the stored keys otherwise."""
    from interp.store import read

    rows = store.read("results", where={"name": RUN_NAME, "key": str(key)})
    if rows.empty:
        known = store.read("results", where={"name": RUN_NAME}, columns=["key"])["key"].tolist()
        shown = ", ".join(known[:5]) + (" ..." if len(known) > 5 else "")
        raise KeyError(f"no steering run {key!r} in this store; stored: {shown or 'none'}")
    return run_from_payload(read.parse_json(rows.iloc[0]["payload"]))
