"""Activation source for dictionary training: (input, target) pairs at model sites.

1. Run the model on token windows only as far as the deepest requested site
   (``stop_at_layer = layer + 1``), caching just those sites.
2. Drop the first `skip` positions of every window. BOS is always an outlier; on SmolLM2 the
   first token after BOS is one too: the norm of the residual stream entering layer 15, mean
   over 32 held-out IMDB windows with the family's BOS ``<|im_start|>``, is 25,070 at BOS, 733
   at position 1, 164 at position 2 and 152 (median) at positions >= 3; the MLP output there
   is 42 against 33. With ``<|endoftext|>`` as BOS positions 1 and 2 are worse (2,089, 910);
   with no BOS the first text token becomes the sink (23,521) and the next one stands out
   (925). A dictionary trained with position 1 spends its strongest latents on it. `ARTEFACT_POSITIONS` is the number the jobs drop; evaluation leaves those
   positions unspliced and dashboards never pick them, as SAELens excludes special tokens.
3. Hand out training batches through `ActivationBatches`, a deterministic shuffling buffer:
   the token windows are split into chunks of `buffer_windows`; chunk c is materialised
   (from the model or from an on-disk cache) and its tokens permuted with seed (seed, c).
   Batch ``step`` is a pure function of (seed, step), so a resumed run sees exactly the
   batches an uninterrupted one would, without replaying earlier chunks.
4. Optionally write all activations once to a safetensors file (`cache_activations`), so a
   sweep of several dictionaries over the same sites pays for one model pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
from tqdm.auto import tqdm

from interp.sites import layer_of

ARTEFACT_POSITIONS = 2
"""Leading positions (BOS and the token after it) kept out of training, evaluation and
dashboards by the jobs (see step 2 and `position_profile`)."""


def stop_layer(adapter, sites: Sequence[str]) -> int:
    """The `stop_at_layer` that still computes every site (the block after the deepest)."""
    layers = [layer_of(s) for s in sites]
    if any(layer is None for layer in layers):
        return adapter.info.n_layers
    return min(max(layers) + 1, adapter.info.n_layers)


@torch.no_grad()
def site_activations(adapter, tokens: torch.Tensor, sites: Sequence[str], *, batch_size: int = 8,
                     skip: int = 1, dtype: torch.dtype = torch.float32,
                     progress: bool = False) -> dict[str, torch.Tensor]:
    """Activations at `sites` for token windows (n, ctx) -> {site: (n * (ctx - skip), d)}.

    `skip`: leading positions dropped (1 = BOS). The model runs only up to the deepest site;
    rows are in window-major token order.
    """
    if tokens.ndim != 2 or tokens.shape[0] == 0:
        raise ValueError(f"tokens must be a non-empty (n_windows, ctx) tensor, got shape {tuple(tokens.shape)}")
    if not 0 <= skip < tokens.shape[1]:
        raise ValueError(f"skip must be in 0..{tokens.shape[1] - 1} for {tokens.shape[1]}-token windows, got {skip}")
    sites = [adapter.check_site(s) for s in sites]
    stop = stop_layer(adapter, sites)
    out: dict[str, list[torch.Tensor]] = {s: [] for s in sites}
    starts = range(0, tokens.shape[0], batch_size)
    for start in tqdm(starts, desc="activations", disable=not progress, leave=False):
        cache = adapter.run(tokens[start:start + batch_size], names=sites,
                            stop_at_layer=None if stop == adapter.info.n_layers else stop).cache
        for s in sites:
            act = cache[s][:, skip:]  # (batch, pos - skip, d)
            out[s].append(act.reshape(-1, act.shape[-1]).to(dtype).cpu())
    return {s: torch.cat(v) for s, v in out.items()}


def cache_activations(adapter, tokens: torch.Tensor, sites: Sequence[str], path: str | Path, *,
                      batch_size: int = 8, skip: int = 1, dtype: torch.dtype = torch.float32,
                      progress: bool = True) -> Path:
    """Compute activations at `sites` once and save them as one safetensors file at `path`."""
    from safetensors.torch import save_file

    acts = site_activations(adapter, tokens, sites, batch_size=batch_size, skip=skip, dtype=dtype,
                            progress=progress)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    save_file({s: a.contiguous() for s, a in acts.items()}, str(tmp),
              metadata={"model": adapter.name, "n_windows": str(tokens.shape[0]), "ctx": str(tokens.shape[1])})
    tmp.replace(path)
    return path


def load_cached_activations(path: str | Path, sites: Sequence[str]) -> dict[str, torch.Tensor]:
    """The activations saved by `cache_activations` (memory-mapped by safetensors)."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no activation cache at {path}; create it with cache_activations")
    with safe_open(str(path), framework="pt") as f:
        missing = [s for s in sites if s not in f.keys()]
        if missing:
            raise ValueError(f"activation cache {path} lacks sites {missing}; it holds {sorted(f.keys())}")
        return {s: f.get_tensor(s) for s in sites}


