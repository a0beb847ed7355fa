"""The sites the corpus-examples job covers, and how each one's features are read.

A `Site` is one set of features read at one hook: a layer's MLP neurons (read as they are),
a stored dictionary's latents (its encoder applied to its input site), or the stored ObsProp
vectors of one (site, source) (their scores ``x . y``, `interp.methods.obsprop.scoring`). The
`encoder` of the last two is dropped when a unit goes to a worker, which loads it again from
the store (`with_encoder`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from interp.sites import layer_of

DICTIONARY_KINDS = ("sae", "transcoder")
"""Kinds whose features are dictionary latents (sparse: their histogram covers the positive part)."""


@dataclass
class Site:
    """One site's features."""

    site: str
    """The features' identity site (a dictionary's input site for its latents)."""
    kind: str
    source: str
    n_features: int
    layer: int
    encoder: object | None = None
    """What turns the site's activations into these features: a `Dictionary` (its latents) or an
    `ObsPropScorer` (its vectors' scores); None for the site's own units, MLP neurons."""
    path: str | None = None
    """The dictionary's folder in the store (its ``dictionaries`` row's path)."""
    indices: tuple[int, ...] | None = None
    """The feature indices that exist (None: all of 0..n_features - 1)."""

    def without_encoder(self) -> "Site":
        return dataclasses.replace(self, encoder=None)

    def record(self, model: str) -> dict:
        return {"model": model, "site": self.site, "kind": self.kind, "source": self.source}

    @property
    def positive_only(self) -> bool:
        """Whether the histogram covers only positive values (dictionary latents, mostly zero)."""
        return self.kind in DICTIONARY_KINDS

    def kept(self) -> np.ndarray | None:
        return None if self.indices is None else np.asarray(self.indices, dtype=np.int64)


def neuron_units(adapter, layers) -> list[Site]:
    return [Site(adapter.sites(layer).mlp_hidden, "neuron", "", adapter.info.d_mlp, layer) for layer in layers]


def dictionary_units(store, adapter) -> list[Site]:
    """A site per dictionary the store holds for `adapter`'s model."""
    from interp.dictionaries.io import load_dictionary_dir

    rows = store.read("dictionaries", where={"model": adapter.store_name})
    units = []
    for row in rows.to_dict("records"):
        dictionary, meta = load_dictionary_dir(store.dictionary_folder(row["name"], row.get("path")))
        site = adapter.check_site(row.get("site") or meta.get("hook_name"))
        units.append(Site(site, dictionary.kind, row["name"], dictionary.d_sae, layer_of(site), dictionary.eval(),
                          row.get("path")))
    return units


def obsprop_units(store, adapter) -> list[Site]:
    """A site per (site, source) of the ObsProp vectors the store holds for `adapter`'s model.

    The embeddings' vectors count as layer 0 (the pass to layer 0 computes them)."""
    from interp.methods.obsprop.scoring import stored_scorers

    return [Site(s.site, "obsprop", s.source, s.n_features, layer_of(adapter.check_site(s.site)) or 0, s,
                 indices=s.indices) for s in stored_scorers(store, adapter)]


def with_encoder(store, adapter, site: Site) -> Site:
    """`site` with its encoder loaded from the store (a worker's copy arrives without it)."""
    if site.kind == "neuron" or site.encoder is not None:
        return site
    if site.kind == "obsprop":
        from interp.methods.obsprop.scoring import stored_scorers

        found = stored_scorers(store, adapter, site=site.site, source=site.source)
        if not found:
            raise ValueError(f"obsprop source {site.source!r} at {site.site} is no longer in the store")
        return dataclasses.replace(site, encoder=found[0])
    from interp.dictionaries.io import load_dictionary_dir

    dictionary, _ = load_dictionary_dir(store.dictionary_folder(site.source, site.path))
    return dataclasses.replace(site, encoder=dictionary.eval())


def write_directions(adapter, unit: Site) -> torch.Tensor:
    """(n_features, d_model) write directions: W_out rows of neurons, decoder rows of latents, the
    residual-stream versions of ObsProp vectors."""
    if unit.encoder is not None:
        return unit.encoder.W_dec.detach().float()
    return adapter.weights.layer(unit.layer).mlp.W_out.float()
