"""Steering directions from any stored feature, or from a vector the user gives.

A `DirectionSpec` names what to steer (``feature``), how hard (``strength``), how
(``method``: add / clamp / cap) and optionally where (``site``). The text form, shared by the
CLI's ``--feature`` and the Steering page, is ``FEATURE[@SITE][=STRENGTH[:METHOD]]``
(`parse_spec`). `resolve_direction` turns a spec into a `SteeringDirection` (a `Steer` plus
its identity and residual-stream direction):

1. ``neuron`` (a stored key ``model//blocks.L.mlp.hook_post/neuron/I``, or ``L:I``): steered at
   its hidden unit (``u = e_I``, `neuron_steer`); its residual direction is its output weight
   row ``W_out[I]``. With a residual ``site`` given, ``W_out[I]`` itself is steered there.
2. ``sae`` / ``transcoder`` latent (a stored key): its stored dictionary's decoder row at the
   dictionary's output site, read by its encoder for clamping (`latent_steer`).
3. ``obsprop`` vector (a stored key): the vector of its path in the source's tensor bundle
   (``metrics.bundle`` / ``metrics.path``), steered in the residual stream the component reads
   (``hook_resid_pre`` for a head or the embedding, ``hook_resid_mid`` for an MLP).
4. ``probe`` / ``direction`` (a stored key): row ``index`` of the ``directions`` tensor of the
   bundle named by ``metrics.bundle`` (else the feature's ``source``), at the feature's site
   (`interp.methods.steering.probe` computes and stores difference-of-means directions).
5. ``vector:PATH`` (a .npy / .pt / .safetensors file) or ``vector:0.1,0.2,...`` (d_model
   floats), at ``site`` (required).

Directions of 3-5 are scaled to unit length, so a strength is in units of the residual
stream's norm; neurons and latents keep their own scale, so a strength is in units of the
feature's activation (`interp.methods.steering.strength`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from interp.features import FeatureId, FeatureKind
from interp.methods.steering.steering import METHODS, Edit, Steer, latent_steer, neuron_steer
from interp.sites import layer_of, site_kind

VECTOR = "vector:"
SPEC_FORM = "FEATURE[@SITE][=STRENGTH[:METHOD]] (e.g. 18:1036=8, KEY=20:clamp, vector:v.npy@blocks.6.hook_resid_post=4)"
_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


@dataclass(frozen=True)
class DirectionSpec:
    """One direction to steer along (see the module docstring)."""

    feature: str
    """A stored feature key, LAYER:INDEX for an MLP neuron, or vector:PATH / vector:FLOATS."""
    strength: float = 0.0
    """s: the added amount, the clamp value or the cap."""
    method: str = "add"
    """add, clamp or cap."""
    site: str | None = None
    """Hook name to steer at (required for vector:, optional for the others)."""

    def __post_init__(self) -> None:
        if not isinstance(self.feature, str) or not self.feature.strip():
            raise ValueError(f"empty feature {self.feature!r}: give a feature key, LAYER:INDEX or vector:...")
        object.__setattr__(self, "feature", self.feature.strip())
        if self.method not in METHODS:
            raise ValueError(f"unknown steering method {self.method!r}; valid: {', '.join(METHODS)}")
        try:
            object.__setattr__(self, "strength", float(self.strength))
        except (TypeError, ValueError):
            raise ValueError(f"strength {self.strength!r} is not a number") from None
        if self.strength != self.strength or abs(self.strength) == float("inf"):
            raise ValueError(f"strength {self.strength} must be a finite number")
        if self.site is not None and not self.site.strip():
            object.__setattr__(self, "site", None)

    def text(self) -> str:
        """The spec's text form (`parse_spec` reads it back)."""
        site = f"@{self.site}" if self.site else ""
        return f"{self.feature}{site}={self.strength:g}:{self.method}"


def parse_spec(text: str, strength: float | None = None, method: str = "add") -> DirectionSpec:
    """``FEATURE[@SITE][=STRENGTH[:METHOD]]``; `strength` / `method` fill what the text leaves out."""
    text = str(text).strip()
    head, eq, tail = text.rpartition("=") if "=" in text else (text, "", "")
    if eq:
        value, _, named = tail.partition(":")
        if not _NUMBER.match(value.strip()):
            raise ValueError(f"direction {text!r}: strength {value!r} is not a number; form: {SPEC_FORM}")
        strength, method = float(value), (named.strip() or method)
    if strength is None:
        raise ValueError(f"direction {text!r} has no strength: write it as {SPEC_FORM}, or give a default strength")
    feature, at, site = head.rpartition("@") if "@" in head else (head, "", "")
    return DirectionSpec(feature, strength, method, site.strip() if at else None)


