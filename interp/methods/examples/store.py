"""Corpus examples in the store: the only code that writes them (the app reads them through
`interp.store.read.examples` and `interp.store.read.feature`).

One unit (every feature of one site: a layer's MLP neurons, or one dictionary's latents)
is written in this order, each write atomic:

1. ``activation_examples``: per feature, group ``top`` (ranks 0..) and ``quantile_<q>``,
   each row a context of up to ``left + 1 + right`` tokens with per-token activations
   (positions the job dropped from the front of a window show 0), ``max_act`` the
   example's activation and ``max_pos`` its place in the context - the rows the dictionary
   dashboards write (`interp.dictionaries.dashboards`), so the feature page shows both.
2. ``features``: ``density`` and ``max_act`` of every feature from the corpus sample; every
   other column of a row already in the store is kept (a neuron's decodings, a latent's
   metrics).
3. the tensor bundle `interp.store.read.examples.bundle_name`: ``counts`` (n, n_bins) and
   ``edges`` (n, n_bins + 1) of the histogram, ``min_act`` / ``mean_act`` / ``density``
   (n,), and ``directions`` (n, d_model): each feature's write direction (a neuron's
   ``W_out`` row, a latent's decoder row) for nearest-feature search.
4. ``results``: the completion marker (name ``examples``, key `marker_key`) with the
   settings, written last; a unit whose marker holds the same settings is done.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import torch

from interp.methods.examples.stats import ExampleConfig, FeatureStats, Picks
from interp.store.read.examples import MARKER, bundle_name, marker_key
from interp.store.tables import constant


def done_units(store, keys: list[str], settings: dict) -> set[str]:
    """The marker keys among `keys` whose stored settings equal `settings`."""
    if not keys:
        return set()
    found = store.read("results", where={"name": MARKER, "key": keys}, columns=["key", "payload"])
    return {k for k, p in zip(found["key"], found["payload"]) if json.loads(p).get("settings") == settings}


def _contexts(tokens: np.ndarray, acts: np.ndarray, feature: np.ndarray, window: np.ndarray,
              position: np.ndarray, config: ExampleConfig, offset: int):
    """Context token ids and activations of picks (feature, window, position), as flat values
    plus list offsets; `acts` (n_windows, pos - offset, n_features), positions count from 0."""
    ctx = tokens.shape[1]
    lo = np.maximum(position - config.left, 0)
    hi = np.minimum(position + config.right + 1, ctx)
    grid = lo[:, None] + np.arange(config.left + config.right + 1)[None]  # (picks, width)
    inside = grid < hi[:, None]
    grid = np.minimum(grid, ctx - 1)
    ids = tokens[window[:, None], grid]
    kept = grid - offset
    values = np.where(kept >= 0, acts[window[:, None], np.maximum(kept, 0), feature[:, None]], 0.0)
    offsets = np.concatenate([[0], np.cumsum(inside.sum(1))]).astype(np.int32)
    return ids[inside], values[inside].astype(np.float32), offsets, position - lo


def _valid_picks(picks: Picks) -> list[np.ndarray]:
    """rank, feature, window, position, value of the valid picks (fields (ranks, n_features))."""
    values, windows, positions, valid = (t.reshape(-1, t.shape[-1]).numpy() for t in picks)
    rank, feature = np.nonzero(valid)  # row-major: rank, then feature
    return [rank, feature, windows[rank, feature], positions[rank, feature], values[rank, feature]]


def example_rows(model: str, site: str, kind: str, source: str, tokens: torch.Tensor, acts: torch.Tensor,
                 stats: FeatureStats, config: ExampleConfig, offset: int, vocab: pa.Array) -> pa.Table:
    """Step 1's rows for one unit, built column-wise (no Python loop over features or rows)."""
    groups = ["top"] + [f"quantile_{q}" for q in range(stats.quantiles.values.shape[0])]
    parts = [_valid_picks(stats.top)] + [_valid_picks(Picks(*(t[q] for t in stats.quantiles)))
                                         for q in range(len(groups) - 1)]
    group_of = np.concatenate([np.full(len(p[0]), g, np.int32) for g, p in enumerate(parts)])
    rank, feature, window, position, value = (np.concatenate([p[i] for p in parts]) for i in range(5))
    order = np.lexsort((rank, group_of, feature))  # by feature, then group, then rank
    rank, feature, window, position, value, group_of = (a[order] for a in (rank, feature, window, position,
                                                                           value, group_of))
    ids, act, offsets, centre = _contexts(tokens.numpy(), acts.numpy(), feature, window, position, config, offset)
    n = len(rank)
    const = lambda v: constant(v, n)  # noqa: E731
    list_of = lambda values: pa.ListArray.from_arrays(pa.array(offsets), values)  # noqa: E731
    return pa.table({
        "model": const(model), "site": const(site), "kind": const(kind), "index": feature.astype(np.int64),
        "source": const(source),
        "group": pa.DictionaryArray.from_arrays(pa.array(group_of), pa.array(groups)),
        "example_rank": rank.astype(np.int32),
        "tokens": list_of(vocab.take(pa.array(ids))), "token_ids": list_of(pa.array(ids.astype(np.int64))),
        "acts": list_of(pa.array(act)), "max_act": value.astype(np.float64), "max_pos": centre.astype(np.int32),
    })


