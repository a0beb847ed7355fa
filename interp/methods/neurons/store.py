"""Neuron-family results in the store: the only code that writes or reads them.

Neuron map (one decoded layer; see `interp.jobs.neuron_map`), written in this order, each
write atomic:

1. ``feature_tokens``: top-k and bottom-k tokens of every neuron (``end`` top/bottom,
   ``rank`` from 0), per direction and variant;
2. ``features``: one row per neuron; ``metrics["neuron_map"]["<direction>/<variant>"]``
   holds max_prob / entropy / z of both ends and the top/bottom token. Of the preferred
   decoding (down/folded if mapped), ``logit_z`` is the larger z-score of the two ends (the
   ranking score, in ``[0, sqrt(d_vocab - 1)]``; see `interp.methods.neurons.decoding`
   step 4) and ``specialisation`` the larger max-prob (in ``[0, 1]``; it saturates).
   Other columns and other metrics keys already in the store are kept;
3. ``results``: a completion marker per (model, layer, direction, variant) (name
   ``neuron_map``, key `marker_key`), written last.

Clamping checks: one ``results`` row per (neuron, prompt) (name ``clamp``), written and read
as a `ClampRecord` (key ``<model>/L<layer>/N<index>/<prompt hash>``), and one
``clamp_report`` row per report (key ``<model>/n<n>/<rank_by>``).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import torch

from interp.methods.neurons.clamping import ClampResult
from interp.sites import layer_of
from interp.store.tables import constant

MARKER = "neuron_map"
"""`results` name of the per-layer completion markers (also the metrics key of a neuron's row)."""
CLAMP = "clamp"
"""`results` name of clamping dose-response sweeps (`ClampRecord`)."""
CLAMP_REPORT = "clamp_report"
"""`results` name of clamping reports over many neurons."""
_PREFERRED = ("down/folded", "up/folded", "gate/folded", "down/raw", "up/raw", "gate/raw")


# ----------------------------------------------------------------------------- neuron map
def marker_key(model: str, layer: int, direction: str, variant: str) -> str:
    return f"{model}/L{layer}/{direction}/{variant}"


def completed_units(store, model: str, layers: Sequence[int], units: Sequence[tuple[str, str]], top_k: int
                    ) -> set[tuple[int, str, str]]:
    """The (layer, direction, variant) of `layers` x `units` whose marker exists with this `top_k`."""
    wanted = {marker_key(model, layer, d, v): (layer, d, v) for layer in layers for d, v in units}
    found = store.read("results", where={"name": MARKER, "key": list(wanted)}, columns=["key", "payload"])
    return {wanted[k] for k, p in zip(found["key"], found["payload"]) if json.loads(p).get("top_k") == top_k}


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


def write_layer(store, model: str, site: str, layer: int, n_neurons: int, decoded: dict, top_k: int,
                run_id: str, vocab: pa.Array, existing: pd.DataFrame | None) -> dict:
    """Write one decoded layer: tokens, then features, then the markers, each atomic.

    `decoded`: ``"direction/variant"`` -> `DecodedDirections` of the layer's neurons.
    `existing`: the site's feature rows already in the store (see `existing_features`), kept
    and merged into.
    """
    units = [tuple(unit.split("/")) for unit in decoded]
    for unit, result in decoded.items():
        direction, variant = unit.split("/")
        store.write("feature_tokens", token_rows(model, site, direction, variant, result, vocab), run_id=run_id)
    stats = {unit: _unit_stats(result, vocab) for unit, result in decoded.items()}
    store.write("features", _feature_rows(model, site, n_neurons, stats, existing), run_id=run_id)
    markers = [{"name": MARKER, "key": marker_key(model, layer, d, v),
                "payload": {"model": model, "layer": layer, "site": site, "direction": d, "variant": v,
                            "top_k": top_k, "n_neurons": n_neurons}} for d, v in units]
    store.write("results", markers, run_id=run_id)
    return {"model": model, "layer": layer, "units": list(decoded)}


def token_rows(model: str, site: str, direction: str, variant: str, decoded, vocab: pa.Array, *,
               kind: str = "neuron", source: str = "", indices: np.ndarray | None = None) -> pa.Table:
    """`feature_tokens` rows of n decoded directions (`DecodedDirections`), the i-th being feature
    ``indices[i]`` (default ``i``) of (`model`, `site`, `kind`, `source`)."""
    n, k = decoded.top_ids.shape
    rows = 2 * n * k  # the top end's (feature, rank) rows in row-major order, then the bottom end's
    ids = torch.cat([decoded.top_ids.reshape(-1), decoded.bottom_ids.reshape(-1)]).numpy()
    index = np.arange(n, dtype=np.int64) if indices is None else np.asarray(indices, dtype=np.int64)
    const = lambda value: constant(value, rows)  # noqa: E731
    return pa.table({
        "model": const(model), "site": const(site), "kind": const(kind),
        "index": np.tile(np.repeat(index, k), 2), "source": const(source),
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


def top_token_id(store, model: str, site: str, index: int, direction: str = "down", variant: str = "folded"
                 ) -> int | None:
    """The stored rank-0 top token of one mapped neuron, or None when it is not mapped."""
    rows = store.read("feature_tokens", where={"model": model, "site": site, "kind": "neuron", "index": index,
                                               "source": "", "direction": direction, "variant": variant})
    top = rows[(rows["end"] == "top") & (rows["rank"] == 0)] if len(rows) else rows
    return int(top["token_id"].iloc[0]) if len(top) else None


RANKINGS = ("z", "prob")
"""How `most_specialised` orders neurons: the top end's logit z-score, or its max probability."""


def most_specialised(store, model: str, n: int, direction: str = "down", variant: str = "folded",
                     layers=None, rank_by: str = "z") -> list[tuple[int, int, int]]:
    """The `n` most specialised mapped neurons: (layer, index, top token id).

    ``rank_by="z"`` orders by the top end's z-score, ties broken by the top token's
    probability; ``"prob"`` by that probability alone. Remaining ties go to the lower layer
    and index.
    """
    if rank_by not in RANKINGS:
        raise ValueError(f"unknown ranking {rank_by!r}; valid: {', '.join(RANKINGS)}")
    rows = store.read("feature_tokens", where={"model": model, "kind": "neuron", "direction": direction,
                                               "variant": variant, "end": "top", "rank": 0},
                      columns=["site", "index", "token_id", "prob"])
    if rows.empty:
        raise ValueError(f"no {direction}/{variant} neuron decodings of {model!r} in the store; "
                         f"run `interp map-neurons --model {model}` first")
    rows["layer"] = [layer_of(site) for site in rows["site"]]
    if layers is not None:
        rows = rows[rows["layer"].isin(list(layers))]
    if rank_by == "prob":
        keys = ["prob", "layer", "index"]
    else:
        rows = rows.merge(_top_z(store, model, f"{direction}/{variant}"), on=["site", "index"], how="left")
        if rows["z"].isna().all():
            raise ValueError(f"the stored {direction}/{variant} decodings of {model!r} have no z-scores (mapped "
                             f"before they existed); rerun `interp map-neurons --model {model} --force`, "
                             "or rank by prob")
        keys = ["z", "prob", "layer", "index"]
    top = rows.sort_values(keys, ascending=[False] * (len(keys) - 2) + [True, True], na_position="last").head(n)
    return [(int(r.layer), int(r.index), int(r.token_id)) for r in top.itertuples()]


def _top_z(store, model: str, unit: str) -> pd.DataFrame:
    """site, index, z: the top end's z-score of each mapped neuron (NaN where not stored)."""
    feats = store.read("features", where={"model": model, "kind": "neuron", "source": ""},
                       columns=["site", "index", "metrics"])
    z = [json.loads(m).get(MARKER, {}).get(unit, {}).get("z") if isinstance(m, str) else None
         for m in feats["metrics"]]
    return pd.DataFrame({"site": feats["site"], "index": feats["index"], "z": pd.array(z, dtype="Float64")})


# ----------------------------------------------------------------------------- clamping
def prompt_hash(prompt: str) -> str:
    return hashlib.sha1(prompt.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class ClampRecord:
    """One stored clamping sweep: a `ClampResult` of a model's neuron, with its target's text."""

    model: str
    """Store name of the model (`ModelAdapter.store_name`)."""
    result: ClampResult
    target: str | None = None
    """The decoded target token."""

    @property
    def key(self) -> str:
        """``<model>/L<layer>/N<index>/<prompt hash>``: one row per neuron and prompt."""
        return f"{self.neuron_prefix(self.model, self.result.layer, self.result.index)}{prompt_hash(self.result.prompt)}"

    @staticmethod
    def neuron_prefix(model: str, layer: int, index: int) -> str:
        """The key prefix shared by every stored sweep of one neuron."""
        return f"{model}/L{int(layer)}/N{int(index)}/"

    def to_payload(self) -> dict:
        """The JSON payload stored in ``results`` (the result's fields, model and target text)."""
        return {"model": self.model, "target": self.target, **self.result.to_payload()}

    @classmethod
    def from_payload(cls, payload: dict | str) -> "ClampRecord":
        """The record back from a stored payload (a dict or its JSON text)."""
        p = json.loads(payload) if isinstance(payload, str) else payload
        try:
            return cls._parse(p)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"a stored clamp sweep lacks or mangles field {exc}; "
                             f"rerun `interp clamp` for that neuron") from None

    @classmethod
    def _parse(cls, p: dict) -> "ClampRecord":
        values = np.asarray(p["values"], dtype=float)
        result = ClampResult(
            layer=int(p["layer"]), index=int(p["index"]), target_id=int(p["target_id"]), prompt=p["prompt"],
            values=values, baseline_prob=float(p["baseline_prob"]),
            target_probs=np.asarray(p["target_probs"], dtype=float),
            control_indices=np.asarray(p["control_indices"], dtype=int),
            control_probs=np.asarray(p["control_probs"], dtype=float).reshape(-1, len(values)),
            kl=np.asarray([np.nan if k is None else k for k in p["kl"]], dtype=float),
            generation=p.get("generation"), baseline_generation=p.get("baseline_generation"))
        return cls(p["model"], result, p.get("target"))


def write_clamp(store, record: ClampRecord, run_id: str) -> str:
    """Store one sweep (latest per neuron and prompt wins); returns its key."""
    store.write("results", [{"name": CLAMP, "key": record.key, "payload": record.to_payload()}], run_id=run_id)
    return record.key


def clamp_payloads(store, model: str, layer: int, index: int) -> list[dict]:
    """The stored payloads of one neuron's sweeps (one per prompt, in key order), unparsed:
    `ClampRecord.from_payload` turns each into a record (a reader can skip a malformed one)."""
    prefix = ClampRecord.neuron_prefix(model, layer, index)
    rows = store.read("results", where={"name": CLAMP}, columns=["key", "payload"])
    return [json.loads(p) for k, p in sorted(zip(rows["key"], rows["payload"])) if k.startswith(prefix)]


def clamp_sweeps(store, feature) -> list[dict]:
    """The clamp payloads of a neuron `FeatureId` (empty for any other kind): the app's read."""
    if feature.kind.value != "neuron":
        return []
    return clamp_payloads(store, feature.model, layer_of(feature.site), feature.index)


def read_clamps(store, model: str, layer: int, index: int) -> list[ClampRecord]:
    """Every stored sweep of one neuron (one per prompt), in key order."""
    return [ClampRecord.from_payload(p) for p in clamp_payloads(store, model, layer, index)]


def write_clamp_report(store, model: str, n: int, prompts: Sequence[str], values: Sequence[float], report,
                       run_id: str, rank_by: str = "z") -> str:
    """Store a `ClampReport` over the `n` most specialised neurons (by `rank_by`); returns its key."""
    table = report.table()
    key = f"{model}/n{n}/{rank_by}"
    store.write("results", [{"name": CLAMP_REPORT, "key": key, "payload": {
        "model": model, "n": len(table), "rank_by": rank_by, "prompts": list(prompts), "values": list(values),
        "fraction_beats_mean": report.fraction_beats_mean, "fraction_beats_all": report.fraction_beats_all,
        "neurons": table.to_dict("records")}}], run_id=run_id)
    return key
