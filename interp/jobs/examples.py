"""Corpus examples for every feature: top-k and quantile contexts and an activation histogram.

    from interp.store import Store
    from interp.jobs.examples import ExamplesJobConfig, collect_examples
    collect_examples(Store(), "smollm2-135m", ExamplesJobConfig(tokens=8192))
    collect_examples(Store(), "smollm2-135m", ExamplesJobConfig(layers_per_unit=15), backend="ray")

It runs on the job interface (`interp.jobs.units`): a job unit is one model pass over the
windows feeding a group of sites, so ``--backend ray`` spreads the groups over workers.

1. Plan the sites - one per set of features: every layer's MLP neurons
   (``blocks.L.mlp.hook_post``), every stored dictionary of the model (its latents, read
   at its input site through its encoder) and the stored ObsProp vectors of each (site,
   source) (their scores ``x . y`` at their site; `interp.jobs.examples_sites`). A unit whose completion marker holds the same
   settings (corpus, tokens, window length, `ExampleConfig`) is skipped: a finished layer is
   never recomputed, and a killed job reruns only the units without a marker.
2. One pass of the model over held-out corpus windows feeds every pending unit: each batch's
   activations at every needed site are kept in float16, the first `skip_positions` of each
   window dropped (BOS and the attention-sink artefact after it,
   `interp.dictionaries.activations.ARTEFACT_POSITIONS`); a dictionary's latents (an ObsProp
   site's scores) are computed from its site's activations as the batch passes. The pass stops after the deepest site's
   block and, when it runs to the end, unembeds only the last position. If the pending units
   would hold more than `max_memory_gib`, or span more than `layers_per_unit` layers, they are
   split into groups of whole sites, one pass per group (each a prefix of the model): each
   group is one unit of the job interface, run here or as a Ray task.
3. Per unit: `interp.methods.examples.stats.summarise` (vectorised over the unit's features),
   then `interp.methods.examples.store.write_unit` (examples, feature rows, histogram and
   direction bundle, marker) on a writer thread while the next unit is summarised; the
   activations of a unit are freed once it is written. A unit is marked done only after
   its rows are written, so a write that fails leaves it pending for the next run.

The job is one run in the store (`Store.run`): done, failed naming its failed units, or
cancelled. Every site's marker is written after its rows, so a group killed half-way leaves its
finished sites done and a rerun computes only the rest.
"""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from interp.dictionaries.activations import ARTEFACT_POSITIONS
from interp.jobs.examples_sites import (Site, dictionary_units, neuron_units, obsprop_units, with_encoder,
                                        write_directions)
from interp.jobs.units import ModelJob, Unit, run_job
from interp.methods.examples.stats import ExampleConfig, summarise
from interp.methods.examples.store import done_units, stored_features, write_unit
from interp.store.read.examples import marker_key

GIB = 2 ** 30


@dataclass(frozen=True)
class ExamplesJobConfig:
    """Which tokens the examples job reads and which features it covers."""

    tokens: int = 8192
    """Corpus tokens the model reads (whole windows of ctx_len, BOS included)."""
    corpus: str = "imdb"
    """Corpus name (`interp.corpus.CORPORA` or a text:/jsonl: form); its held-out split is read."""
    ctx_len: int = 128
    """Tokens per window (capped at the model's context)."""
    layers: tuple[int, ...] | None = None
    """Layers whose MLP neurons get examples (None: all)."""
    dictionaries: bool = True
    """Also every dictionary the store holds for the model."""
    obsprop: bool = True
    """Also every ObsProp vector the store holds for the model (scores ``x . y`` at its site)."""
    skip_positions: int = ARTEFACT_POSITIONS
    """Leading positions of each window never picked and left out of the statistics."""
    batch_size: int = 8
    """Windows per forward pass."""
    max_memory_gib: float = 2.0
    """Bound on the float16 activations held at once (beyond it: one pass per group of sites)."""
    layers_per_unit: int | None = None
    """Most layers one job unit (one model pass) covers; None: as many as `max_memory_gib` allows.
    Smaller units spread the job over Ray workers (each unit reads the model up to its deepest layer)."""
    corpus_seed: int = 1
    """Seed of the corpus shuffle."""

    def __post_init__(self) -> None:
        if self.ctx_len < 2 or not 1 <= self.skip_positions <= self.ctx_len - 2:
            raise ValueError(f"need ctx_len >= 3 and skip_positions in 1..ctx_len - 2, got ctx_len {self.ctx_len}, "
                             f"skip_positions {self.skip_positions}")
        if self.tokens < self.ctx_len:
            raise ValueError(f"tokens must be >= ctx_len ({self.ctx_len}), got {self.tokens}")
        if self.batch_size < 1 or not self.max_memory_gib > 0:
            raise ValueError(f"batch_size must be >= 1 and max_memory_gib > 0, got {self.batch_size}, "
                             f"{self.max_memory_gib}")
        if self.layers_per_unit is not None and self.layers_per_unit < 1:
            raise ValueError(f"layers_per_unit must be >= 1 (or None), got {self.layers_per_unit}")
        if self.layers is not None:
            object.__setattr__(self, "layers", tuple(int(layer) for layer in self.layers))


