"""The complexity job: select features, collect, score, rank against importance, store.

Steps of `run_complexity` (each is a function of its own, usable from a notebook):

1. Held-out windows of a corpus (`interp.corpus.token_windows`, split "heldout").
2. `collect_activations` - one pass: residual streams h_0.., resid_mid of each block (for
   the layer flow) and the features, at sampled positions.
3. `feature_complexity` - closed-form ridge V-information curves, K, first decodable layer.
4. `feature_importance` on a subset of the windows; Spearman rho(K, importance).
5. `layer_flow` - embedding carry vs attention vs MLP writes.
6. Store (`interp.methods.complexity.store`): per-feature rows, a summary (distribution,
   examples, correlations, timings) and figure json in ``results``, with the run's
   provenance (corpus slice, tokens, seed, grid).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from types import SimpleNamespace

import pandas as pd
import torch

from interp.jobs.units import ModelJob, Unit, resolve_device, run_job, worker_model
from interp.methods.complexity.vinfo import ComplexityConfig, ComplexityResult, feature_complexity
from interp.methods.complexity.activations import CollectConfig, FeatureActivations, collect_activations
from interp.methods.complexity.importance import (ImportanceConfig, LayerFlow, feature_importance, layer_flow,
                                               rank_correlation)
from interp.methods.complexity.selection import feature_groups
from interp.methods.complexity.store import save_complexity


@dataclass(frozen=True)
class RunConfig:
    """Settings of `run_complexity` (the CLI maps onto these fields)."""

    corpus: str = "imdb"
    """Corpus whose held-out split is used."""
    n_tokens: int = 40_000
    """Token budget of held-out windows run through the model."""
    ctx_len: int = 128
    """Window length (BOS included)."""
    positions_per_window: int | None = 32
    """Positions sampled per window for the probes (None: all)."""
    importance_windows: int = 24
    """Windows used for gradient x activation importance (0: skip importance)."""
    flow: bool = True
    """Also compute the layer flow (resid_mid decodability)."""
    seed: int = 0
    """Seed of the corpus shuffle, position sampling and split."""
    complexity: ComplexityConfig = field(default_factory=ComplexityConfig)

    def __post_init__(self) -> None:
        if self.n_tokens < 4 * self.ctx_len:
            raise ValueError(f"n_tokens={self.n_tokens} is too small: need at least 4 windows of {self.ctx_len}")
        if self.importance_windows < 0:
            raise ValueError(f"importance_windows must be >= 0, got {self.importance_windows}")


@dataclass
class ComplexityRun:
    """Everything one job produced."""

    activations: FeatureActivations
    result: ComplexityResult
    importance: torch.Tensor | None
    """(F,) mean |gradient x activation|, or None."""
    flow: LayerFlow | None
    frame: pd.DataFrame
    """One row per feature: identity, K, first layer, curve, importance, flow columns."""
    summary: dict
    run_id: str | None = None


def _bar(progress, desc: str):
    """`progress`: None/False (no bar), True (a tqdm bar labelled `desc`) or a wrapper used as given."""
    if progress is None or progress is False:
        return None
    if progress is True:
        from tqdm.auto import tqdm

        return lambda items: tqdm(items, desc=desc, unit="batch")
    return progress


def score(adapter, groups, tokens: torch.Tensor, config: RunConfig = RunConfig(), progress=None) -> ComplexityRun:
    """Steps 2-5 on given token windows (n_windows, ctx); nothing is stored.

    `progress`: True for labelled bars ("complexity: activations", "complexity: importance")."""
    run = score_features(adapter, groups, tokens, config, progress)
    run.summary = summarise(adapter, run.activations, run.frame, run.summary["timings"])
    return run


def score_features(adapter, groups, tokens: torch.Tensor, config: RunConfig = RunConfig(),
                   progress=None) -> ComplexityRun:
    """Steps 2-5 without the summary (whose correlations need every feature): a shard's scores.
    Its ``summary`` holds only the timings."""
    timings = {}
    t0 = time.perf_counter()
    acts = collect_activations(adapter, tokens, groups, CollectConfig(
        positions_per_window=config.positions_per_window, with_mid=config.flow, seed=config.seed),
        _bar(progress, "complexity: activations"))
    timings["collect_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    cfg = config.complexity
    result = feature_complexity(acts.hs, acts.Z, acts.depth, cfg, groups=acts.window)
    timings["score_s"] = time.perf_counter() - t0
    imp = flow = None
    if config.importance_windows:
        t0 = time.perf_counter()
        imp = feature_importance(adapter, tokens, groups, ImportanceConfig(max_windows=config.importance_windows),
                                 _bar(progress, "complexity: importance")).mean_abs
        timings["importance_s"] = time.perf_counter() - t0
    if config.flow and acts.mids:
        t0 = time.perf_counter()
        flow = layer_flow(acts.mids, acts.Z, result, acts.mid_depth, cfg, groups=acts.window)
        timings["flow_s"] = time.perf_counter() - t0
    frame = feature_frame(acts, result, imp, flow)
    return ComplexityRun(acts, result, imp, flow, frame, {"timings": timings})


def feature_frame(acts: FeatureActivations, result: ComplexityResult, importance=None, flow=None) -> pd.DataFrame:
    """One row per feature (identity columns + scores)."""
    rows = pd.DataFrame([f.to_record() for f in acts.features])
    rows["K"] = result.K.numpy()
    rows["first_decodable_layer"] = result.first_layer.numpy()
    rows["depth"] = result.depth.numpy()
    rows["curve"] = [[round(float(v), 6) for v in col[: int(d)]] for col, d in zip(result.curve.T, result.depth)]
    rows["importance"] = importance.numpy() if importance is not None else float("nan")
    rows["std"] = acts.Z.std(0).numpy()
    if flow is not None:
        rows["flow_embed"], rows["flow_attn"], rows["flow_mlp"] = flow.embed.numpy(), flow.attn.numpy(), flow.mlp.numpy()
    return rows


def _top_tokens(adapter, acts: FeatureActivations, col: int, k: int = 5) -> list[str]:
    """Tokens at which feature `col` is largest on the sampled positions."""
    top = acts.Z[:, col].topk(min(k, acts.Z.shape[0])).indices
    return [adapter.decode([int(acts.token_ids[i])]) for i in top]


def summarise(adapter, acts: FeatureActivations, frame: pd.DataFrame, timings: dict, n_examples: int = 8) -> dict:
    """Distribution, per-site stats, simplest / most complex examples, rho(K, importance)."""
    return frame_summary(frame, int(acts.Z.shape[0]), timings, lambda i: _top_tokens(adapter, acts, i), n_examples)


def frame_summary(frame: pd.DataFrame, n_samples: int, timings: dict, top_tokens, n_examples: int = 8) -> dict:
    """`summarise` from a feature frame; `top_tokens(i)`: the top tokens of frame row `i`."""
    ok = frame[frame["K"].notna()]
    out = {"n_features": len(frame), "n_constant": int(frame["K"].isna().sum()), "n_samples": int(n_samples),
           "timings": {k: round(v, 2) for k, v in timings.items()}}
    out["K_quantiles"] = {str(q): float(ok["K"].quantile(q)) for q in (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)} if len(ok) else {}
    out["per_site"] = {site: {"n": int(len(g)), "K_mean": float(g["K"].mean()), "K_median": float(g["K"].median()),
                              "first_layer_median": float(g["first_decodable_layer"].median())}
                       for site, g in ok.groupby("site")}
    if ok["importance"].notna().any():
        rc = rank_correlation(torch.tensor(ok["K"].values), torch.tensor(ok["importance"].values))
        out["rank_correlation"] = {"rho": rc.rho, "pvalue": rc.pvalue, "n": rc.n, "ci": list(rc.ci)}
        out["rank_correlation_per_site"] = {}
        for site, g in ok.groupby("site"):
            if len(g) >= 3:
                r = rank_correlation(torch.tensor(g["K"].values), torch.tensor(g["importance"].values))
                out["rank_correlation_per_site"][site] = {"rho": r.rho, "pvalue": r.pvalue, "n": r.n,
                                                          "ci": list(r.ci)}
    for name, part in (("simplest", ok.nsmallest(n_examples, "K")), ("most_complex", ok.nlargest(n_examples, "K"))):
        out[name] = [{"site": r["site"], "index": int(r["index"]), "kind": r["kind"], "source": r["source"],
                      "K": float(r["K"]), "first_decodable_layer": int(r["first_decodable_layer"]),
                      "top_tokens": top_tokens(i)} for i, r in part.iterrows()]
    return out


def _save(store, run, run_id: str) -> None:
    from interp.viz.complexity import all_figures

    figures = {k: f.to_json() for k, f in all_figures(run).items()}
    summary = {**run.summary, "n_train": run.result.n_train, "n_test": run.result.n_test}
    save_complexity(store, run.frame, summary, figures, run_id)
    run.run_id = run_id


def _run_config(config: RunConfig) -> dict:
    return {**asdict(config), "lambda_grid": "alpha * n_train"}


def store_run(store, adapter, run: ComplexityRun, config: RunConfig, command: str, corpus_info: dict) -> str:
    """Store an already scored `run` as a run of its own (`run_complexity` opens its run before
    scoring instead); returns the run id."""
    cfg = {**_run_config(config), "n_train": run.result.n_train, "n_test": run.result.n_test}
    with store.run(command, cfg, corpus=corpus_info, seed=config.seed) as run_id:
        _save(store, run, run_id)
    return run_id


def run_complexity(model="smollm2-135m", features: str = "neurons:layers=2,8", config: RunConfig = RunConfig(),
                   store=None, progress=None, command: str | None = None, *, shard_size: int | None = None,
                   backend: str = "local", address: str | None = None, device: str = "auto"):
    """The whole job: load, select, score and (when `store` is given) store. See module docstring.

    With a store it is a job (`interp.jobs.units`) of feature shards (`shard_size` features of
    a ``neurons:`` or ``dict:`` query per shard, activations collected once per shard; None:
    one shard), run locally or as Ray tasks; each shard's scores are stored as they finish, so
    a rerun computes only the missing shards, and the per-feature rows, summary and figures
    are written from all shards at the end. The run opens before scoring, so its started_at
    is when the work began. Returns a `ComplexityRun` (one local shard) or an
    `AssembledComplexity` (several shards, or Ray).
    """
    from interp.corpus import token_windows

    if store is None:
        adapter = worker_model(model, resolve_device(device)) if isinstance(model, str) else model
        groups = feature_groups(adapter, features, store)
        windows = token_windows(config.corpus, adapter.tokenizer, split="heldout", ctx_len=config.ctx_len,
                                max_tokens=config.n_tokens, seed=config.seed)
        return score(adapter, groups, windows.tokens, config, progress)
    job = ComplexityJob(model, features, config, command, shard_size, device, progress)
    return run_job(store, job, backend=backend, address=address, progress=bool(progress)).finished


SHARD_NAME = "complexity_shard"
"""``results`` name of one stored feature shard (key ``<settings hash>/s<shard>``)."""


@dataclass
class AssembledComplexity:
    """A complexity run put together from stored shards (what `all_figures` and the CLI read)."""

    frame: pd.DataFrame
    summary: dict
    flow: object | None
    """pre, mid, post: (n_blocks, F) tensors, or None."""
    result: object
    """K: (F,) tensor; n_train, n_test."""
    run_id: str | None = None


class ComplexityJob(ModelJob):
    """Complexity on the job interface: one unit per feature shard."""

    def __init__(self, model, features: str, config: RunConfig, command: str | None, shard_size: int | None,
                 device: str = "auto", progress=None) -> None:
        super().__init__(model, device)
        if shard_size is not None and shard_size < 1:
            raise ValueError(f"shard_size must be >= 1 (or None: one shard), got {shard_size}")
        self.features, self.run_config, self.shard_size = features, config, shard_size
        self.command = command or f"complexity {features}"
        self._progress = progress
        self.keys: list[str] = []
        self._local: dict = {}

    def __getstate__(self) -> dict:
        return {**super().__getstate__(), "_progress": None, "_local": {}}  # workers show no bars

    def config(self) -> dict:
        return {**_run_config(self.run_config), "shard_size": self.shard_size, "device": self.device}

    def _windows(self, adapter):
        from interp.corpus import token_windows

        c = self.run_config
        return token_windows(c.corpus, adapter.tokenizer, split="heldout", ctx_len=c.ctx_len,
                             max_tokens=c.n_tokens, seed=c.seed)

    def provenance(self) -> dict:
        c = self.run_config
        windows = self._windows(self.model())
        return {"corpus": {"name": c.corpus, "split": "heldout", "ctx_len": c.ctx_len, "max_tokens": c.n_tokens,
                           "n_windows": windows.n_windows, "seed": c.seed,
                           "positions_per_window": c.positions_per_window, "features": self.features},
                "seed": c.seed}

    def plan(self, store, run_id: str, force: bool):
        import hashlib
        import json

        adapter = self.model()
        queries = shard_queries(adapter, self.features, store, self.shard_size)
        fingerprint = hashlib.sha256(json.dumps({"model": adapter.store_name, "features": self.features,
                                                 "shard_size": self.shard_size, **_run_config(self.run_config)},
                                                sort_keys=True, default=str).encode()).hexdigest()[:16]
        self.keys = [f"{fingerprint}/s{i:04d}" for i in range(len(queries))]
        stored = set() if force else set(store.read("results", where={"name": SHARD_NAME, "key": self.keys},
                                                    columns=["key"])["key"])
        return ([Unit(k, q) for k, q in zip(self.keys, queries) if k not in stored],
                [k for k in self.keys if k in stored])

    def run(self, store, unit: Unit, run_id: str) -> int:
        adapter = self.model()
        groups = feature_groups(adapter, unit.spec, store)
        scored = score_features(adapter, groups, self._windows(adapter).tokens, self.run_config, self._progress)
        frame = scored.frame.copy()
        frame["top_tokens"] = [_top_tokens(adapter, scored.activations, i) for i in range(len(frame))]
        flow = None if scored.flow is None else {k: _plain(getattr(scored.flow, k).tolist())
                                                 for k in ("pre", "mid", "post")}
        payload = {"query": unit.spec, "frame": _plain(frame.to_dict("records")), "flow": flow,
                   "n_samples": int(scored.activations.Z.shape[0]), "n_train": scored.result.n_train,
                   "n_test": scored.result.n_test, "timings": scored.summary["timings"]}
        store.write("results", [{"name": SHARD_NAME, "key": unit.key, "payload": payload}], run_id=run_id)
        self._local[unit.key] = scored  # in this process (local backend): the caller gets the full run
        return len(frame)

    def finish(self, store, run_id: str, outcome):
        import json

        rows = store.read("results", where={"name": SHARD_NAME, "key": self.keys}, columns=["key", "payload"])
        by_key = {k: json.loads(p) if isinstance(p, str) else p for k, p in zip(rows["key"], rows["payload"])}
        parts = [by_key[k] for k in self.keys]
        frame = pd.DataFrame([r for p in parts for r in p["frame"]])
        for column in ("K", "importance", "std", "flow_embed", "flow_attn", "flow_mlp"):
            if column in frame:
                frame[column] = frame[column].astype(float)
        timings: dict = {}
        for p in parts:
            for name, seconds in p["timings"].items():
                timings[name] = timings.get(name, 0.0) + seconds
        summary = frame_summary(frame, parts[0]["n_samples"], timings, lambda i: frame.at[i, "top_tokens"])
        flow = None
        if all(p["flow"] is not None for p in parts):
            flow = SimpleNamespace(**{k: torch.tensor([[float("nan") if v is None else v for v in row]
                                                        for row in _hstack([p["flow"][k] for p in parts])])
                                      for k in ("pre", "mid", "post")})
        result = SimpleNamespace(K=torch.tensor(frame["K"].to_numpy()), n_train=parts[0]["n_train"],
                                 n_test=parts[0]["n_test"])
        assembled = AssembledComplexity(frame.drop(columns=["top_tokens"]), summary, flow, result)
        _save(store, assembled, run_id)
        local = [self._local.pop(k) for k in self.keys if k in self._local]
        if len(self.keys) == 1 and local:  # the whole run in this process: hand back everything
            local[0].summary, local[0].run_id = assembled.summary, run_id
            return local[0]
        return assembled


def _hstack(blocks: list[list[list]]) -> list[list]:
    """Row-wise concatenation of (n_blocks, F_i) nested lists."""
    return [sum((b[r] for b in blocks), []) for r in range(len(blocks[0]))]


def _plain(value):
    """JSON-safe: NaN -> None, numpy scalars -> Python numbers (floats keep every bit)."""
    import math

    import numpy as np

    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def shard_queries(adapter, features: str, store, size: int | None) -> list[str]:
    """`features` as queries of at most `size` features each: ``neurons:`` and ``dict:`` parts are
    split by index (one layer or dictionary per shard); other parts stay whole. None: one shard."""
    from interp.methods.complexity.selection import parse_ranges

    if size is None:
        return [features]
    out: list[str] = []
    for q in (q.strip() for q in features.split(";") if q.strip()):
        kind, _, rest = q.partition(":")
        if kind == "neurons":
            layers, _, idx = rest.removeprefix("layers=").partition(":")
            for layer in parse_ranges(layers):
                indices = parse_ranges(idx) if idx else list(range(adapter.info.d_mlp))
                out += [f"neurons:{layer}:{_ranges(c)}" for c in _chunks(indices, size)]
        elif kind == "dict":
            name, _, idx = rest.partition(":")
            group = feature_groups(adapter, f"dict:{rest}", store)[0]
            indices = [f.index for f in group.ids]
            out += [f"dict:{name}:{_ranges(c)}" for c in _chunks(indices, size)]
        else:
            out.append(q)
    return out


def _chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _ranges(indices: list[int]) -> str:
    """[0, 1, 2, 5] -> '0-2,5'."""
    parts, start = [], None
    for i, value in enumerate(indices):
        if start is None:
            start = value
        if i + 1 == len(indices) or indices[i + 1] != value + 1:
            parts.append(str(start) if start == value else f"{start}-{value}")
            start = None
    return ",".join(parts)


def quick_run(store, model="smollm2-135m", layers: tuple[int, ...] = (2, 8, 15), n_tokens: int = 24_000,
              progress=None) -> ComplexityRun:
    """The pipeline step: every neuron of a few layers on a small held-out slice, stored.

    About 1-2 minutes for SmolLM2 on 2 CPU cores (one pass to block max(layers), importance on
    16 windows). `model` may be an alias or a loaded adapter.
    """
    config = RunConfig(n_tokens=n_tokens, positions_per_window=32, importance_windows=16, flow=True)
    query = "neurons:layers=" + ",".join(str(l) for l in layers)
    return run_complexity(model, query, config, store=store, progress=progress,
                          command=f"complexity quick_run {query} --tokens {n_tokens}")