def stored_features(store, model: str) -> dict[tuple[str, str, str], pd.DataFrame]:
    """(site, kind, source) -> the feature rows `store` holds for `model`, read once for a whole job."""
    rows = store.read("features", where={"model": model})
    if rows.empty:
        return {}
    rows = rows.drop(columns=["run_id", "density", "max_act"], errors="ignore")
    return {key: part for key, part in rows.groupby(["site", "kind", "source"])}


def feature_rows(model: str, site: str, kind: str, source: str, stats: FeatureStats,
                 stored: pd.DataFrame | None, kept: np.ndarray | None = None) -> pd.DataFrame:
    """Step 2: the unit's feature rows with corpus density and max_act, merged into `stored` (the
    unit's rows already in the store, from `stored_features`). `kept`: the feature indices that
    exist (None: every index of the unit; an ObsProp site may hold only some)."""
    index = np.arange(len(stats.density), dtype=np.int64) if kept is None else np.asarray(kept, dtype=np.int64)
    new = pd.DataFrame({"model": model, "site": site, "kind": kind, "index": index,
                        "source": source, "density": stats.density[torch.as_tensor(index)].double().numpy(),
                        "max_act": stats.max_act[torch.as_tensor(index)].double().numpy()})
    if stored is None or stored.empty:
        return new
    stored = stored.drop(columns=["run_id", "density", "max_act"], errors="ignore")
    return new.merge(stored, on=["model", "site", "kind", "index", "source"], how="left")


def write_unit(store, run_id: str, unit: dict, tokens: torch.Tensor, acts: torch.Tensor, stats: FeatureStats,
               config: ExampleConfig, offset: int, vocab: pa.Array, directions: torch.Tensor | None,
               settings: dict, stored: pd.DataFrame | None = None, kept: np.ndarray | None = None) -> int:
    """Steps 1-4 for one unit (``unit``: model, site, kind, source); returns the example rows written.

    `stored`: the unit's feature rows already in the store (`stored_features`), kept and merged into.
    `kept`: the feature indices that exist (`feature_rows`).
    """
    model, site, kind, source = unit["model"], unit["site"], unit["kind"], unit["source"]
    rows = example_rows(model, site, kind, source, tokens, acts, stats, config, offset, vocab)
    if rows.num_rows:
        store.write("activation_examples", rows, run_id=run_id)
    store.write("features", feature_rows(model, site, kind, source, stats, stored, kept), run_id=run_id)
    bundle = {"counts": stats.histogram.counts, "edges": stats.histogram.edges, "density": stats.density,
              "min_act": stats.min_act, "max_act": stats.max_act, "mean_act": stats.mean_act}
    if directions is not None:
        bundle["directions"] = directions.detach().to(torch.float16)
    store.save_tensors(bundle_name(model, site, source), bundle,
                       {**unit, "n_tokens": stats.n_tokens, "settings": settings}, run_id=run_id)
    store.write("results", [{"name": MARKER, "key": marker_key(model, site, source),
                             "payload": {**unit, "n_tokens": stats.n_tokens, "n_examples": rows.num_rows,
                                         "settings": settings}}], run_id=run_id)
    return rows.num_rows
