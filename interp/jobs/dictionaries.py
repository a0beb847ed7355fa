"""End-to-end dictionary jobs: train, evaluate, save (SAELens format), publish to the store.

- `train_and_publish` - one dictionary (``interp train``), activations streamed from the model
  chunk by chunk (resumable from checkpoints, so ``--tokens 2000000`` fits in memory).
- `train_and_publish_many` / `pipeline_transcoders` - several dictionaries on one model pass:
  several layers, or several widths / k / architectures at one site (``interp train --k 16 32``),
  each chunk of activations computed once for all (the main job: seven TopK transcoders, layer
  15 the headline, for the circuit step).
- `run_sweep` - transcoders vs SAEs at several sparsities on one layer (``interp sweep``),
  the comparison of Dunefsky et al. (2024) Fig. 2: at matched L0, is the transcoder's spliced
  CE on par with an SAE's on the MLP output? One activation pass (cached on disk) feeds
  every dictionary; each result goes to the `dictionaries` table, the comparison table and
  its figure to `results` (name ``dictionary_sweep``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace

import pandas as pd
import torch

from interp.dictionaries.activations import ARTEFACT_POSITIONS, in_memory_batches, shared_site_batches
from interp.dictionaries.checkpoint import StoreCheckpoint
from interp.dictionaries.dashboards import DashboardConfig, feature_dashboards, write_dashboards
from interp.dictionaries.evaluation import (Baseline, DictionaryMetrics, EvalConfig, baseline, evaluate_dictionary,
                                         fits)
from interp.dictionaries.io import save_dictionary
from interp.dictionaries.train_config import K_ARCHS, TrainConfig
from interp.dictionaries.training import TrainResult, train_dictionaries
from interp.jobs.recipe import transcoder_recipe
from interp.jobs.units import ModelJob, Unit, run_job
from interp.store.files import check_name_fits


@dataclass(frozen=True)
class DataConfig:
    """Which tokens train and evaluate a dictionary."""

    corpus: str = "imdb"
    """Corpus name (`interp.corpus.CORPORA` or a text:/jsonl: form)."""
    ctx_len: int = 128
    """Tokens per window, BOS included."""
    activation_tokens: int | None = None
    """Distinct training tokens to compute activations for (None = the TrainConfig's
    train_tokens, one epoch); fewer than train_tokens means several epochs over them."""
    eval_tokens: int = 4096
    """Held-out tokens for the metrics (spliced CE costs 4 forward passes over them)."""
    dashboard_tokens: int = 8192
    """Held-out tokens for feature dashboards (0 = no dashboards)."""
    seed: int = 0
    """Seed of the corpus shuffle."""
    skip_positions: int = ARTEFACT_POSITIONS
    """Leading positions of each window kept out of training, evaluation and dashboards (BOS
    and the attention-sink artefact after it; `interp.dictionaries.activations`)."""
    buffer_windows: int = 128
    """Windows per shuffled activation chunk (computed from the model as training goes)."""

    def __post_init__(self) -> None:
        if not 1 <= self.skip_positions <= self.ctx_len - 2:
            raise ValueError(f"skip_positions must be in 1..ctx_len - 2 = {self.ctx_len - 2}, got {self.skip_positions}")
        if self.buffer_windows < 1:
            raise ValueError(f"buffer_windows must be >= 1, got {self.buffer_windows}")
        if self.ctx_len < 2 or self.eval_tokens < self.ctx_len:
            raise ValueError(f"need ctx_len >= 2 and eval_tokens >= ctx_len, got {self.ctx_len}, {self.eval_tokens}")
        if self.dashboard_tokens and self.dashboard_tokens < self.ctx_len:
            raise ValueError(f"dashboard_tokens must be 0 or >= ctx_len ({self.ctx_len}), got {self.dashboard_tokens}")


@dataclass
class PublishedDictionary:
    """What `train_and_publish` produced."""

    name: str
    site_in: str
    site_out: str
    metrics: DictionaryMetrics
    result: TrainResult
    run_id: str


def dictionary_sites(adapter, kind: str, layer: int, site: str | None = None) -> tuple[str, str]:
    """(input site, target site): a transcoder maps the MLP input to its output; an SAE
    reconstructs `site` (default: the MLP output)."""
    sites = adapter.sites(layer)
    if kind == "transcoder":
        if site is not None:
            raise ValueError("a transcoder's sites are fixed (MLP input -> MLP output); drop --site")
        return sites.mlp_in, sites.mlp_out
    site = adapter.check_site(site or sites.mlp_out)
    return site, site


def dictionary_name(model: str, layer: int, train: TrainConfig, site: str | None = None) -> str:
    """A readable store name, e.g. ``smollm2-135m/L15-transcoder-topk-k32-x8-200k``.

    `model`: the model's store name (`ModelAdapter.store_name`)."""
    sparsity = f"k{train.k}" if train.arch in K_ARCHS else f"l1-{train.l1:g}"
    where = f"L{layer}" if site is None else site.replace("blocks.", "b").replace(".", "-")
    skip = "-skip" if train.skip else ""
    return f"{model}/{where}-{train.kind}{skip}-{train.arch}-{sparsity}-x{train.expansion}-" \
           f"{train.train_tokens // 1000}k"