@dataclass(frozen=True)
class SteeringDirection:
    """A resolved direction: what it is and how it is steered."""

    label: str
    """The feature's key, or ``vector:<what>`` for a user vector."""
    kind: str
    """neuron, sae, transcoder, obsprop, probe, direction or vector."""
    steer: Steer
    """The write site, the direction there, and the latent's encoder (clamping)."""
    residual: torch.Tensor | None
    """(d_model,) what the direction writes into the residual stream (None off the residual)."""
    feature: FeatureId | None = None
    """The stored feature it came from (None for a user vector)."""

    def edit(self, spec: DirectionSpec) -> Edit:
        return Edit(self.steer, spec.method, spec.strength)


def feature_id(store, adapter, key: str) -> FeatureId:
    """The feature a key names: LAYER:INDEX, a neuron key (no stored row needed) or a stored key."""
    from interp.store import read

    if "/" not in key:
        m = re.fullmatch(r"\s*(-?\d+)\s*:\s*(\d+)\s*", key)
        if m is None:
            raise ValueError(f"feature {key!r} is not a feature key, LAYER:INDEX or vector:...; form: {SPEC_FORM}")
        site = adapter.sites(adapter.check_layer(int(m.group(1)))).mlp_hidden
        return FeatureId(adapter.store_name, site, "neuron", int(m.group(2)))
    parts = key.strip("/").split("/")
    if len(parts) >= 4 and parts[-2] == "neuron" and parts[-1].isdigit():  # a neuron needs no stored row
        return FeatureId("/".join(parts[:-4]) or adapter.store_name, parts[-3], "neuron", int(parts[-1]))
    return read.parse_key(store, key)


def resolve_direction(store, adapter, spec: DirectionSpec) -> SteeringDirection:
    """Steps 1-5 of the module docstring for one spec."""
    if spec.feature.startswith(VECTOR):
        return _vector(adapter, spec)
    fid = feature_id(store, adapter, spec.feature)
    if fid.model != adapter.store_name:
        raise ValueError(f"feature {fid.key!r} belongs to model {fid.model!r}, but {adapter.store_name!r} is loaded")
    kind = fid.kind
    if kind == FeatureKind.NEURON:
        found = _neuron(adapter, fid)
    elif kind in (FeatureKind.SAE, FeatureKind.TRANSCODER):
        found = _latent(store, adapter, fid)
    elif kind == FeatureKind.OBSPROP:
        found = _stored_vector(store, adapter, fid, _obsprop_vector(store, fid), _reading_stream(adapter, fid.site))
    else:
        found = _stored_vector(store, adapter, fid, _bundle_row(store, fid), fid.site)
    return _at_site(adapter, found, spec.site)


def _neuron(adapter, fid: FeatureId) -> SteeringDirection:
    layer = layer_of(fid.site)
    if layer is None or adapter.sites(layer).mlp_hidden != fid.site:
        raise ValueError(f"neuron site {fid.site!r} is not an MLP hidden site (blocks.L.mlp.hook_post)")
    steer = neuron_steer(adapter, layer, fid.index)
    residual = adapter.weights.layer(layer).mlp.W_out[fid.index].float()
    return SteeringDirection(fid.key, "neuron", steer, residual, fid)


def _latent(store, adapter, fid: FeatureId) -> SteeringDirection:
    from interp.dictionaries.io import load_dictionary_dir  # imports SAELens: only when a latent is steered

    rows = store.read("dictionaries", where={"name": fid.source})
    if rows.empty:
        raise ValueError(f"no dictionary {fid.source!r} in the store {store.root}; steer a neuron or a stored latent")
    row = rows.iloc[0].to_dict()
    dictionary, meta = load_dictionary_dir(store.dictionary_folder(fid.source, row.get("path")))
    read_site = adapter.check_site(row.get("site") or meta.get("hook_name"))
    write_site = adapter.check_site(row.get("hook_out") or meta.get("hook_name_out") or read_site)
    steer = latent_steer(dictionary.eval(), fid.index, read_site, write_site)
    residual = steer.direction if adapter.site_dim(write_site) == adapter.info.d_model else None
    return SteeringDirection(fid.key, fid.kind.value, steer, residual, fid)


