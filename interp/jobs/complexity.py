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

import pandas as pd
import torch

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
    summary = summarise(adapter, acts, frame, timings)
    return ComplexityRun(acts, result, imp, flow, frame, summary)


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
    ok = frame[frame["K"].notna()]
    out = {"n_features": len(frame), "n_constant": int(frame["K"].isna().sum()), "n_samples": int(acts.Z.shape[0]),
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
                      "top_tokens": _top_tokens(adapter, acts, i)} for i, r in part.iterrows()]
    return out


def _save(store, run: ComplexityRun, run_id: str) -> None:
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
                   store=None, progress=None, command: str | None = None) -> ComplexityRun:
    """The whole job: load, select, score and (when `store` is given) store. See module docstring.

    With a store, the run is opened before scoring, so its started_at is when the work began.
    """
    from interp.corpus import token_windows
    from interp.models import load_model

    adapter = load_model(model) if isinstance(model, str) else model
    groups = feature_groups(adapter, features, store)
    windows = token_windows(config.corpus, adapter.tokenizer, split="heldout", ctx_len=config.ctx_len,
                            max_tokens=config.n_tokens, seed=config.seed)
    if store is None:
        return score(adapter, groups, windows.tokens, config, progress)
    corpus_info = {"name": config.corpus, "split": "heldout", "ctx_len": config.ctx_len,
                   "max_tokens": config.n_tokens, "n_windows": windows.n_windows, "seed": config.seed,
                   "positions_per_window": config.positions_per_window, "features": features}
    with store.run(command or f"complexity {features}", _run_config(config), corpus=corpus_info,
                   seed=config.seed) as run_id:
        run = score(adapter, groups, windows.tokens, config, progress)
        _save(store, run, run_id)
    return run


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