@dataclass
class ExamplesSummary:
    """What a job did."""

    run_id: str
    done: list[str] = field(default_factory=list)
    """Marker keys of the units computed."""
    skipped: list[str] = field(default_factory=list)
    """Marker keys of the units already complete in the store."""
    n_examples: int = 0
    n_tokens: int = 0
    passes: int = 0
    seconds: float = 0.0
    forward_seconds: float = 0.0


def _windows(adapter, config: ExamplesJobConfig) -> torch.Tensor:
    from interp.corpus import token_windows

    ctx = min(config.ctx_len, adapter.info.n_ctx)
    n_windows = -(-config.tokens // ctx)
    return token_windows(config.corpus, adapter.tokenizer, split="heldout", ctx_len=ctx,
                         max_tokens=n_windows * ctx, seed=config.corpus_seed).tokens[:n_windows]


def _groups(units: list[Site], n_tokens: int, max_bytes: float, max_layers: int | None = None) -> list[list[Site]]:
    """Consecutive sites (by layer) whose float16 activations fit `max_bytes` together and
    that span at most `max_layers` layers."""
    groups: list[list[Site]] = [[]]
    used = 0
    for unit in sorted(units, key=lambda u: (u.layer, u.source)):
        size = 2 * n_tokens * unit.n_features
        layers = {u.layer for u in groups[-1]} | {unit.layer}
        if groups[-1] and (used + size > max_bytes or (max_layers is not None and len(layers) > max_layers)):
            groups.append([])
            used = 0
        groups[-1].append(unit)
        used += size
    return [g for g in groups if g]


@torch.no_grad()
def _pass(adapter, windows: torch.Tensor, units: list[Site], config: ExamplesJobConfig,
          progress: bool) -> tuple[dict[int, torch.Tensor], float]:
    """Step 2: unit position -> (n_windows, ctx - skip, n_features) float16 activations; seconds."""
    skip, (n, ctx) = config.skip_positions, windows.shape
    sites = sorted({u.site for u in units})
    deepest = max(u.layer for u in units)
    stop = deepest + 1 if deepest + 1 < adapter.info.n_layers else None
    held = {i: torch.empty(n, ctx - skip, u.n_features, dtype=torch.float16) for i, u in enumerate(units)}
    seconds = 0.0
    for start in tqdm(range(0, n, config.batch_size), desc=f"examples ({len(units)} units)", disable=not progress,
                      leave=False):
        t0 = time.perf_counter()
        batch = windows[start:start + config.batch_size]
        cache = adapter.run(batch, names=sites, stop_at_layer=stop, last_position=stop is None).cache
        for i, unit in enumerate(units):
            act = cache[unit.site][:, skip:].float()  # (batch, ctx - skip, d_site)
            if unit.encoder is not None:
                act = unit.encoder.encode(act)  # (batch, ctx - skip, n_features)
            held[i][start:start + len(batch)] = act.to(torch.float16)
        seconds += time.perf_counter() - t0
    return held, seconds


def settings_of(config: ExamplesJobConfig, examples: ExampleConfig, ctx: int, n_tokens: int) -> dict:
    """What a unit's marker must hold for the unit to count as done."""
    return {"corpus": config.corpus, "corpus_seed": config.corpus_seed, "ctx_len": ctx, "n_tokens": n_tokens,
            "skip_positions": config.skip_positions, **dataclasses.asdict(examples)}


@dataclass
class GroupResult:
    """What one unit (one model pass over a group of sites) did."""

    markers: list[str]
    n_examples: int
    forward_seconds: float


class ExamplesJob(ModelJob):
    """The examples job on the job interface: one unit per model pass over a group of sites."""

    command = "interp examples"

    def __init__(self, model, config: ExamplesJobConfig = ExamplesJobConfig(),
                 examples: ExampleConfig = ExampleConfig(), windows: torch.Tensor | None = None,
                 device: str = "auto", progress: bool = True) -> None:
        super().__init__(model, device)
        self.job, self.examples, self.windows, self.progress = config, examples, windows, progress
        self.skipped: list[str] = []
        self.n_tokens = 0
        self._vocab = None

    def config(self) -> dict:
        return {"model": self.model_name, **dataclasses.asdict(self.job), **dataclasses.asdict(self.examples)}

    def provenance(self) -> dict:
        return {"corpus": {"name": self.job.corpus, "split": "heldout", "ctx_len": self.job.ctx_len,
                           "tokens": self.job.tokens, "seed": self.job.corpus_seed}, "seed": self.examples.seed}

    def _settings(self) -> dict:
        return settings_of(self.job, self.examples, int(self.windows.shape[1]), self.n_tokens)

    def plan(self, store, run_id: str, force: bool) -> tuple[list[Unit], list[str]]:
        """Step 1: the windows (once, sent with the job), pending sites in groups (step 2's passes)."""
        adapter, config = self.model(), self.job
        name = adapter.store_name
        layers = config.layers if config.layers is not None else tuple(range(adapter.info.n_layers))
        for layer in layers:
            adapter.check_layer(layer)
        windows = _windows(adapter, config) if self.windows is None else self.windows
        self.windows = windows = torch.as_tensor(windows)
        if windows.ndim != 2 or windows.shape[1] < config.skip_positions + 2:
            raise ValueError(f"windows must be (n, ctx) with ctx >= {config.skip_positions + 2}, "
                             f"got {tuple(windows.shape)}")
        self.n_tokens = int(windows.shape[0] * (windows.shape[1] - config.skip_positions))
        sites = (neuron_units(adapter, layers) + (dictionary_units(store, adapter) if config.dictionaries else [])
                 + (obsprop_units(store, adapter) if config.obsprop else []))
        keys = {id(u): marker_key(name, u.site, u.source) for u in sites}
        finished = set() if force else done_units(store, list(keys.values()), self._settings())
        self.skipped = sorted(finished & set(keys.values()))
        pending = [u.without_encoder() for u in sites if keys[id(u)] not in finished]
        if pending:
            adapter.record(store, run_id)
        groups = _groups(pending, self.n_tokens, config.max_memory_gib * GIB, config.layers_per_unit)
        units = [Unit(f"layers {g[0].layer}-{g[-1].layer} ({len(g)} sites)", tuple(g)) for g in groups]
        return units, self.skipped

    def run(self, store, unit: Unit, run_id: str) -> GroupResult:
        """Steps 2-3 for one group: one model pass, then each site summarised and written."""
        adapter, config = self.model(), self.job
        name = adapter.store_name
        group = [with_encoder(store, adapter, site) for site in unit.spec]
        if self._vocab is None:
            from interp.jobs.neuron_map_unit import vocab_strings

            self._vocab = vocab_strings(adapter)
        stored = stored_features(store, name)  # one read for every site's merge
        held, seconds = _pass(adapter, self.windows, group, config, self.progress)
        result = GroupResult([], 0, seconds)
        # One writer thread: a site's rows are encoded and written while the next site's
        # statistics are computed; at most one write waits, so memory holds two sites' rows.
        with ThreadPoolExecutor(1, thread_name_prefix="examples-writer") as writer:
            waiting: Future | None = None
            for i, site in enumerate(group):
                acts = held.pop(i).float()  # float16 arithmetic is slow on CPUs
                stats = summarise(acts, self.examples, offset=config.skip_positions,
                                  positive_only=site.positive_only)
                if waiting is not None:
                    result.n_examples += waiting.result()  # re-raises a failed write
                waiting = writer.submit(write_unit, store, run_id, site.record(name), self.windows, acts, stats,
                                        self.examples, config.skip_positions, self._vocab,
                                        write_directions(adapter, site), self._settings(),
                                        stored.get((site.site, site.kind, site.source)), site.kept())
                result.markers.append(marker_key(name, site.site, site.source))
                del acts, stats
            if waiting is not None:
                result.n_examples += waiting.result()
        return result

    def cpus_per_unit(self) -> float:
        import os

        return max(1, min(2, os.cpu_count() or 1))


def collect_examples(store, model, config: ExamplesJobConfig = ExamplesJobConfig(),
                     examples: ExampleConfig = ExampleConfig(), *, windows: torch.Tensor | None = None,
                     force: bool = False, progress: bool = True, backend: str = "local",
                     address: str | None = None, device: str = "auto") -> ExamplesSummary:
    """Run the job for one model (a name, or a loaded `ModelAdapter` for the local backend);
    see the module docstring.

    `windows`: (n, ctx) BOS-prefixed token windows to read instead of the configured corpus.
    """
    start = time.perf_counter()
    job = ExamplesJob(model, config, examples, windows, device, progress and backend == "local")
    outcome = run_job(store, job, backend=backend, address=address, progress=progress, force=force)
    done = [outcome.done[key] for key in sorted(outcome.done)]
    summary = ExamplesSummary(outcome.run_id, done=[m for r in done for m in r.markers], skipped=list(outcome.skipped),
                              n_examples=sum(r.n_examples for r in done), n_tokens=job.n_tokens, passes=len(done),
                              forward_seconds=sum(r.forward_seconds for r in done))
    summary.seconds = time.perf_counter() - start
    return summary


def pipeline_step(store, adapter, tokens: int) -> str:
    """The ``make run`` step: examples and histograms for every neuron (and stored latent) of `adapter`."""
    s = collect_examples(store, adapter, ExamplesJobConfig(tokens=tokens))
    return (f"corpus examples and histograms for {len(s.done)} units ({len(s.skipped)} already stored) over "
            f"{s.n_tokens:,} tokens in {s.passes} model pass(es): {s.n_examples:,} example rows in {s.seconds:.0f} s "
            f"(forward {s.forward_seconds:.0f} s)")