def _metrics(store, fid: FeatureId) -> dict:
    from interp.store import read

    row = read.feature_row(store, fid)
    if row is None:
        raise ValueError(f"no feature {fid.key!r} in this store; find one on the Search page")
    return row.get("metrics") or {}


def _obsprop_vector(store, fid: FeatureId) -> torch.Tensor:
    m = _metrics(store, fid)
    bundle, path = m.get("bundle"), m.get("path")
    if not bundle or not path:
        raise ValueError(f"obsprop feature {fid.key!r} does not record its vector (metrics.bundle / metrics.path)")
    tensors = store.load_tensors(bundle)
    if path not in tensors:
        raise ValueError(f"obsprop bundle {bundle!r} holds no vector {path!r}")
    return tensors[path]


def _bundle_row(store, fid: FeatureId) -> torch.Tensor:
    bundle = _metrics(store, fid).get("bundle") or fid.source
    directions = store.load_tensors(bundle).get("directions")
    if directions is None or directions.ndim != 2 or fid.index >= directions.shape[0]:
        raise ValueError(f"tensor bundle {bundle!r} holds no row {fid.index} of a 'directions' (n, d) tensor")
    return directions[fid.index]


def _reading_stream(adapter, site: str) -> str:
    """The residual stream a component reads from its input `site` (step 3)."""
    layer, kind = layer_of(site), site_kind(site)
    if layer is None:  # the embedding's vector acts on the residual stream from the start
        return adapter.sites(0).resid_pre
    sites = adapter.sites(layer)
    return sites.resid_mid if kind == "mlp_in" and sites.resid_mid else sites.resid_pre


def _unit(vector: torch.Tensor, what: str) -> torch.Tensor:
    vector = torch.as_tensor(vector).detach().float().reshape(-1)
    if not bool(torch.isfinite(vector).all()) or not bool(vector.norm() > 0):
        raise ValueError(f"{what} must be a finite, non-zero vector")
    return vector / vector.norm()


def _stored_vector(store, adapter, fid: FeatureId, vector: torch.Tensor, site: str) -> SteeringDirection:
    u = _unit(vector, f"the vector of {fid.key!r}")
    site = _check_dim(adapter, site, u, fid.key)
    return SteeringDirection(fid.key, fid.kind.value, Steer(site, u), u, fid)


def _check_dim(adapter, site: str, u: torch.Tensor, what: str) -> str:
    site = adapter.check_site(site)
    if adapter.site_dim(site) != u.shape[0]:
        raise ValueError(f"{what}: a vector of length {u.shape[0]} cannot steer {site} "
                         f"(width {adapter.site_dim(site)})")
    return site


def _vector(adapter, spec: DirectionSpec) -> SteeringDirection:
    what = spec.feature[len(VECTOR):].strip()
    if not spec.site:
        raise ValueError(f"{spec.feature!r}: a vector needs a site, e.g. {spec.feature}@blocks.6.hook_resid_post")
    if re.fullmatch(r"\[?\s*[-+0-9.eE,\s]+\]?", what) and "," in what:
        try:
            vector = torch.tensor([float(x) for x in what.strip("[] ").split(",") if x.strip()])
        except ValueError:
            raise ValueError(f"{spec.feature!r} is not a list of numbers") from None
    else:
        from interp.methods.complexity.selection import load_direction_file

        vector = load_direction_file(what)
        if not isinstance(vector, torch.Tensor) or vector.squeeze().ndim != 1:
            raise ValueError(f"direction file {what!r} must hold one vector (d,), got "
                             f"{tuple(vector.shape) if isinstance(vector, torch.Tensor) else type(vector).__name__}")
    u = _unit(vector, spec.feature)
    site = _check_dim(adapter, spec.site, u, spec.feature)
    residual = u if adapter.site_dim(site) == adapter.info.d_model else None
    return SteeringDirection(spec.feature, "vector", Steer(site, u), residual)


def _at_site(adapter, found: SteeringDirection, site: str | None) -> SteeringDirection:
    """`found` moved to another `site`: its residual direction steered there (steps 1-4)."""
    if site is None or site == found.steer.write_site or found.kind == "vector":
        return found
    if found.residual is None:
        raise ValueError(f"{found.label!r} has no residual-stream direction to steer at {site}")
    site = _check_dim(adapter, site, found.residual, found.label)
    return SteeringDirection(found.label, found.kind, Steer(site, found.residual), found.residual, found.feature)
