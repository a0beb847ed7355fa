"""Map every MLP neuron of whole models through the LM head, into the store (resumable).

    from interp.store import Store
    from interp.jobs.neuron_map import map_model
    map_model(Store(), "smollm2-135m", directions=("down",))          # all layers

The unit of work is one (model, layer): for each requested (direction, variant) the layer's
neurons are decoded by `interp.methods.neuron_decoding.decode_directions` (chunked GEMM and
reductions), and three writes follow, each atomic:

1. ``feature_tokens``: top-k and bottom-k tokens of every neuron (``end`` top/bottom,
   ``rank`` from 0), per direction and variant;
2. ``features``: one row per neuron; ``metrics["neuron_map"]["<direction>/<variant>"]``
   holds max_prob / entropy of both ends and the top/bottom token, ``specialisation`` is
   the larger max-prob of the two ends of the preferred decoding (down/folded if mapped).
   Other columns and other metrics keys already in the store are kept;
3. ``results``: a completion marker per (model, layer, direction, variant), written last.

A layer counts as done when its markers exist (with the same top_k); a rerun skips done
layers and redoes the rest. Since the store's replace semantics let a redone layer's rows
supersede a killed attempt's, a job killed at any point (even ``kill -9``) and rerun leaves
the same content as an uninterrupted run.

Memory: the model, plus the working set of `decode_directions` (per thread three
``(chunk_size, vocab_block)`` fp32 buffers and the top/bottom-k candidates, ~36 MB at the
defaults: see `DecodeConfig.vocab_block`), plus one layer's direction matrix (``4 * d_mlp * d_model`` bytes) and its
top/bottom-k results and store rows (``O(d_mlp * top_k)``, a few MiB); never a layer's
``(d_mlp, d_vocab)`` logits (288 MiB for SmolLM2).

Backends: ``local`` (this process) or ``ray`` (a Ray task per layer; workers load the model
by name themselves and write straight into the store; only small summaries come back).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from interp.methods.neuron_decoding import DIRECTIONS, VARIANTS, DecodeConfig, decode_directions, neuron_directions
from interp.models.registry import store_model_name

MARKER = "neuron_map"
"""`results` table name of the per-layer completion markers."""
BACKENDS = ("local", "ray")
_PREFERRED = ("down/folded", "up/folded", "gate/folded", "down/raw", "up/raw", "gate/raw")


@dataclass(frozen=True)
class MapConfig:
    """What a neuron-mapping job computes."""

    directions: tuple[str, ...] = ("down",)
    """Neuron directions to decode: any of up, gate (gated MLPs only), down."""
    variants: tuple[str, ...] = ("folded",)
    """Decodings: folded (final norm with gain; the default) and/or raw."""
    top_k: int = 20
    """Tokens kept at each end per neuron."""
    chunk_size: int = 256
    """Neurons per GEMM chunk (bounds the working set)."""
    layers: tuple[int, ...] | None = None
    """Layers to map (None: all)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "directions", tuple(self.directions))
        object.__setattr__(self, "variants", tuple(self.variants))
        for d in self.directions:
            if d not in DIRECTIONS:
                raise ValueError(f"unknown neuron direction {d!r}; valid: {', '.join(DIRECTIONS)}")
        for v in self.variants:
            if v not in VARIANTS:
                raise ValueError(f"unknown decoding variant {v!r}; valid: {', '.join(VARIANTS)}")
        if not self.directions or not self.variants:
            raise ValueError("directions and variants must each name at least one value")
        DecodeConfig(top_k=self.top_k, chunk_size=self.chunk_size)  # validates both
        if self.layers is not None:
            object.__setattr__(self, "layers", tuple(int(layer) for layer in self.layers))

    def units(self) -> list[tuple[str, str]]:
        return [(d, v) for d in self.directions for v in self.variants]


@dataclass
class MapSummary:
    """What a job did."""

    run_id: str
    mapped: dict[str, list[int]] = field(default_factory=dict)
    """Model -> layers computed by this job."""
    skipped: dict[str, list[int]] = field(default_factory=dict)
    """Model -> layers already complete in the store."""
    seconds: float = 0.0


def parse_layers(text: str | None, n_layers: int | None = None) -> tuple[int, ...] | None:
    """``"0,5-7"`` -> (0, 5, 6, 7); None or "all" -> None. Checked against `n_layers` if given."""
    if text is None or str(text).strip().lower() in ("", "all"):
        return None
    layers: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        try:
            lo, _, hi = part.partition("-")
            layers += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
        except ValueError:
            raise ValueError(f"bad layer list {text!r}: use comma-separated layers and ranges like 0,5-7") from None
    if n_layers is not None:
        bad = [layer for layer in layers if not 0 <= layer < n_layers]
        if bad:
            raise ValueError(f"layers {bad} are out of range: valid layers are 0..{n_layers - 1}")
    return tuple(sorted(set(layers)))


