"""Map every MLP neuron of whole models through the LM head, into the store (resumable).

    from interp.store import Store
    from interp.jobs.neuron_map import map_model
    map_model(Store(), "smollm2-135m", directions=("down",))          # all layers

The unit of work is one (model, layer): for each requested (direction, variant) the layer's
neurons are decoded by `interp.methods.neurons.decoding.decode_directions` (chunked GEMM and
reductions), and three writes follow, each atomic:

1. ``feature_tokens``: top-k and bottom-k tokens of every neuron (``end`` top/bottom,
   ``rank`` from 0), per direction and variant;
2. ``features``: one row per neuron; ``metrics["neuron_map"]["<direction>/<variant>"]``
   holds max_prob / entropy / z of both ends and the top/bottom token. Of the preferred
   decoding (down/folded if mapped), ``logit_z`` is the larger z-score of the two ends (the
   ranking score, in ``[0, sqrt(d_vocab - 1)]``; see `interp.methods.neurons.decoding`
   step 4) and ``specialisation`` the larger max-prob (in ``[0, 1]``; it saturates).
   Other columns and other metrics keys already in the store are kept;
3. ``results``: a completion marker per (model, layer, direction, variant), written last.

A layer counts as done when its markers exist (with the same top_k); a rerun skips done
layers and redoes the rest. Since the store's replace semantics let a redone layer's rows
supersede a killed attempt's, a job killed at any point (even ``kill -9``) and rerun leaves
the same content as an uninterrupted run.

Memory: the model, plus the working set of `decode_directions` (per thread one
``(min(chunk_size, rows), vocab_block)`` fp32 block of logits, 18 MiB at the defaults, see
`DecodeConfig.vocab_block`), plus the direction matrices of a group of layers decoded
together and their normalised copies (``2 * 4 * group * d_mlp * d_model`` bytes), and the
top/bottom-k results and store rows of at most two groups (the one being written while the
next is decoded; ``O(d_mlp * top_k)`` per layer, a few MiB); never a layer's
``(d_mlp, d_vocab)`` logits (288 MiB for SmolLM2). The bound does not grow with the number
of layers or models; `benchmarks/bench_neuron_map.py` measures it.

Backends: ``local`` (this process) or ``ray`` (a Ray task per layer; workers load the model
by name themselves and write straight into the store; only small summaries come back).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import torch

from interp.methods.neurons.decoding import DIRECTIONS, VARIANTS, DecodeConfig, decode_directions, neuron_directions
from interp.models.registry import store_model_name
from interp.store.tables import constant

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
    chunk_size: int = 1536
    """Neurons per GEMM chunk (with `DecodeConfig.vocab_block`, bounds the working set)."""
    layers: tuple[int, ...] | None = None
    """Layers to map (None: all)."""
    reduction: str = "auto"
    """Block reduction of the decoding: auto, kernel or torch (`DecodeConfig.backend`)."""

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
        DecodeConfig(top_k=self.top_k, chunk_size=self.chunk_size, backend=self.reduction)  # validates all three
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


def vocab_strings(adapter) -> pa.Array:
    """(d_vocab,) string array: the decoded string of every token id."""
    return pa.array(adapter.vocab_strings(), pa.string())


def decode_layer(adapter, layer: int, units: Sequence[tuple[str, str]], config: MapConfig) -> dict:
    """``"direction/variant"`` -> `DecodedDirections` of every neuron of `layer` (the compute half)."""
    return decode_layers(adapter, {layer: units}, config)[layer]


def decode_layers(adapter, todo: dict[int, Sequence[tuple[str, str]]], config: MapConfig) -> dict[int, dict]:
    """`decode_layer` for several layers at once: layer -> unit -> `DecodedDirections`.

    The layers' directions of one unit go through one `decode_directions` call, so its worker
    threads run from the first layer's tiles to the last without waiting for each other at
    every layer's end.
    """
    decoded: dict[int, dict] = {layer: {} for layer in todo}
    for direction, variant in dict.fromkeys(u for units in todo.values() for u in units):
        layers = [layer for layer, units in todo.items() if (direction, variant) in units]
        w = torch.cat([neuron_directions(adapter.weights, layer, direction) for layer in layers])  # (layers d_mlp, d)
        cfg = DecodeConfig(top_k=config.top_k, variant=variant, chunk_size=config.chunk_size, backend=config.reduction)
        result = decode_directions(w, adapter.weights.W_U, adapter.weights.final_norm, cfg)
        n = len(w) // len(layers)
        for i, layer in enumerate(layers):
            decoded[layer][f"{direction}/{variant}"] = result.rows(i * n, (i + 1) * n)
    return decoded


def existing_features(store, model: str, sites: Sequence[str] | None = None) -> dict[str, pd.DataFrame]:
    """Site -> the neuron rows `store` holds for `model` (indexed by neuron), to merge into."""
    where = {"model": model, "kind": "neuron", "source": ""}
    if sites is not None:
        where["site"] = list(sites)
    rows = store.read("features", where=where)
    if rows.empty:
        return {}
    rows = rows.drop(columns=["run_id"])
    return {site: part.set_index("index") for site, part in rows.groupby("site")}


def write_layer(store, model: str, site: str, layer: int, n_neurons: int, decoded: dict, config: MapConfig,
                run_id: str, vocab: pa.Array, existing: pd.DataFrame | None) -> dict:
    """Write one decoded layer (the write half): tokens, then features, then the markers, each atomic.

    `existing`: the site's feature rows already in the store (see `existing_features`), kept
    and merged into.
    """
    units = [tuple(unit.split("/")) for unit in decoded]
    for unit, result in decoded.items():
        direction, variant = unit.split("/")
        store.write("feature_tokens", _token_rows(model, site, direction, variant, result, vocab), run_id=run_id)
    stats = {unit: _unit_stats(result, vocab) for unit, result in decoded.items()}
    store.write("features", _feature_rows(model, site, n_neurons, stats, existing), run_id=run_id)
    markers = [{"name": MARKER, "key": marker_key(model, layer, d, v),
                "payload": {"model": model, "layer": layer, "site": site, "direction": d, "variant": v,
                            "top_k": config.top_k, "n_neurons": n_neurons}} for d, v in units]
    store.write("results", markers, run_id=run_id)
    return {"model": model, "layer": layer, "units": list(decoded)}


def map_layer(store, adapter, model: str, layer: int, units: Sequence[tuple[str, str]], config: MapConfig,
              run_id: str, vocab: pa.Array) -> dict:
    """Decode and write one layer for each (direction, variant) in `units` (the job's unit)."""
    site = adapter.sites(layer).mlp_hidden
    decoded = decode_layer(adapter, layer, units, config)
    existing = existing_features(store, model, [site]).get(site)
    return write_layer(store, model, site, layer, adapter.info.d_mlp, decoded, config, run_id, vocab, existing)


def _token_rows(model: str, site: str, direction: str, variant: str, decoded, vocab: pa.Array) -> pa.Table:
    n, k = decoded.top_ids.shape
    rows = 2 * n * k  # the top end's (neuron, rank) rows in row-major order, then the bottom end's
    ids = torch.cat([decoded.top_ids.reshape(-1), decoded.bottom_ids.reshape(-1)]).numpy()
    const = lambda value: constant(value, rows)  # noqa: E731
    return pa.table({
        "model": const(model), "site": const(site), "kind": const("neuron"),
        "index": np.tile(np.repeat(np.arange(n, dtype=np.int64), k), 2), "source": const(""),
        "direction": const(direction), "variant": const(variant),
        "end": pa.DictionaryArray.from_arrays(pa.array(np.repeat(np.arange(2, dtype=np.int8), n * k)),
                                              pa.array(["top", "bottom"])),
        "rank": np.tile(np.arange(k, dtype=np.int32), 2 * n), "token_id": ids,
        "token_str": vocab.take(ids),
        "logit": torch.cat([decoded.top_logits.reshape(-1), decoded.bottom_logits.reshape(-1)]).double().numpy(),
        "prob": torch.cat([decoded.top_probs.reshape(-1), decoded.bottom_probs.reshape(-1)]).double().numpy(),
    })


def _unit_stats(decoded, vocab: pa.Array) -> dict:
    return {
        "max_prob": decoded.max_prob.double().tolist(), "entropy": decoded.entropy.double().tolist(),
        "max_prob_neg": decoded.max_prob_neg.double().tolist(), "entropy_neg": decoded.entropy_neg.double().tolist(),
        "z": decoded.z.double().tolist(), "z_neg": decoded.z_neg.double().tolist(),
        "top_token": vocab.take(decoded.top_ids[:, 0].numpy()).to_pylist(),
        "bottom_token": vocab.take(decoded.bottom_ids[:, 0].numpy()).to_pylist(),
    }


def _feature_rows(model: str, site: str, n: int, stats: dict[str, dict], existing: pd.DataFrame | None
                  ) -> pd.DataFrame | pa.Table:
    """One features row per neuron, merged with what the store already holds for it (`existing`)."""
    if existing is None or not len(existing):
        return _new_feature_rows(model, site, n, stats)
    old = existing.to_dict("index")
    names = list(next(iter(stats.values())))
    rows = []
    for i in range(n):
        row = {"model": model, "site": site, "kind": "neuron", "index": i, "source": ""}
        prior = old.get(i)
        if prior:
            row.update({c: v for c, v in prior.items() if c not in row})
        metrics = json.loads(row["metrics"]) if isinstance(row.get("metrics"), str) else {}
        mapped = metrics.setdefault(MARKER, {})
        for unit, s in stats.items():
            mapped[unit] = {name: s[name][i] for name in names}
        preferred = next(u for u in (*_PREFERRED, *sorted(mapped)) if u in mapped)
        row["specialisation"] = max(mapped[preferred]["max_prob"], mapped[preferred]["max_prob_neg"])
        row["logit_z"] = max(mapped[preferred].get("z", math.nan), mapped[preferred].get("z_neg", math.nan))
        row["metrics"] = json.dumps(metrics, sort_keys=True)
        rows.append(row)
    return pd.DataFrame(rows)


def _new_feature_rows(model: str, site: str, n: int, stats: dict[str, dict]) -> pa.Table:
    """`_feature_rows` for neurons the store does not hold yet: the same rows, with the metrics
    JSON (``json.dumps(..., sort_keys=True)`` of ``{"neuron_map": {unit: stats}}``) written from
    fragments rather than one dumps call per neuron (a fifth of a layer's write time)."""
    token = json.encoder.encode_basestring_ascii  # what json.dumps does to a str

    def nums(values: list[float]) -> list[str]:  # what json.dumps does to each float
        return list(map(repr, values)) if all(map(math.isfinite, values)) else [json.dumps(x) for x in values]

    columns = {unit: [f'"{unit}": {{"bottom_token": {token(bt)}, "entropy": {e}, "entropy_neg": {en}, '
                      f'"max_prob": {mp}, "max_prob_neg": {mpn}, "top_token": {token(tt)}, "z": {z}, "z_neg": {zn}}}'
                      for bt, e, en, mp, mpn, tt, z, zn in zip(
                          s["bottom_token"], nums(s["entropy"]), nums(s["entropy_neg"]), nums(s["max_prob"]),
                          nums(s["max_prob_neg"]), s["top_token"], nums(s["z"]), nums(s["z_neg"]))]
               for unit, s in sorted(stats.items())}
    metrics = [f'{{"{MARKER}": {{{", ".join(parts)}}}}}' for parts in zip(*columns.values())]
    preferred = stats[next(u for u in (*_PREFERRED, *sorted(stats)) if u in stats)]
    const = lambda value: constant(value, n)  # noqa: E731
    return pa.table({"model": const(model), "site": const(site), "kind": const("neuron"),
                     "index": np.arange(n, dtype=np.int64), "source": const(""),
                     "specialisation": np.maximum(preferred["max_prob"], preferred["max_prob_neg"]),
                     "logit_z": np.maximum(preferred["z"], preferred["z_neg"]),
                     "metrics": pa.array(metrics, pa.string())})


def map_model(store, model, layers: Sequence[int] | None = None, directions: Sequence[str] = ("down",),
              variants: Sequence[str] = ("folded",), top_k: int = 20, chunk_size: int = 1536,
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
