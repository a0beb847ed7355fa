"""Selecting features by a short query string, for the CLI and batch jobs.

Query grammar (several queries may be joined with ``;``)::

    neurons:layers=3,5        every MLP neuron of blocks 3 and 5 (also: neurons:3,5)
    neurons:3:0-99,200        neurons 0..99 and 200 of block 3
    dict:NAME                 every latent of the stored SAE/transcoder NAME
    dict:NAME:0-511           latents 0..511 of it
    store:WHERE               rows of the store's features table matching a SQL condition,
                              e.g.  store:kind='neuron' AND site='blocks.4.mlp.hook_post'
    direction:SITE:FILE       rows of a (k, d) or (d,) tensor (.pt / .npy / .safetensors
                              with key 'directions') read as directions at SITE

Dictionary latents use the encoder of the stored dictionary (SAELens folder format, read
with `interp.dictionaries.io`: relu / jumprelu / topk SAEs and transcoders).
Stored features of kind obsprop / probe / direction are read from the tensor bundle named
by their ``source`` column, holding ``directions`` (n, d_site) indexed by ``index``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import torch

from interp.features import FeatureId, FeatureKind
from interp.methods.complexity.activations import FeatureGroup, Readout, direction_group, neuron_group

_HELP = ("valid forms: neurons:layers=3,5 | neurons:3:0-99 | dict:NAME[:0-99] | store:WHERE | "
         "direction:SITE:FILE (several joined with ';')")


def parse_ranges(text: str) -> list[int]:
    """'0-3,7' -> [0, 1, 2, 3, 7]."""
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise ValueError(f"bad index range {part!r} in {text!r}: use forms like 0-99,120")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo:
            raise ValueError(f"range {part!r} ends before it starts")
        out.extend(range(lo, hi + 1))
    return out


def feature_groups(adapter, query: str, store=None) -> list[FeatureGroup]:
    """The feature groups a query selects (see the module docstring for the grammar)."""
    if not isinstance(query, str) or not query.strip():
        raise ValueError(f"empty feature query; {_HELP}")
    groups: list[FeatureGroup] = []
    for q in (q.strip() for q in query.split(";") if q.strip()):
        kind, _, rest = q.partition(":")
        if kind == "neurons":
            groups += _neurons(adapter, rest)
        elif kind in ("dict", "store") and store is None:
            raise ValueError(f"query {q!r} reads the store, but no store was given")
        elif kind == "dict":
            name, _, idx = rest.partition(":")
            groups.append(dictionary_group(adapter, store, name, parse_ranges(idx) if idx else None))
        elif kind == "store":
            groups += store_groups(adapter, store, rest)
        elif kind == "direction":
            site, _, path = rest.partition(":")
            groups.append(direction_group(adapter, site, load_direction_file(path)))
        else:
            raise ValueError(f"unknown feature query {q!r}; {_HELP}")
    return groups


def _neurons(adapter, rest: str) -> list[FeatureGroup]:
    rest = rest.removeprefix("layers=")
    layers, _, idx = rest.partition(":")
    if not layers:
        raise ValueError(f"neurons query needs layers, e.g. neurons:layers=3,5; {_HELP}")
    indices = parse_ranges(idx) if idx else None
    return [neuron_group(adapter, adapter.check_layer(l), indices) for l in parse_ranges(layers)]


def load_direction_file(path: str) -> torch.Tensor:
    """The (k, d) or (d,) tensor of a user's direction file: .npy, .pt, or .safetensors (its
    ``directions`` tensor, or its only tensor)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"direction file {path!r} not found")
    if p.suffix == ".npy":
        import numpy as np

        return torch.from_numpy(np.load(p))
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        tensors = load_file(str(p))
        if "directions" in tensors:
            return tensors["directions"]
        if len(tensors) == 1:
            return next(iter(tensors.values()))
        raise ValueError(f"direction file {path!r} holds {len(tensors)} tensors and none is named 'directions'")
    if p.suffix == ".pt":
        return torch.load(p, weights_only=True)
    raise ValueError(f"direction file {path!r}: use .pt, .npy or .safetensors")