def marker_key(model: str, layer: int, direction: str, variant: str) -> str:
    return f"{model}/L{layer}/{direction}/{variant}"


def pending_layers(store, model: str, layers: Sequence[int], config: MapConfig
                   ) -> dict[int, list[tuple[str, str]]]:
    """Layer -> the (direction, variant) units still to do (markers missing or other top_k)."""
    wanted = {marker_key(model, layer, d, v): (layer, d, v) for layer in layers for d, v in config.units()}
    found = store.read("results", where={"name": MARKER, "key": list(wanted)}, columns=["key", "payload"])
    done = {k for k, p in zip(found["key"], found["payload"]) if json.loads(p).get("top_k") == config.top_k}
    todo: dict[int, list[tuple[str, str]]] = {}
    for key, (layer, d, v) in wanted.items():
        if key not in done:
            todo.setdefault(layer, []).append((d, v))
    return todo


def vocab_strings(adapter) -> np.ndarray:
    """(d_vocab,) object array: the decoded string of every token id."""
    strings = adapter.tokenizer.batch_decode([[i] for i in range(adapter.info.d_vocab)])
    return np.array(strings, dtype=object)


def map_layer(store, adapter, model: str, layer: int, units: Sequence[tuple[str, str]], config: MapConfig,
              run_id: str, vocab: np.ndarray) -> dict:
    """Decode and write one layer for each (direction, variant) in `units` (the job's unit)."""
    site = adapter.sites(layer).mlp_hidden
    weights = adapter.weights
    stats: dict[str, dict] = {}
    for direction, variant in units:
        w = neuron_directions(weights, layer, direction)
        cfg = DecodeConfig(top_k=config.top_k, variant=variant, chunk_size=config.chunk_size)
        decoded = decode_directions(w, weights.W_U, weights.final_norm, cfg)
        store.write("feature_tokens", _token_rows(model, site, direction, variant, decoded, vocab), run_id=run_id)
        stats[f"{direction}/{variant}"] = _unit_stats(decoded, vocab)
    store.write("features", _feature_rows(store, model, site, adapter.info.d_mlp, stats), run_id=run_id)
    markers = [{"name": MARKER, "key": marker_key(model, layer, d, v),
                "payload": {"model": model, "layer": layer, "site": site, "direction": d, "variant": v,
                            "top_k": config.top_k, "n_neurons": adapter.info.d_mlp}} for d, v in units]
    store.write("results", markers, run_id=run_id)
    return {"model": model, "layer": layer, "units": [f"{d}/{v}" for d, v in units]}


def _token_rows(model: str, site: str, direction: str, variant: str, decoded, vocab: np.ndarray) -> pd.DataFrame:
    n, k = decoded.top_ids.shape
    index = np.repeat(np.arange(n), k)  # row-major (neuron, rank) flattening of the (n, k) results
    rank = np.tile(np.arange(k, dtype=np.int32), n)
    frames = []
    for end, ids, logits, probs in (("top", decoded.top_ids, decoded.top_logits, decoded.top_probs),
                                    ("bottom", decoded.bottom_ids, decoded.bottom_logits, decoded.bottom_probs)):
        flat = ids.reshape(-1).numpy()
        frames.append(pd.DataFrame({
            "model": model, "site": site, "kind": "neuron", "index": index, "source": "",
            "direction": direction, "variant": variant, "end": end, "rank": rank, "token_id": flat,
            "token_str": vocab[flat], "logit": logits.reshape(-1).double().numpy(),
            "prob": probs.reshape(-1).double().numpy(),
        }))
    return pd.concat(frames, ignore_index=True)


def _unit_stats(decoded, vocab: np.ndarray) -> dict:
    return {
        "max_prob": decoded.max_prob.double().numpy(), "entropy": decoded.entropy.double().numpy(),
        "max_prob_neg": decoded.max_prob_neg.double().numpy(), "entropy_neg": decoded.entropy_neg.double().numpy(),
        "top_token": vocab[decoded.top_ids[:, 0].numpy()], "bottom_token": vocab[decoded.bottom_ids[:, 0].numpy()],
    }