@dataclass
class ActivationBatches:
    """Deterministic shuffled (input, target) training batches (see the module docstring).

    `fetch(c)` returns chunk c as ``(x, y)``, each (n_tokens_c, d); for an SAE y is x.
    """

    fetch: Callable[[int], tuple[torch.Tensor, torch.Tensor]]
    n_chunks: int
    batch_size: int
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_chunks < 1 or self.batch_size < 1:
            raise ValueError(f"need n_chunks >= 1 and batch_size >= 1, got {self.n_chunks}, {self.batch_size}")
        self._chunk_id: int | None = None
        self._chunk: tuple[torch.Tensor, torch.Tensor] | None = None
        self._perm: torch.Tensor | None = None
        self._batches_per_chunk: int | None = None

    def _load(self, chunk_id: int) -> None:
        if self._chunk_id == chunk_id:
            return
        x, y = self.fetch(chunk_id % self.n_chunks)
        if x.shape[0] < self.batch_size:
            raise ValueError(f"activation chunk {chunk_id} has {x.shape[0]} tokens, fewer than one batch "
                             f"({self.batch_size}); use more tokens per chunk or a smaller batch")
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + chunk_id)
        self._perm = torch.randperm(x.shape[0], generator=g)
        self._chunk, self._chunk_id = (x, y), chunk_id
        self._batches_per_chunk = x.shape[0] // self.batch_size

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The (x, y) batch of training step `step`, each (batch_size, d) float32."""
        if self._batches_per_chunk is None:
            self._load(0)
        chunk_id, within = divmod(step, self._batches_per_chunk)
        self._load(chunk_id)
        idx = self._perm[within * self.batch_size:(within + 1) * self.batch_size]
        x, y = self._chunk
        xb = x[idx].float()
        return xb, (xb if y is x else y[idx].float())

    def pool(self, step: int, n_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Up to `n_tokens` shuffled (x, y) rows of the chunk that step `step` draws from (the
        candidates of TopK resampling: recent data, not always the first chunk)."""
        if self._batches_per_chunk is None:
            self._load(0)
        self._load(step // self._batches_per_chunk)
        idx = self._perm[:n_tokens]
        x, y = self._chunk
        xb = x[idx].float()
        return xb, (xb if y is x else y[idx].float())

    def sample(self, n_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Up to `n_tokens` (x, y) rows from the first chunk (for statistics such as the target mean)."""
        x, y = self.fetch(0)
        return x[:n_tokens].float(), (x[:n_tokens].float() if y is x else y[:n_tokens].float())


def in_memory_batches(x: torch.Tensor, y: torch.Tensor | None, batch_size: int, seed: int = 0) -> ActivationBatches:
    """Batches over activations already in memory (y=None or y is x: an SAE)."""
    if y is not None and y.shape[0] != x.shape[0]:
        raise ValueError(f"input and target row counts differ: {x.shape[0]} vs {y.shape[0]}")
    y = x if y is None else y
    return ActivationBatches(lambda c: (x, y), 1, batch_size, seed)


def model_batches(adapter, tokens: torch.Tensor, site_in: str, site_out: str, batch_size: int, *,
                  buffer_windows: int = 64, seed: int = 0, skip: int = 1) -> ActivationBatches:
    """Batches computed from the model on the fly, `buffer_windows` windows per shuffled chunk."""
    return shared_site_batches(adapter, tokens, [(site_in, site_out)], batch_size, buffer_windows=buffer_windows,
                               seed=seed, skip=skip)[0]


def shared_site_batches(adapter, tokens: torch.Tensor, pairs: Sequence[tuple[str, str]], batch_size: int, *,
                        buffer_windows: int = 64, seed: int = 0, skip: int = 1, keep_chunks: bool = False,
                        progress: bool = False) -> list[ActivationBatches]:
    """One `ActivationBatches` per (input site, target site) pair, all fed by one model pass.

    Chunk c runs the model once over its `buffer_windows` windows, caching every site of every
    pair; the last chunk is kept, so dictionaries stepped in lockstep (`train_dictionaries`)
    share it. An SAE pair (site, site) yields y is x. Batches of pair i are exactly those of
    ``model_batches`` on that pair alone (same seed, same chunking).

    `keep_chunks`: keep every computed chunk in memory, so that epochs after the first (a
    dictionary whose train_tokens exceed the windows' tokens) reuse the first pass instead of
    running the model again; costs n_tokens x (sum of the sites' widths) x 4 bytes.
    """
    n_chunks = max(1, tokens.shape[0] // buffer_windows)
    sites = list(dict.fromkeys(s for pair in pairs for s in pair))
    held: dict[str, object] = {"id": None, "acts": None}
    bar = tqdm(total=n_chunks, desc=f"activations ({len(sites)} sites)", disable=not progress, leave=False)

    kept: dict[int, dict[str, torch.Tensor]] = {}

    def chunk(c: int) -> dict[str, torch.Tensor]:
        if c in kept:
            return kept[c]
        if held["id"] != c:
            held["acts"] = None  # free the previous chunk before computing the next
            rows = tokens[c * buffer_windows:(c + 1) * buffer_windows]
            held["acts"], held["id"] = site_activations(adapter, rows, sites, skip=skip), c
            bar.update(1)
            if keep_chunks:
                kept[c] = held["acts"]
        return held["acts"]

    def fetcher(site_in: str, site_out: str):
        return lambda c: (chunk(c)[site_in], chunk(c)[site_out])

    return [ActivationBatches(fetcher(a, b), n_chunks, batch_size, seed) for a, b in pairs]


@torch.no_grad()
def position_profile(adapter, tokens: torch.Tensor, layers: Sequence[int], *, batch_size: int = 8) -> torch.Tensor:
    """(len(layers), ctx) median norm of the residual stream entering each layer, by position.

    The evidence behind `ARTEFACT_POSITIONS`: positions whose norm is far above the rest are
    attention-sink artefacts, not text.
    """
    names = [f"blocks.{layer}.hook_resid_pre" for layer in layers]
    norms: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    for start in range(0, tokens.shape[0], batch_size):
        cache = adapter.run(tokens[start:start + batch_size], names=names,
                            stop_at_layer=min(max(layers) + 1, adapter.info.n_layers)).cache
        for n in names:
            norms[n].append(cache[n].float().norm(dim=-1))  # (batch, pos)
    return torch.stack([torch.cat(norms[n]).median(0).values for n in names])


def artefact_prefix(profile: torch.Tensor, ratio: float = 2.0) -> int:
    """Number of leading positions whose norm exceeds `ratio` x the median over all positions
    at any layer of `profile` ((n_layers, ctx), from `position_profile`)."""
    typical = profile.median(-1, keepdim=True).values  # (n_layers, 1)
    high = (profile > ratio * typical).any(0)  # (ctx,)
    n = 0
    while n < high.shape[0] and bool(high[n]):
        n += 1
    return n