def _dictionary_row(store, adapter, name: str) -> dict:
    """The dictionaries-table row of `name` ({} when only the folder exists)."""
    rows = store.read("dictionaries", where={"name": name, "model": adapter.store_name})
    if not rows.empty:
        return rows.iloc[0].to_dict()
    if (store.dictionary_dir(name) / "cfg.json").is_file():
        return {}
    known = store.read("dictionaries", where={"model": adapter.store_name}, columns=["name"])["name"].tolist()
    raise ValueError(f"no dictionary {name!r} for {adapter.store_name} in the store; stored: {known or 'none'}")


@dataclass(frozen=True)
class _Encoder:
    W_enc: torch.Tensor
    b_enc: torch.Tensor
    W_dec: torch.Tensor
    b_dec: torch.Tensor
    threshold: torch.Tensor | None
    kind: str
    arch: str
    k: int | None
    b_dec_on_input: bool
    site: str | None
    hook_out: str | None


def _load_encoder(store, name: str, row: dict) -> _Encoder:
    """The encoder of stored dictionary `name`, read by `interp.dictionaries.io` (its only reader)."""
    from interp.dictionaries.io import load_dictionary_dir  # imports SAELens: only when a dictionary is read

    folder = store.dictionary_folder(name, row.get("path"))  # refuses a stored path outside the store
    d, meta = load_dictionary_dir(folder)
    p = {k: v.detach().float() for k, v in d.named_parameters()}
    return _Encoder(p["W_enc"], p["b_enc"], p["W_dec"], p["b_dec"], p.get("threshold"), d.kind, d.arch,
                    d.k, d.apply_b_dec_to_input, row.get("site") or meta.get("hook_name"),
                    row.get("hook_out") or meta.get("hook_name_out"))


def dictionary_group(adapter, store, name: str, indices=None) -> FeatureGroup:
    """Latents of a stored SAE / transcoder, read by its encoder at its input site."""
    enc = _load_encoder(store, name, _dictionary_row(store, adapter, name))
    if not enc.site:
        raise ValueError(f"dictionary {name!r} does not record its input site (hook_name)")
    site = adapter.check_site(enc.site)
    kind = FeatureKind.parse(enc.kind)
    d_sae = enc.W_enc.shape[1]
    idx = list(range(d_sae)) if indices is None else list(indices)
    if not idx or max(idx) >= d_sae:
        raise ValueError(f"latent indices of {name!r} must be in 0..{d_sae - 1}, got {idx[:3]}..")
    readout = Readout(
        W=enc.W_enc, b=enc.b_enc, b_in=enc.b_dec if enc.b_dec_on_input else None, activation=enc.arch,
        threshold=enc.threshold, top_k=enc.k, select=torch.tensor(idx), write=enc.W_dec[idx],
        write_site=enc.hook_out if kind == FeatureKind.TRANSCODER else None,
    )
    ids = tuple(FeatureId(adapter.store_name, site, kind, i, name) for i in idx)
    return FeatureGroup(site, ids, readout)


def store_groups(adapter, store, where: str) -> list[FeatureGroup]:
    """Groups for the stored features matching a SQL condition on the features table."""
    if not where.strip():
        raise ValueError("store: query needs a condition, e.g. store:kind='neuron'")
    model = adapter.store_name.replace("'", "''")
    rows = store.sql(f"SELECT site, kind, \"index\", source FROM features WHERE model = '{model}' AND ({where})")
    if rows.empty:
        raise ValueError(f"no stored features of {adapter.store_name} match {where!r}")
    by = defaultdict(list)
    for r in rows.itertuples(index=False):
        by[(r.site, r.kind, r.source or "")].append(int(r.index))
    groups = []
    for (site, kind, source), idx in sorted(by.items()):
        kind = FeatureKind.parse(kind)
        idx = sorted(set(idx))
        if kind == FeatureKind.NEURON:
            from interp.sites import layer_of

            groups.append(neuron_group(adapter, layer_of(site), idx))
        elif kind in (FeatureKind.SAE, FeatureKind.TRANSCODER):
            groups.append(dictionary_group(adapter, store, source, idx))
        else:
            dirs = store.load_tensors(source)["directions"]
            groups.append(direction_group(adapter, site, dirs[idx], kind=kind, source=source, indices=idx))
    return groups
