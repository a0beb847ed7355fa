"""Steering a model along one feature and comparing continuations.

A `Steer` names where a feature writes and reads: the site ``write_site`` whose activation
``h`` (batch, pos, d) is changed, the feature's direction ``u`` (d,) there, and how to read
the feature's activation ``a(.)``. For an MLP neuron i of layer l the site is its hidden
layer (``blocks.l.mlp.hook_post``), ``u = e_i`` and ``a(h) = h_i``. For a dictionary latent
i the site is the dictionary's output site (an SAE's own site, a transcoder's MLP output),
``u = W_dec[i]``, and ``a`` is the latent's encoder applied to the activation at the input
site of the same forward pass. The three methods (those Neuronpedia offers), at every
position, with strength ``s``:

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

Hooks are installed only through `steered` (a context manager around
`ModelAdapter.hooks`), so nothing outlives a call.

Generation (`generate`): tokens are sampled one at a time from the last position's
distribution with temperature T (T = 0: greedy) and top-p (nucleus) filtering, from a
`torch.Generator` seeded with `seed`. `compare` runs the default and the steered
continuation with the same settings and the same seed, so they differ only by the steering.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable

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
    u = u.to(h.dtype)
    if method == "add":
        return h + strength * u
    if method == "clamp":
        a = h @ u / (u @ u) if a is None else a.to(h.dtype)  # (batch, pos)
        return h + (strength - a)[..., None] * u
    v = u / u.norm()
    excess = (h @ v - strength).clamp(min=0)  # (batch, pos)
    return h - excess[..., None] * v


@contextlib.contextmanager
def steered(adapter, steer: Steer, method: str, strength: float):
    """Every forward pass inside the block is steered; the hooks are always removed."""
    if method not in METHODS:
        raise ValueError(f"unknown steering method {method!r}; valid: {', '.join(METHODS)}")
    strength = float(strength)
    read: dict[str, torch.Tensor] = {}

    def capture(act, hook):
        read["a"] = steer.encode(act)

    def write(act, hook):
        a = read.pop("a", None) if steer.read_site is not None else None
        if method == "clamp" and steer.read_site is not None and a is None:
            raise RuntimeError(f"steering hook at {steer.write_site} ran before its read site {steer.read_site}")
        return _edit(act, steer.direction, method, strength, a)

    hooks = [(steer.read_site, capture)] if steer.read_site is not None and method == "clamp" else []
    with adapter.hooks(hooks + [(steer.write_site, write)]):
        yield adapter


@dataclass(frozen=True)
class GenerateConfig:
    """Sampling settings shared by the default and the steered continuation."""

    max_tokens: int = 20
    """Tokens to generate."""
    temperature: float = 0.7
    """Softmax temperature (0: greedy)."""
    top_p: float = 0.9
    """Nucleus: sample among the most likely tokens whose probabilities sum to top_p."""
    seed: int = 0
    """Seed of the sampler (the same for both continuations)."""

    def __post_init__(self) -> None:
        if not isinstance(self.max_tokens, int) or self.max_tokens < 1:
            raise ValueError(f"max_tokens must be a positive int, got {self.max_tokens!r}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")


def _sample(logits: torch.Tensor, config: GenerateConfig, generator: torch.Generator) -> int:
    """One token id from (d_vocab,) logits."""
    if config.temperature == 0:
        return int(logits.argmax())
    probs = (logits.float() / config.temperature).softmax(-1)
    sorted_p, order = probs.sort(descending=True)
    keep = sorted_p.cumsum(-1) - sorted_p < config.top_p  # the smallest prefix reaching top_p
    sorted_p = torch.where(keep, sorted_p, 0.0)
    return int(order[torch.multinomial(sorted_p / sorted_p.sum(), 1, generator=generator)])


@torch.no_grad()
def generate(adapter, prompt: str, config: GenerateConfig = GenerateConfig()) -> str:
    """A sampled continuation of `prompt` under whatever hooks are active."""
    if not prompt.strip():
        raise ValueError(f"prompt {prompt!r} is empty: give the text to continue")
    tokens = adapter.to_tokens(prompt)
    start = tokens.shape[1]
    generator = torch.Generator().manual_seed(config.seed)
    for _ in range(config.max_tokens):
        if tokens.shape[1] >= adapter.info.n_ctx:
            break
        logits = adapter.run(tokens, last_position=True).output[0, -1]
        tokens = torch.cat([tokens, torch.tensor([[_sample(logits, config, generator)]], device=tokens.device)], 1)
    return adapter.decode(tokens[0, start:])


@dataclass(frozen=True)
class SteerResult:
    """Default and steered continuations of one prompt, same sampling settings and seed."""

    prompt: str
    method: str
    strength: float
    default: str
    steered: str
    config: GenerateConfig


def compare(adapter, steer: Steer, prompt: str, strength: float, method: str = "add",
            config: GenerateConfig = GenerateConfig()) -> SteerResult:
    """`generate` without and with the steering (see the module docstring)."""
    default = generate(adapter, prompt, config)
    with steered(adapter, steer, method, strength):
        out = generate(adapter, prompt, config)
    return SteerResult(prompt, method, float(strength), default, out, config)
