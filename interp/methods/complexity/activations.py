"""Feature activations and the residual stream before them, collected in one pass.

What `collect_activations` does:

1. Sample token positions: per window, `positions_per_window` random positions (never the
   BOS column, whose residual stream is an outlier shared by every context), or all.
2. Run the model once per batch, stopping after the deepest block any feature lives in, and
   cache only: the residual streams h_0 .. h_{L-1} (h_0 = resid_pre of block 0, i.e. the
   embeddings; h_l = resid_pre of block l = resid_post of block l-1; the last may be
   resid_post of the final block), optionally resid_mid of each block (for the layer-flow
   view), and each feature group's site.
3. Gather the sampled positions and apply each group's readout: a neuron index, a linear
   direction (probe, ObsProp, user vector) or a dictionary encoder
   ``z = act((x - b_in) W_enc + b_enc)`` (SAE / transcoder latents).

A feature's `depth` is the number of residual streams it can read: for a site inside block
b it is b + 1 (h_0 .. h_b, the stream entering the block); for resid_post of block b it is
b + 2 (its own stream included); embeddings 1; final-norm sites n_layers + 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from interp.features import FeatureId, FeatureKind
from interp.sites import layer_of


@dataclass(frozen=True)
class Readout:
    """How a group of scalar features is read from one site's activation.

    ``z = act((x - b_in) @ W + b)`` for the sampled rows x (n, d_site); ``act`` is identity
    for directions and neurons (W one-hot), ReLU / JumpReLU for dictionary encoders.
    `write` gives, for importance, the direction each feature writes along at `write_site`.
    """

    W: torch.Tensor
    """(d_site, k) read vectors (columns)."""
    b: torch.Tensor | None = None
    """(k,) bias added after the projection."""
    b_in: torch.Tensor | None = None
    """(d_site,) subtracted from x before the projection (SAE b_dec on input)."""
    activation: str = "identity"
    """'identity', 'relu' or 'jumprelu'."""
    threshold: torch.Tensor | None = None
    """(k,) JumpReLU thresholds."""
    index: torch.Tensor | None = None
    """(k,) neuron indices: a fast path for one-hot W."""
    select: torch.Tensor | None = None
    """(k,) columns kept after the activation (TopK dictionaries need every latent first)."""
    top_k: int | None = None
    """For activation 'topk': latents kept per token."""
    write: torch.Tensor | None = None
    """(k, d_write) output direction of each feature (for gradient x activation)."""
    write_site: str | None = None
    """Site where `write` applies (the read site when None)."""

    def __post_init__(self) -> None:
        if self.activation not in ("identity", "relu", "jumprelu", "topk"):
            raise ValueError(f"activation {self.activation!r} is not one of 'identity', 'relu', 'jumprelu', 'topk'")
        if self.activation == "topk" and not (self.top_k and self.top_k > 0):
            raise ValueError(f"a topk readout needs top_k >= 1, got {self.top_k!r}")
        if self.activation == "jumprelu" and self.threshold is None:
            raise ValueError("a jumprelu readout needs `threshold`")

    @property
    def k(self) -> int:
        return self.W.shape[1] if self.select is None else len(self.select)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """(n, d_site) -> (n, k) feature values."""
        if self.index is not None:
            return x[:, self.index]
        x = x - self.b_in if self.b_in is not None else x
        z = x @ self.W.to(x.dtype)
        if self.b is not None:
            z = z + self.b.to(x.dtype)
        if self.activation == "relu":
            z = z.relu()
        elif self.activation == "jumprelu":
            z = z.relu() * (z > self.threshold.to(x.dtype))
        elif self.activation == "topk":
            top = z.topk(min(self.top_k, z.shape[1]), dim=1)
            z = torch.zeros_like(z).scatter(1, top.indices, top.values.relu())
        return z if self.select is None else z[:, self.select]


@dataclass(frozen=True)
class FeatureGroup:
    """Features read from one site by one readout."""

    site: str
    ids: tuple[FeatureId, ...]
    readout: Readout

    def __post_init__(self) -> None:
        if len(self.ids) != self.readout.k:
            raise ValueError(f"group at {self.site}: {len(self.ids)} ids but the readout gives {self.readout.k}")


@dataclass(frozen=True)
class CollectConfig:
    """Settings of `collect_activations`."""

    positions_per_window: int | None = 32
    """Token positions sampled per window (None: every non-BOS position)."""
    batch_size: int = 8
    """Windows per forward pass."""
    with_mid: bool = False
    """Also cache resid_mid of every block (needed for `layer_flow`)."""
    seed: int = 0
    """Seed of the position sampling."""

    def __post_init__(self) -> None:
        if self.positions_per_window is not None and self.positions_per_window < 1:
            raise ValueError(f"positions_per_window must be >= 1 or None, got {self.positions_per_window!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size!r}")


@dataclass(frozen=True)
class FeatureActivations:
    """Sampled tokens with the residual streams and the features' values."""

    hs: list[torch.Tensor]
    """n_layers tensors (n, d_model): h_0 .. h_{n_layers-1}."""
    mids: list[torch.Tensor]
    """resid_mid of blocks 0 .. max(mid_depth)-1, each (n, d_model); empty unless with_mid."""
    Z: torch.Tensor
    """(n, F) feature values."""
    features: list[FeatureId]
    depth: torch.Tensor
    """(F,) int64: layers 0 .. depth-1 are averaged for each feature."""
    mid_depth: torch.Tensor
    """(F,) int64: the resid_mid of blocks 0 .. mid_depth-1 precede the feature."""
    token_ids: torch.Tensor
    """(n,) the token at each sampled position."""
    window: torch.Tensor
    """(n,) window (row of the token batch) of each sample."""
    position: torch.Tensor
    """(n,) position within its window."""
    extra: dict = field(default_factory=dict)