def _feature_rows(store, model: str, site: str, n: int, stats: dict[str, dict]) -> pd.DataFrame:
    """One features row per neuron, merged with what the store already holds for it."""
    existing = store.read("features", where={"model": model, "kind": "neuron", "site": site, "source": ""})
    existing = existing.drop(columns=["run_id"]).set_index("index") if len(existing) else None
    rows = []
    for i in range(n):
        row = {"model": model, "site": site, "kind": "neuron", "index": i, "source": ""}
        if existing is not None and i in existing.index:
            row.update({c: v for c, v in existing.loc[i].items() if c not in row})
        metrics = json.loads(row["metrics"]) if isinstance(row.get("metrics"), str) else {}
        mapped = metrics.setdefault(MARKER, {})
        for unit, s in stats.items():
            mapped[unit] = {name: (float(col[i]) if name.startswith(("max", "entropy")) else str(col[i]))
                            for name, col in s.items()}
        preferred = next(u for u in (*_PREFERRED, *sorted(mapped)) if u in mapped)
        row["specialisation"] = max(mapped[preferred]["max_prob"], mapped[preferred]["max_prob_neg"])
        row["metrics"] = metrics
        rows.append(row)
    return pd.DataFrame(rows)


def map_model(store, model, layers: Sequence[int] | None = None, directions: Sequence[str] = ("down",),
              variants: Sequence[str] = ("folded",), top_k: int = 20, chunk_size: int = 256,
              backend: str = "local", ray_address: str | None = None, progress: bool = True,
              force: bool = False) -> MapSummary:
    """Map one model's neurons into `store` (a `Store`); see the module docstring.

    `model`: a name (alias, hub id or local folder) or an already loaded `ModelAdapter`
    (local backend only: Ray workers load models by name).
    """
    config = MapConfig(directions=tuple(directions), variants=tuple(variants), top_k=top_k,
                       chunk_size=chunk_size, layers=None if layers is None else tuple(layers))
    return map_models(store, [model], config, backend=backend, ray_address=ray_address,
                      progress=progress, force=force)


def map_models(store, models: Sequence, config: MapConfig = MapConfig(), *, backend: str = "local",
               ray_address: str | None = None, progress: bool = True, force: bool = False) -> MapSummary:
    """Map several models in one job (one run in the store); resumable (see the module docstring)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
    if not models:
        raise ValueError("map_models needs at least one model name")
    start = time.perf_counter()
    names = [m if isinstance(m, str) else m.name for m in models]
    if backend == "ray" and not all(isinstance(m, str) for m in models):
        raise ValueError("the ray backend needs model names (workers load the models themselves), not adapters")
    run_id = store.start_run("interp map-neurons", {"models": names, "backend": backend,
                                                    **{k: getattr(config, k) for k in config.__dataclass_fields__}})
    summary = MapSummary(run_id)
    try:
        if backend == "local":
            from interp.jobs._local import run_local

            run_local(store, models, config, run_id, summary, progress, force)
        else:
            from interp.jobs._ray import run_ray

            run_ray(store, models, config, run_id, summary, progress, force, ray_address)
    except BaseException:
        store.finish_run(run_id, "failed")
        raise
    store.finish_run(run_id, "done")
    summary.seconds = time.perf_counter() - start
    return summary


def plan(store, adapter_info, model: str, config: MapConfig, force: bool) -> dict[int, list[tuple[str, str]]]:
    """Layer -> units to compute for one model (all requested ones with `force`)."""
    layers = config.layers if config.layers is not None else tuple(range(adapter_info.n_layers))
    bad = [layer for layer in layers if not 0 <= layer < adapter_info.n_layers]
    if bad:
        raise ValueError(f"layers {bad} are out of range for {model}: valid 0..{adapter_info.n_layers - 1}")
    if "gate" in config.directions and not adapter_info.gated_mlp:
        raise ValueError(f"direction 'gate' needs a gated MLP; {model} has none: use up and/or down")
    if force:
        return {layer: config.units() for layer in layers}
    return pending_layers(store, model, layers, config)


def pipeline_step(store, adapter, budget=None) -> str:
    """The ``make run`` step: every layer's down direction (folded, top/bottom 20) of `adapter`.

    `budget` is accepted for the pipeline's step signature; the map is cheap (GEMM-bound,
    ~1-2 min for SmolLM2 on 2 cores) so it is always complete.
    """
    summary = map_model(store, adapter, directions=("down",), variants=("folded",), top_k=20)
    model = store_model_name(adapter.name)
    return (f"decoded {len(summary.mapped.get(model, []))} layers x {adapter.info.d_mlp} neurons (down, folded, "
            f"top/bottom 20; {len(summary.skipped.get(model, []))} layers already stored) in {summary.seconds:.0f} s")
