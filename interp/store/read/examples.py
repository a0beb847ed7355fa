"""Reads of the corpus-examples job's tensors: a feature's activation histogram, and the
features nearest to it by write-direction cosine.

The job (`interp.jobs.examples`, rows written by `interp.methods.examples.store`) saves one
tensor bundle per unit (one site's features: a layer's neurons, a dictionary's latents),
named by `bundle_name`, holding the histogram and each feature's write direction (a neuron's
``W_out`` row, a latent's decoder row; both live in the residual stream, so neurons and
latents of one model are compared with each other).
"""

from __future__ import annotations

import re

import pandas as pd
import torch

from interp.features import FeatureId
from interp.store import tensors as tensor_io
from interp.store.files import StoreError
from interp.store.store import Store

MARKER = "examples"
"""`results` name of the job's per-unit completion markers."""
PREFIX = "examples"
NEURONS = "neurons"
"""The bundle-name segment that stands for the empty source of model neurons."""


def bundle_name(model: str, site: str, source: str) -> str:
    """``examples/<model>/<site>/<source or 'neurons'>``; a source character no bundle name may hold
    (an ObsProp path's ``@`` and ``>``) is written ``_x<hex>_``."""
    safe = re.sub(r"[^A-Za-z0-9._/-]", lambda m: f"_x{ord(m.group()):02x}_", source)
    return f"{PREFIX}/{model}/{site}/{safe or NEURONS}"


def marker_key(model: str, site: str, source: str) -> str:
    return f"{model}|{source}|{site}"


def _bundle(store: Store, fid: FeatureId) -> dict | None:
    try:
        return store.load_tensors(bundle_name(fid.model, fid.site, fid.source))
    except (FileNotFoundError, StoreError):  # never computed, or a name no bundle can have
        return None


def feature_histogram(store: Store, fid: FeatureId) -> dict | None:
    """The corpus activation histogram of `fid`: ``{"edges", "counts", "n_tokens", "density",
    "min_act", "max_act", "mean_act"}`` (numpy arrays and floats), or None if not computed."""
    bundle = _bundle(store, fid)
    if bundle is None or fid.index >= bundle["counts"].shape[0]:
        return None
    meta = store.tensor_metadata(bundle_name(fid.model, fid.site, fid.source))
    i = fid.index
    return {"edges": bundle["edges"][i].numpy(), "counts": bundle["counts"][i].numpy(),
            "n_tokens": int(meta.get("n_tokens", 0)), "settings": meta.get("settings", {}),
            **{k: float(bundle[k][i]) for k in ("density", "min_act", "max_act", "mean_act")}}


def _model_bundles(store: Store, model: str) -> list[str]:
    head = f"{PREFIX}/{model}/"
    return [name for name in tensor_io.list_tensors(store.root) if name.startswith(head)]


def top_cosines(target: torch.Tensor, directions: torch.Tensor, n: int, skip: int | None = None
                ) -> list[tuple[int, float]]:
    """The `n` rows of `directions` (m, d) with the largest |cosine| with `target` (d,), as
    (row, signed cosine), largest |cosine| first; row `skip` (the feature itself) and zero rows
    (indices no feature holds, as in an ObsProp bundle) left out."""
    d = directions.float()
    target = target.float() / target.float().norm().clamp_min(1e-12)
    norms = d.norm(dim=1)
    cos = (d @ target) / norms.clamp_min(1e-12)  # (m,)
    ranked = cos.abs().masked_fill(norms == 0, -1.0)  # zero rows rank last, then are dropped
    top = ranked.topk(min(n + 1, len(cos))).indices.tolist()
    return [(int(i), float(cos[i])) for i in top if i != skip and norms[i] > 0][:n]


def nearest_by_direction(store: Store, fid: FeatureId, n: int = 10) -> pd.DataFrame:
    """The `n` features of `fid`'s model whose write direction has the largest |cosine| with
    `fid`'s (sign kept in ``cosine``), with their label and density; empty when `fid` has no
    stored direction."""
    mine = _bundle(store, fid)
    if mine is None or "directions" not in mine or fid.index >= mine["directions"].shape[0]:
        return pd.DataFrame()
    target = mine["directions"][fid.index].float()
    found = []
    for name in _model_bundles(store, fid.model):
        meta = store.tensor_metadata(name)
        if meta.get("model") != fid.model:  # another model whose name extends this one's
            continue
        directions = store.load_tensors(name).get("directions")
        if directions is None or directions.shape[1] != target.shape[0]:
            continue
        itself = fid.index if meta.get("site") == fid.site and meta.get("source") == fid.source else None
        found += [{"model": fid.model, "site": meta["site"], "kind": meta["kind"], "index": i,
                   "source": meta["source"], "cosine": c} for i, c in top_cosines(target, directions, n, itself)]
    if not found:
        return pd.DataFrame()
    near = pd.DataFrame(found)
    near = near.reindex(near["cosine"].abs().sort_values(ascending=False).index).head(n).reset_index(drop=True)
    feats = store.read("features", where={"model": fid.model, "site": sorted(set(near["site"])),
                                          "index": sorted(set(near["index"]))},
                       columns=["site", "kind", "index", "source", "label", "density"])
    return near.merge(feats, on=["site", "kind", "index", "source"], how="left")

