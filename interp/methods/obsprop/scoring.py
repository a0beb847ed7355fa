"""Scoring corpus tokens with stored ObsProp vectors, all vectors of one site at once.

An ObsProp vector ``y`` at site ``s`` scores a token whose activation at ``s`` is ``x`` by
``x . y`` (`propagation.feature_scores`; step 7 of the method). The corpus-examples job
(`interp.jobs.examples`) reads the vectors of one (site, source) the way it reads a
dictionary's latents, through an `ObsPropScorer`:

1. `stored_scorers`: per (site, source) among the model's stored ``obsprop`` features, the
   matrix ``Y`` (n, d) whose row i is the vector of feature index i, loaded from the source's
   tensor bundle (`store.load_obsprop`; a multi-hop source ``<source>@<path>`` reads the bundle
   of ``<source>``). Rows of indices no vector holds stay zero (a head's multi-hop path is one
   row, at its head's index); `ObsPropScorer.indices` names the rows that hold a vector.
2. `ObsPropScorer.encode`: ``acts @ Y^T`` (..., n) - every vector's score at every token in
   one matmul. Scores are signed (``x . y < 0`` pushes the observable down), so the job's
   histogram spans [min, max] rather than the positive part dictionary latents get.
3. `ObsPropScorer.W_dec`: the residual-stream versions ``P y`` (`tokens.residual_directions`),
   the space of the neurons' ``W_out`` rows and the dictionaries' decoder rows the job stores
   for nearest-feature search.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from interp.features import FeatureKind
from interp.methods.obsprop.propagation import Component, FeatureVector
from interp.methods.obsprop.store import load_obsprop
from interp.methods.obsprop.tokens import residual_directions
from interp.store.read.sql import parse_json


def scores(acts: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
    """Step 2: activations (..., d) and vectors (n, d) -> scores (..., n), ``acts @ vectors^T``."""
    if acts.shape[-1] != vectors.shape[-1]:
        raise ValueError(f"activations have width {acts.shape[-1]} but the vectors {vectors.shape[-1]}: "
                         f"they must be read at the vectors' site")
    return acts @ vectors.to(acts.dtype).to(acts.device).T


@dataclass
class ObsPropScorer:
    """The stored ObsProp vectors of one (site, source), as one linear read of the site."""

    site: str
    source: str
    vectors: torch.Tensor
    """(n, d) row i = the vector of feature index i (zero where no vector has that index)."""
    W_dec: torch.Tensor
    """(n, d_model) residual-stream directions ``P y`` (zero rows as in `vectors`)."""
    indices: tuple[int, ...]
    """The feature indices that hold a vector."""

    @property
    def n_features(self) -> int:
        return self.vectors.shape[0]

    def encode(self, acts: torch.Tensor) -> torch.Tensor:
        """(batch, pos, d) activations at `site` -> (batch, pos, n) scores."""
        return scores(acts, self.vectors)

    def eval(self) -> "ObsPropScorer":
        return self


def _scorer(store, adapter, site: str, source: str, rows: list[dict], bundles: dict) -> ObsPropScorer:
    """The scorer of `rows` (the features of one site and source); `bundles` caches the loaded bundles."""
    base = source.split("@", 1)[0]
    if base not in bundles:
        bundles[base] = load_obsprop(store, adapter, base)
    n = max(int(r["index"]) for r in rows) + 1
    found: dict[int, FeatureVector] = {}
    for r in rows:
        label = parse_json(r.get("metrics")).get("path")
        if label not in bundles[base]:
            raise ValueError(f"obsprop feature {source}/{site}/{r['index']} names path {label!r}, which the "
                             f"bundle obsprop/{adapter.store_name}/{base} does not hold; rerun `interp obsprop`")
        path = tuple(Component.parse(c) for c in label.split(">"))
        found[int(r["index"])] = FeatureVector(path, site, bundles[base][label].float())
    d = next(iter(found.values())).vector.shape[0]
    vectors, directions = torch.zeros(n, d), torch.zeros(n, adapter.info.d_model)
    order = sorted(found)
    vectors[order] = torch.stack([found[i].vector for i in order])
    directions[order] = residual_directions(adapter, [found[i] for i in order])
    return ObsPropScorer(site, source, vectors, directions, tuple(order))


def stored_scorers(store, adapter, site: str | None = None, source: str | None = None) -> list[ObsPropScorer]:
    """Step 1: one scorer per (site, source) of `adapter`'s stored ObsProp vectors (only
    `site` / `source` when given), sorted by site then source."""
    where = {"model": adapter.store_name, "kind": FeatureKind.OBSPROP.value}
    where |= {k: v for k, v in (("site", site), ("source", source)) if v is not None}
    frame = store.read("features", where=where, columns=["site", "index", "source", "metrics"])
    if frame.empty:
        return []
    bundles: dict = {}
    return [_scorer(store, adapter, str(s), str(src), part.to_dict("records"), bundles)
            for (s, src), part in frame.groupby(["site", "source"], sort=True)]
