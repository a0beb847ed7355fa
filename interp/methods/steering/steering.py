"""Steering edits: add a feature's direction, clamp its activation or cap its projection.

A `Steer` names where a feature writes and reads: the site ``write_site`` whose activation
``h`` (batch, pos, d) is changed, the feature's direction ``u`` (d,) there, and how to read
the feature's activation ``a(.)``. For an MLP neuron i of layer l the site is its hidden
layer (``blocks.l.mlp.hook_post``), ``u = e_i`` and ``a(h) = h_i`` (adding ``s e_i`` there
adds ``s W_out[i]``, the neuron's output weight row, to the residual stream). For a
dictionary latent i the site is the dictionary's output site (an SAE's own site, a
transcoder's MLP output), ``u = W_dec[i]``, and ``a`` is the latent's encoder applied to the
activation at the input site of the same forward pass. The three methods (those Neuronpedia
offers), at every position, with strength ``s``:

1. ``add``: ``h <- h + s u``. For a neuron, its activation rises by s; for a latent, s times
   its decoder row is added, as if the latent fired s more.
2. ``clamp``: the feature's activation is set to s: ``h <- h + (s - a) u``. Read at the
   write site, ``a = h . u / (u . u)`` (the coefficient of h along u, which becomes s); for
   a neuron this is ``h_i <- s``. For a latent ``a`` comes from its encoder on the clean
   input (the input site is not steered), so the dictionary's reconstruction error and
   every other latent are kept: only the latent's own contribution ``a W_dec[i]`` becomes
   ``s W_dec[i]``.
3. ``cap`` (projection capping): with ``v = u / |u|``, the component of ``h`` along ``v``
   is capped at s: ``h <- h - max(0, h . v - s) v``. Tokens below the cap are untouched.

Several edits (`Edit`: a steer, a method, a strength) act in one pass: each is a hook at its
write site, and edits at one site apply in the order given (for ``add`` the order does not
matter: the result is ``h + sum_k s_k u_k``).

Hooks are installed only through `steered` / `steered_edits` (context managers around
`ModelAdapter.hooks`), so nothing outlives a call. Sampling the default and the steered
continuation lives in `interp.methods.steering.generation`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

METHODS = ("add", "clamp", "cap")


@dataclass(frozen=True)
class Steer:
    """Where one feature is steered (see the module docstring)."""

    write_site: str
    """Hook name whose activation is changed."""
    direction: torch.Tensor
    """(d_site,) the feature's direction at `write_site`."""
    read_site: str | None = None
    """Hook whose activation the feature's encoder reads (None: the feature is read at
    `write_site` as ``h . u / (u . u)``, e.g. a neuron)."""
    encode: Callable[[torch.Tensor], torch.Tensor] | None = None
    """(batch, pos, d_read) -> (batch, pos) the feature's activation, when `read_site` is set."""

    def __post_init__(self) -> None:
        if self.direction.ndim != 1 or not bool(self.direction.norm() > 0):
            raise ValueError(f"a steering direction must be a non-zero vector, got shape {tuple(self.direction.shape)}")
        if (self.read_site is None) != (self.encode is None):
            raise ValueError("read_site and encode go together: give both (a dictionary latent) or neither")


@dataclass(frozen=True)
class Edit:
    """One steering edit: a feature's `Steer`, the method and its strength."""

    steer: Steer
    """Where and along what the activation changes."""
    method: str = "add"
    """'add', 'clamp' or 'cap' (module docstring)."""
    strength: float = 0.0
    """s: the added amount, the clamp value or the cap."""

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown steering method {self.method!r}; valid: {', '.join(METHODS)}")
        object.__setattr__(self, "strength", float(self.strength))


def neuron_steer(adapter, layer: int, index: int) -> Steer:
    """Neuron `index` of layer `layer`'s MLP: its hidden unit, ``u = e_index``."""
    site = adapter.sites(adapter.check_layer(layer)).mlp_hidden
    adapter.check_index(site, index)
    u = torch.zeros(adapter.info.d_mlp)
    u[index] = 1.0
    return Steer(site, u)


def latent_steer(dictionary, index: int, read_site: str, write_site: str) -> Steer:
    """Latent `index` of a `Dictionary` read at `read_site` and decoded into `write_site`."""
    if not 0 <= index < dictionary.d_sae:
        raise ValueError(f"latent {index} is out of range: this dictionary has latents 0..{dictionary.d_sae - 1}")

    @torch.no_grad()
    def encode(x: torch.Tensor) -> torch.Tensor:
        return dictionary.encode(x.float())[..., index]

    return Steer(write_site, dictionary.W_dec[index].detach().float().clone(), read_site, encode)


def _edit(h: torch.Tensor, u: torch.Tensor, method: str, strength: float, a: torch.Tensor | None) -> torch.Tensor:
    """The steered activation of ``h`` (batch, pos, d) for one method (module docstring)."""
    u = u.to(h.device, h.dtype)
    if method == "add":
        return h + strength * u
    if method == "clamp":
        a = h @ u / (u @ u) if a is None else a.to(h.dtype)  # (batch, pos)
        return h + (strength - a)[..., None] * u
    v = u / u.norm()
    excess = (h @ v - strength).clamp(min=0)  # (batch, pos)
    return h - excess[..., None] * v


def _hooks(edit: Edit) -> list[tuple[str, Callable]]:
    """The (site, fn) hooks of one edit: its encoder's read (clamped latents) and its write."""
    steer, read = edit.steer, {}
    reads = steer.read_site is not None and edit.method == "clamp"

    def capture(act, hook):
        read["a"] = steer.encode(act)

    def write(act, hook):
        a = read.pop("a", None) if reads else None
        if reads and a is None:
            raise RuntimeError(f"steering hook at {steer.write_site} ran before its read site {steer.read_site}")
        return _edit(act, steer.direction, edit.method, edit.strength, a)

    return ([(steer.read_site, capture)] if reads else []) + [(steer.write_site, write)]


@contextlib.contextmanager
def steered_edits(adapter, edits: Sequence[Edit]):
    """Every forward pass inside the block carries all `edits`; the hooks are always removed."""
    hooks = [hook for edit in edits for hook in _hooks(edit)]
    with adapter.hooks(hooks):
        yield adapter


@contextlib.contextmanager
def steered(adapter, steer: Steer, method: str, strength: float):
    """Every forward pass inside the block is steered by one feature; the hooks are always removed."""
    with steered_edits(adapter, [Edit(steer, method, strength)]):
        yield adapter