def site_depth(adapter, site: str) -> int:
    """Number of residual streams (h_0 ..) a feature at `site` can read (see module docstring)."""
    adapter.check_site(site)
    layer = layer_of(site)
    if layer is None:
        return 1 if site in (adapter.embed_site, "hook_pos_embed") else adapter.info.n_layers + 1
    return layer + 2 if site == adapter.sites(layer).resid_post else layer + 1


def site_mid_depth(adapter, site: str) -> int:
    """Number of blocks whose resid_mid a feature at `site` can read.

    Blocks before its own, plus its own block when the site comes after attention (the MLP
    side and resid_post): an MLP neuron reads resid_mid of its own block.
    """
    depth = site_depth(adapter, site)
    layer = layer_of(site)
    if layer is None:
        return min(depth - 1, adapter.info.n_layers)
    s = adapter.sites(layer)
    after_attn = site in (s.resid_mid, s.mlp_in, s.mlp_pre, s.mlp_hidden, s.mlp_out) or \
        site.startswith(f"blocks.{layer}.mlp.") or site.startswith(f"blocks.{layer}.ln2.")
    return layer + 1 if site == s.resid_post or after_attn else layer


def residual_site(adapter, l: int) -> str:
    """Hook name of h_l: resid_pre of block l, or resid_post of the last block for l = n_layers."""
    n = adapter.info.n_layers
    if not 0 <= l <= n:
        raise ValueError(f"residual layer {l} out of range: valid 0..{n}")
    return adapter.sites(l).resid_pre if l < n else adapter.sites(n - 1).resid_post


def _sample_positions(n_windows: int, ctx: int, config: CollectConfig) -> torch.Tensor:
    """(n_windows, k) sorted positions in 1..ctx-1."""
    if ctx < 2:
        raise ValueError(f"windows of {ctx} tokens have no position after BOS")
    k = ctx - 1 if config.positions_per_window is None else min(config.positions_per_window, ctx - 1)
    gen = torch.Generator().manual_seed(config.seed)
    scores = torch.rand(n_windows, ctx - 1, generator=gen)
    return scores.topk(k, dim=1).indices.sort(dim=1).values + 1