def _windows(adapter, data: DataConfig, split: str, n_tokens: int):
    from interp.corpus import token_windows

    # Windows hold ctx_len - skip_positions trainable tokens each.
    n_windows = -(-n_tokens // (data.ctx_len - data.skip_positions))
    if split == "train":  # whole activation chunks, so that one epoch covers n_tokens
        n_windows = -(-n_windows // _n_chunks(n_windows, data)) * _n_chunks(n_windows, data)
    return token_windows(data.corpus, adapter.tokenizer, split=split, ctx_len=data.ctx_len,
                         max_tokens=n_windows * data.ctx_len, seed=data.seed)


def _n_chunks(n_windows: int, data: DataConfig) -> int:
    """Activation chunks of at most `data.buffer_windows` windows, all of one size."""
    return -(-n_windows // data.buffer_windows)


def train_and_publish(adapter, store, train: TrainConfig, layer: int, *, site: str | None = None,
                      data: DataConfig = DataConfig(), name: str | None = None,
                      activations: dict[str, torch.Tensor] | None = None, shared: Baseline | None = None,
                      progress: bool = True, command: str = "interp train") -> PublishedDictionary:
    """Train one dictionary at `layer`, evaluate it on held-out tokens, save and publish it.

    `activations`: precomputed {site: (n, d)} training activations (a sweep passes its cache);
    otherwise they are computed from the model chunk by chunk as training goes (the model runs
    only up to `layer`; memory stays at one chunk, so `train.train_tokens` can be millions).
    `shared`: the clean and ablation passes of the evaluation, when several dictionaries share
    sites and tokens.
    """
    return train_and_publish_many(adapter, store, [train], [layer], sites=[site], data=data,
                                  names=[name] if name else None, activations=activations,
                                  shared={0: shared} if shared is not None else None, progress=progress,
                                  command=command)[0]


def train_and_publish_many(adapter, store, trains: list[TrainConfig], layers: list[int], *,
                           sites: list[str | None] | None = None, data: DataConfig = DataConfig(),
                           names: list[str] | None = None, activations: dict[str, torch.Tensor] | None = None,
                           shared: dict[int, Baseline] | None = None, eval_tokens: dict[int, int] | None = None,
                           progress: bool = True, command: str = "interp train") -> list[PublishedDictionary]:
    """Train one dictionary per (config, layer) on one shared model pass, then evaluate and publish each.

    Every dictionary sees the same training windows; each activation chunk is computed once,
    up to the deepest layer, for all of them (`shared_site_batches` + `train_dictionaries`).
    `eval_tokens`: held-out tokens per dictionary index (default `data.eval_tokens`).
    """
    sites = sites or [None] * len(trains)
    layers = [adapter.check_layer(layer) for layer in layers]
    pairs = [dictionary_sites(adapter, t.kind, layer, s) for t, layer, s in zip(trains, layers, sites)]
    names = names or [dictionary_name(adapter.store_name, layer, t, s) for t, layer, s in zip(trains, layers, sites)]
    for name in names:
        check_name_fits(name, store.root, what="dictionary name")  # before any training, not after
    n_act = data.activation_tokens or max(t.train_tokens for t in trains)
    train_windows = _windows(adapter, data, "train", n_act)
    with store.run(command, {"train": [t.to_dict() for t in trains], "data": data.__dict__,
                             "layers": layers, "names": names, "model": adapter.store_name},
                   corpus=train_windows.describe(), seed=trains[0].seed) as run_id:
        if activations is not None:
            batches = [in_memory_batches(activations[a], None if a == b else activations[b], t.batch_size, t.seed)
                       for t, (a, b) in zip(trains, pairs)]
        else:
            if len({(t.batch_size, t.seed) for t in trains}) > 1:
                raise ValueError("dictionaries trained on one model pass need one batch_size and seed; got "
                                 f"{sorted({(t.batch_size, t.seed) for t in trains})}")
            batches = shared_site_batches(adapter, train_windows.tokens, pairs, trains[0].batch_size,
                                          buffer_windows=len(train_windows.tokens) // _n_chunks(
                                              len(train_windows.tokens), data),
                                          seed=trains[0].seed, skip=data.skip_positions,
                                          keep_chunks=n_act < max(t.train_tokens for t in trains),
                                          progress=progress)
        dims = [tuple(t.shape[1] for t in b.sample(1)) for b in batches]
        device = None if adapter.device.type == "cpu" else adapter.device  # the model's GPU trains them too
        results = train_dictionaries(batches, trains, dims, progress=progress, device=device, checkpoints=[
            StoreCheckpoint(store, n) if t.checkpoint_every else None for t, n in zip(trains, names)])
        published = []
        for i, (result, layer, (site_in, site_out)) in enumerate(zip(results, layers, pairs)):
            n_eval = (eval_tokens or {}).get(i, data.eval_tokens)
            published.append(_publish(adapter, store, result, names[i], layer, site_in, site_out,
                                      replace(data, eval_tokens=n_eval), run_id, progress, (shared or {}).get(i)))
    return published


def _publish(adapter, store, result: TrainResult, name: str, layer: int, site_in: str, site_out: str,
             data: DataConfig, run_id: str, progress: bool, shared: Baseline | None) -> PublishedDictionary:
    if shared is None:
        shared = baseline(adapter, _windows(adapter, data, "heldout", data.eval_tokens).tokens, site_in, site_out,
                          EvalConfig(skip=data.skip_positions), progress=progress)
    metrics = evaluate_dictionary(adapter, result.dictionary, None, site_in, site_out,
                                  EvalConfig(skip=shared.skip), shared=shared, progress=progress)
    warn_if_no_fit(name, metrics)
    meta = {"model_name": adapter.name, "hook_name": site_in, "hook_name_out": site_out, "hook_layer": layer,
            "context_size": data.ctx_len, "prepend_bos": True, "dataset_path": data.corpus,
            "interp_kind": result.config.kind, "skip_positions": data.skip_positions,
            "training_arch": result.config.arch}
    folder = save_dictionary(store, name, result.dictionary, meta)
    if data.dashboard_tokens:  # before the row: the row is the dictionary's completion mark
        _inline_dashboards(adapter, store, result.dictionary, name, site_in, data, run_id)
    store.write("dictionaries", [{
        "name": name, "model": adapter.store_name, "site": site_in, "hook_out": site_out,
        "kind": result.config.kind,
        "arch": result.config.arch, "config": {"train": result.config.to_dict(), "data": data.__dict__},
        "metrics": {**metrics.to_dict(), "train_dead_fraction": result.dead_fraction,
                    "final_train": result.history[-1] if result.history else None},
        "path": str(folder.relative_to(store.root)),
    }], run_id=run_id)
    return PublishedDictionary(name, site_in, site_out, metrics, result, run_id)


def warn_if_no_fit(name: str, metrics: DictionaryMetrics) -> bool:
    """Warn (and return True) when a dictionary's held-out FVU is not below 1: it reconstructs its
    target no better than the target's mean, so its latents are not features of the model
    (a diverged run, e.g. the k-8 skip transcoder over 2M tokens in `interp.jobs.recipe.RECIPE_RESAMPLE_SCALE`'s note).
    It is still published, so that the run can be inspected."""
    if fits(metrics.fvu):
        return False
    warnings.warn(f"dictionary {name}: held-out FVU {metrics.fvu:.4g} is not below 1 (no better than the target's "
                  "mean): training did not fit or diverged; it is stored, but its latents are not features to read",
                  RuntimeWarning, stacklevel=2)
    return True


def _inline_dashboards(adapter, store, dictionary, name: str, site_in: str, data: DataConfig, run_id: str) -> None:
    """Training's own dashboards (held-out windows at seed + 1), with the marker `interp
    dashboards` writes for the same windows and settings, so that it does not redo them."""
    from interp.jobs.dashboards import marker_settings, write_marker

    windows = _windows(adapter, replace(data, seed=data.seed + 1), "heldout", data.dashboard_tokens)
    dashboard = DashboardConfig()
    dashboards = feature_dashboards(adapter, dictionary, windows.tokens, site_in, name, dashboard,
                                    skip=data.skip_positions)
    write_dashboards(store, dashboards, run_id)
    write_marker(store, adapter.store_name, name,
                 marker_settings(windows.describe(), data.skip_positions, run_id, dashboard),
                 {"n_latents": len(dashboards.features), "n_examples": len(dashboards.activation_examples)}, run_id)


PIPELINE_LAYERS = (3, 6, 9, 12, 15, 18, 21)
"""Layers of the main job's transcoders: every third block up to 21, so a circuit graph on the
demo prompt has latents at seven MLPs (error nodes stand in for the other blocks), with 15 -
the headline dictionary - among them."""


def pipeline_transcoders(adapter, store, layers: tuple[int, ...] | None = None, *, headline: int | None = None,
                         train_tokens: int = 80_000, other_train_tokens: int = 20_000, eval_tokens: int = 10_240,
                         other_eval_tokens: int = 512, dashboard_tokens: int = 4096, k: int = 16, expansion: int = 4,
                         epochs: int = 4, corpus: str = "imdb", progress: bool = True) -> list[PublishedDictionary]:
    """The main job's step: TopK transcoders at `layers` (default `PIPELINE_LAYERS`, scaled to
    the model's depth) trained together on one model pass. The `headline` layer (default 15,
    else the middle one) trains on `train_tokens` and is evaluated on `eval_tokens` held-out
    tokens; the others, there for the circuit, stop after `other_train_tokens` (the first
    batches of the same stream) and are evaluated on `other_eval_tokens`. Every latent gets
    dashboard data.

    `epochs`: passes of the headline dictionary over its `train_tokens` distinct tokens. The
    model pass is the budget's cost (~1 s per 1,000 tokens here) and a training step is cheap
    (~10 ms), so the activations are kept in memory and reused: on SmolLM2 layer 15 (80k
    tokens) 4 epochs took FVU 0.59 -> 0.51 and dead latents 49% -> 40% on held-out tokens
    (10 epochs: 0.49, 39%; both before the skip term and TopK resampling of `transcoder_recipe`,
    which took the same 4 epochs to dead 8%, FVU 0.31, CE recovered 0.95 -
    benchmarks/bench_transcoder_recipe.py)."""
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    n = adapter.info.n_layers
    layers = tuple(layers or sorted({min(n - 1, round(layer * n / 30)) for layer in PIPELINE_LAYERS}))
    headline = headline if headline is not None else (15 if 15 in layers else layers[len(layers) // 2])
    if headline not in layers:
        raise ValueError(f"headline layer {headline} is not among the trained layers {layers}")

    trains = [transcoder_recipe(train_tokens * epochs if layer == headline else min(train_tokens, other_train_tokens),
                                k=k, expansion=expansion) for layer in layers]
    data = DataConfig(corpus=corpus, eval_tokens=other_eval_tokens, dashboard_tokens=dashboard_tokens,
                      activation_tokens=train_tokens)
    return train_and_publish_many(adapter, store, trains, list(layers), data=data,
                                  eval_tokens={layers.index(headline): eval_tokens}, progress=progress,
                                  command="interp run")


@dataclass(frozen=True)
class SweepConfig:
    """Transcoders vs SAEs at several sparsities on one layer."""

    layer: int = 15
    """Block whose MLP is studied (SAEs sit on its output)."""
    ks: tuple[int, ...] = (8, 16, 32)
    """TopK sparsities (arch 'topk'); for relu/jumprelu use `l1s`."""
    l1s: tuple[float, ...] = ()
    """Sparsity coefficients for relu/jumprelu sweeps."""
    kinds: tuple[str, ...] = ("transcoder", "sae")
    """Which dictionary kinds to train at each sparsity."""
    train: TrainConfig = field(default_factory=lambda: TrainConfig(train_tokens=200_000))
    """Shared training settings (kind, k and l1 are overridden per run)."""
    data: DataConfig = field(default_factory=lambda: DataConfig(dashboard_tokens=0))
    """Tokens; the token budget is `train.train_tokens` (scale it up on a GPU)."""

    def __post_init__(self) -> None:
        if self.train.arch in K_ARCHS and not self.ks:
            raise ValueError(f"a {self.train.arch} sweep needs at least one k in ks")
        if self.train.arch not in K_ARCHS and not self.l1s:
            raise ValueError(f"a {self.train.arch} sweep needs at least one coefficient in l1s")
        bad = [k for k in self.kinds if k not in ("transcoder", "sae")]
        if bad or not self.kinds:
            raise ValueError(f"kinds must be a non-empty subset of ('transcoder', 'sae'), got {self.kinds}")

    def settings(self) -> list[TrainConfig]:
        values = self.ks if self.train.arch in K_ARCHS else self.l1s
        key = "k" if self.train.arch in K_ARCHS else "l1"
        return [replace(self.train, kind=kind, **{key: v}) for v in values for kind in self.kinds]


@dataclass
class SweepResult:
    """One row per trained dictionary plus the figure (plotly JSON)."""

    table: pd.DataFrame
    figure_json: str
    run_id: str


def _sweep_activations(adapter, config: SweepConfig, progress: bool) -> dict[str, torch.Tensor]:
    """The MLP input and output at the layer, computed once and cached on disk."""
    import hashlib
    import json

    from interp.dictionaries.activations import cache_activations, load_cached_activations
    from interp.paths import cache_dir

    sites = adapter.sites(config.layer)
    names = [sites.mlp_in, sites.mlp_out]
    n_act = config.data.activation_tokens or config.train.train_tokens
    windows = _windows(adapter, config.data, "train", n_act)
    key = json.dumps({"model": adapter.name, "sites": names, "data": config.data.__dict__, "n": n_act}, sort_keys=True)
    path = cache_dir() / "activations" / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.safetensors"
    if not path.is_file():
        cache_activations(adapter, windows.tokens, names, path, progress=progress)
    return load_cached_activations(path, names)


def _shared_baseline(adapter, tokens, sites: tuple[str, str], known: dict, progress: bool) -> Baseline:
    """The clean and ablation passes depend only on the target site: an SAE on a transcoder's
    target reuses the transcoder's passes with its own input (= the target activations)."""
    site_in, site_out = sites
    for (_, other_out), other in known.items():
        if site_in == site_out == other_out:
            return Baseline(other.tokens, site_in, site_out, [dict(b, x=b["y"]) for b in other.batches], other.skip)
    return baseline(adapter, tokens, site_in, site_out, progress=progress)


def run_sweep(adapter, store, config: SweepConfig = SweepConfig(), progress: bool = True, *,
              backend: str = "local", address: str | None = None, device: str = "auto") -> SweepResult:
    """Train and evaluate every (kind, sparsity) of `config`; store the comparison.

    A job (`interp.jobs.units`): one unit per dictionary, run locally or as Ray tasks; a
    dictionary already in the store with the same settings is not trained again, and the
    comparison is built from the stored dictionaries. `adapter`: a loaded `ModelAdapter` or a
    model name (the ray backend needs a name: workers load the model themselves).
    """
    return run_job(store, SweepJob(adapter, config, device), backend=backend, address=address,
                   progress=progress).finished


class SweepJob(ModelJob):
    """A sweep on the job interface: one unit per dictionary (its training, evaluation, publishing)."""

    command = "interp sweep"

    def __init__(self, model, config: SweepConfig, device: str = "auto") -> None:
        super().__init__(model, device)
        self.sweep = config
        self.names: list[str] = []

    def config(self) -> dict:
        c = self.sweep
        return {"layer": c.layer, "ks": list(c.ks), "l1s": list(c.l1s), "kinds": list(c.kinds),
                "train": c.train.to_dict(), "data": c.data.__dict__, "model": self.model_name, "device": self.device}

    def plan(self, store, run_id: str, force: bool):
        adapter = self.model()
        layer = adapter.check_layer(self.sweep.layer)
        settings = self.sweep.settings()
        self.store_name = adapter.store_name
        self.names = [dictionary_name(adapter.store_name, layer, t) for t in settings]
        stored = store.read("dictionaries", where={"model": adapter.store_name, "name": self.names},
                            columns=["name", "config"])
        by_name = dict(zip(self.names, settings))
        same = set() if force else {n for n, c in zip(stored["name"], stored["config"])
                                    if _same_settings(c, by_name[n], self.sweep.data)}
        units = [Unit(n, t) for n, t in zip(self.names, settings) if n not in same]
        if units:  # the activation cache is made once, here, before workers read it
            _sweep_activations(adapter, self.sweep, progress=False)
        return units, [n for n in self.names if n in same]

    def run(self, store, unit: Unit, run_id: str) -> str:
        adapter = self.model()
        train, layer = unit.spec, adapter.check_layer(self.sweep.layer)
        acts = _sweep_activations(adapter, self.sweep, progress=False)
        sites = dictionary_sites(adapter, train.kind, layer)
        shared = _worker_baseline(adapter, self.sweep, sites)
        pub = train_and_publish(adapter, store, train, layer, data=self.sweep.data, activations=acts, shared=shared,
                                progress=False, command="interp sweep")
        return pub.name

    def finish(self, store, run_id: str, outcome) -> SweepResult:
        import json

        from interp.viz.dictionaries import l0_vs_ce_figure

        found = store.read("dictionaries", where={"model": self.store_name, "name": self.names},
                           columns=["name", "metrics"]).set_index("name")
        rows = []
        for name, train in zip(self.names, self.sweep.settings()):
            m = found.loc[name, "metrics"]
            m = json.loads(m) if isinstance(m, str) else m
            rows.append({"name": name, "kind": train.kind, "arch": train.arch, "k": train.k, "l1": train.l1,
                         **{key: m[key] for key in ("l0", "fvu", "ce_clean", "ce_spliced", "delta_ce", "ce_recovered",
                                                    "ce_recovered_mean", "kl", "dead_fraction")}})
        table = pd.DataFrame(rows)
        config = self.sweep
        fig = l0_vs_ce_figure(table, title=f"{self.model_name} layer {config.layer}: transcoders vs MLP-out SAEs "
                                           f"({config.train.train_tokens // 1000}k training tokens)")
        key = f"{self.store_name}/L{config.layer}/{config.train.arch}"
        store.write("results", [{"name": "dictionary_sweep", "key": key,
                                 "payload": {"table": rows, "figure": fig.to_json(),
                                             "train_tokens": config.train.train_tokens}}], run_id=run_id)
        _BASELINES.clear()
        return SweepResult(table, fig.to_json(), run_id)


def _same_settings(stored_config, train: TrainConfig, data: DataConfig) -> bool:
    """Whether a stored dictionary was trained with `train` on `data` (a rerun skips it)."""
    import json

    c = json.loads(stored_config) if isinstance(stored_config, str) else stored_config
    return json.loads(json.dumps(c)) == json.loads(json.dumps({"train": train.to_dict(), "data": data.__dict__}))


_BASELINES: dict = {}
"""Per process: (model, sweep data, sites) -> the evaluation's shared passes (a worker reuses them)."""


def _worker_baseline(adapter, config: SweepConfig, sites: tuple[str, str]) -> Baseline:
    import json

    scope = (adapter.name, json.dumps(config.data.__dict__, sort_keys=True), config.layer)
    for key in [k for k in _BASELINES if k[:3] != scope]:  # one sweep's passes at a time
        del _BASELINES[key]
    known = {k[3]: b for k, b in _BASELINES.items()}
    if sites not in known:
        heldout = _windows(adapter, config.data, "heldout", config.data.eval_tokens).tokens
        _BASELINES[(*scope, sites)] = _shared_baseline(adapter, heldout, sites, known, progress=False)
    return _BASELINES[(*scope, sites)]