def collect_activations(adapter, tokens: torch.Tensor, groups: Sequence[FeatureGroup],
                        config: CollectConfig = CollectConfig(), progress: Callable | None = None
                        ) -> FeatureActivations:
    """One pass over `tokens` (n_windows, ctx) collecting hs, mids and every group's features.

    `progress`: optional wrapper for the batch iterator (e.g. tqdm).
    """
    if not groups:
        raise ValueError("collect_activations needs at least one feature group")
    tokens = torch.as_tensor(tokens)
    if tokens.ndim != 2 or tokens.shape[0] == 0:
        raise ValueError(f"tokens must be (n_windows, ctx) with n_windows >= 1, got {tuple(tokens.shape)}")
    depths = [site_depth(adapter, g.site) for g in groups]
    L = max(depths)
    res_names = [residual_site(adapter, l) for l in range(L)]
    mid_depths = [site_mid_depth(adapter, g.site) for g in groups]
    mid_names = [adapter.sites(b).resid_mid for b in range(max(mid_depths))] if config.with_mid else []
    if any(m is None for m in mid_names):
        raise ValueError(f"{adapter.name} runs attention and MLP in parallel: it has no resid_mid for layer flow")
    names = list(dict.fromkeys(res_names + mid_names + [g.site for g in groups]))
    # Stop after the deepest block needed; final-norm sites need the whole model.
    blocks = [layer_of(n) for n in names]
    needs_all = any(b is None and n not in (adapter.embed_site, "hook_pos_embed") for b, n in zip(blocks, names))
    stop = None if needs_all else max([b for b in blocks if b is not None], default=0) + 1
    pos = _sample_positions(tokens.shape[0], tokens.shape[1], config)
    hs, mids, zs, rows = [[] for _ in res_names], [[] for _ in mid_names], [], []
    batches = range(0, tokens.shape[0], config.batch_size)
    for start in (progress(batches) if progress else batches):
        batch = tokens[start:start + config.batch_size].to(adapter.device)
        p = pos[start:start + config.batch_size].to(adapter.device)  # (b, k)
        w = torch.arange(start, start + batch.shape[0], device=adapter.device)[:, None].expand_as(p)
        cache = adapter.run(batch, names, stop_at_layer=stop).cache
        take = lambda name: cache[name][w - start, p].reshape(-1, cache[name].shape[-1]).float().cpu()
        for out, name in zip(hs, res_names):
            out.append(take(name))
        for out, name in zip(mids, mid_names):
            out.append(take(name))
        zs.append(torch.cat([g.readout(take(g.site)) for g in groups], dim=1))
        rows.append(torch.stack([w.reshape(-1), p.reshape(-1)], 1).cpu())
    rows = torch.cat(rows)
    ids = [i for g in groups for i in g.ids]
    depth = torch.tensor([d for g, d in zip(groups, depths) for _ in g.ids])
    mid_depth = torch.tensor([d for g, d in zip(groups, mid_depths) for _ in g.ids])
    return FeatureActivations(
        hs=[torch.cat(h) for h in hs], mids=[torch.cat(m) for m in mids], Z=torch.cat(zs), features=ids,
        depth=depth, mid_depth=mid_depth, token_ids=tokens[rows[:, 0], rows[:, 1]].cpu(), window=rows[:, 0], position=rows[:, 1],
    )


# ----------------------------------------------------------------------------- feature groups
def neuron_group(adapter, layer: int, indices: Sequence[int] | None = None) -> FeatureGroup:
    """MLP neurons (the mlp_hidden site) of block `layer`; all of them by default."""
    site = adapter.sites(layer).mlp_hidden
    d = adapter.site_dim(site)
    idx = list(range(d)) if indices is None else [adapter.check_index(site, int(i)) for i in indices]
    if not idx:
        raise ValueError(f"no neurons selected in layer {layer}")
    index = torch.tensor(idx)
    # W is only shape bookkeeping (k = len(idx)): the index fast path reads the columns.
    readout = Readout(W=torch.zeros(1, len(idx)), index=index)
    ids = tuple(FeatureId(adapter.store_name, site, FeatureKind.NEURON, i) for i in idx)
    return FeatureGroup(site, ids, readout)


def direction_group(adapter, site: str, directions: torch.Tensor, *, kind=FeatureKind.DIRECTION,
                    source: str = "", indices: Sequence[int] | None = None) -> FeatureGroup:
    """Features ``z = x . v`` for each row v of `directions` (k, d_site) at `site`.

    For importance, each direction writes ``v / ||v||^2`` (the component of x along v).
    """
    adapter.check_site(site)
    directions = torch.as_tensor(directions, dtype=torch.float32)
    if directions.ndim == 1:
        directions = directions[None]
    d = adapter.site_dim(site)
    if directions.ndim != 2 or directions.shape[1] != d:
        raise ValueError(f"directions must be (k, {d}) for {site}, got {tuple(directions.shape)}")
    norms = (directions ** 2).sum(1, keepdim=True)
    if (norms == 0).any():
        raise ValueError("a direction is all zeros: it defines no feature")
    idx = list(range(directions.shape[0])) if indices is None else list(indices)
    ids = tuple(FeatureId(adapter.store_name, site, kind, i, source) for i in idx)
    return FeatureGroup(site, ids, Readout(W=directions.T.contiguous(), write=directions / norms))
