"""Feature dashboards of stored dictionaries, as a job of their own (``interp dashboards``).

    from interp.store import Store
    from interp.jobs.dashboards import DashboardsJobConfig, run_dashboards
    run_dashboards(Store(), "smollm2-135m", ["smollm2-135m/L15-transcoder-topk-k16-x4-80k"])
    run_dashboards(Store(), "smollm2-135m", None, DashboardsJobConfig(tokens=16384), backend="ray")

It runs on the job interface (`interp.jobs.units`): one unit per stored dictionary, run here or
as a Ray task. A unit is not a shard of a dictionary's latents: the quantile samples of every
latent come from one seeded generator in latent order (`interp.dictionaries.dashboards` step 4),
so sharding would change which tokens are sampled with the shard size, and every shard would
repeat the model pass to the dictionary's site, which is most of a unit's time.

1. Plan: the dictionaries (named, or every one the store holds for the model; an unknown name
   is refused before the model loads, naming the stored ones) and the held-out windows, read
   once on the driver and sent with the job, so every worker sees the same tokens. A unit whose
   completion marker (``results`` name ``dashboards``, key `marker_key`) holds the same
   settings - corpus, windows, `DashboardConfig`, and the run that stored the dictionary, so a
   retrained dictionary is redone - is skipped.
2. Per unit: load the dictionary, `feature_dashboards` over the windows, then write
   ``features`` (columns other jobs set on the same rows, e.g. a label, are kept),
   ``feature_tokens`` and ``activation_examples``, and the marker last: a unit killed half-way
   has no marker and is computed again by the next run (the store's latest-wins replace lets
   the redone rows supersede the partial ones).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import pandas as pd
import torch

from interp.dictionaries.activations import ARTEFACT_POSITIONS
from interp.dictionaries.dashboards import DashboardConfig, feature_dashboards, write_dashboards
from interp.jobs.units import ModelJob, Unit, run_job
from interp.store.schema import IDENTITY_COLS

MARKER = "dashboards"
"""The ``results`` name of a unit's completion marker."""


@dataclass(frozen=True)
class DashboardsJobConfig:
    """Which held-out tokens the dashboards read."""

    tokens: int = 8192
    """Held-out tokens the dashboards read (whole windows, the skipped positions not counted)."""
    corpus: str = "imdb"
    """Corpus name (`interp.corpus.CORPORA` or a text:/jsonl: form); its held-out split is read."""
    ctx_len: int = 128
    """Tokens per window, BOS included (capped at the model's context)."""
    corpus_seed: int = 1
    """Seed of the corpus shuffle (1: the windows `interp train` reads for dashboards at its default seed 0)."""
    skip_positions: int = ARTEFACT_POSITIONS
    """Leading positions of each window never picked as examples (BOS and the attention-sink artefact)."""
    batch_size: int = 8
    """Windows per forward pass."""

    def __post_init__(self) -> None:
        if self.ctx_len < 3 or not 1 <= self.skip_positions <= self.ctx_len - 2:
            raise ValueError(f"need ctx_len >= 3 and skip_positions in 1..ctx_len - 2, got ctx_len {self.ctx_len}, "
                             f"skip_positions {self.skip_positions}")
        if self.tokens < self.ctx_len:
            raise ValueError(f"tokens must be >= ctx_len ({self.ctx_len}), got {self.tokens}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")


@dataclass(frozen=True)
class DictionaryUnit:
    """What a worker needs to find one dictionary in the store."""

    name: str
    path: str | None
    """The dictionary's folder, relative to the store root (its ``dictionaries`` row's path)."""
    site: str
    """Its input hook: the site its latents are read at and recorded under."""
    run_id: str
    """The run that stored it (a retrained dictionary is a new run: its dashboards are redone)."""


@dataclass
class DashboardsSummary:
    """What `run_dashboards` did."""

    run_id: str
    done: list[str] = dataclasses.field(default_factory=list)
    """Names of the dictionaries whose dashboards were computed."""
    skipped: list[str] = dataclasses.field(default_factory=list)
    """Names of the dictionaries whose dashboards were already stored with these settings."""
    n_latents: int = 0
    n_examples: int = 0
    n_tokens: int = 0
    seconds: float = 0.0


def marker_key(model: str, name: str) -> str:
    return f"{model}|{name}"


def marker_settings(corpus: dict, skip_positions: int, dictionary_run: str, dashboard: DashboardConfig) -> dict:
    """What a dictionary's marker holds for its dashboards to count as done (as the store reads it back)."""
    return _plain({"corpus": corpus, "skip_positions": skip_positions, "dictionary_run": dictionary_run,
                   **dataclasses.asdict(dashboard)})


def write_marker(store, model: str, name: str, settings: dict, summary: dict, run_id: str) -> None:
    """The completion marker of dictionary `name`'s dashboards (written after them)."""
    store.write("results", [{"name": MARKER, "key": marker_key(model, name),
                             "payload": {"settings": settings, **summary}}], run_id=run_id)


def stored_dictionaries(store, model: str, names=None) -> pd.DataFrame:
    """The ``dictionaries`` rows of `model` (store name), all or `names`; an unknown name is refused
    with one line naming the stored ones."""
    rows = store.read("dictionaries", where={"model": model}, columns=["name", "site", "path", "run_id"])
    if names is None:
        if rows.empty:
            raise ValueError(f"no dictionaries of model {model!r} in store {store.root}; train one with interp train")
        return rows.sort_values("name").reset_index(drop=True)
    unknown = [n for n in names if n not in set(rows["name"])]
    if unknown:
        stored = ", ".join(sorted(rows["name"])) or "none (train one with interp train)"
        raise ValueError(f"unknown dictionar{'y' if len(unknown) == 1 else 'ies'} {', '.join(map(repr, unknown))} "
                         f"for model {model!r}; stored: {stored}")
    return rows.set_index("name").loc[list(dict.fromkeys(names))].reset_index()


class DashboardsJob(ModelJob):
    """Feature dashboards on the job interface: one unit per stored dictionary (module docstring)."""

    command = "interp dashboards"

    def __init__(self, model, dictionaries=None, config: DashboardsJobConfig = DashboardsJobConfig(),
                 dashboard: DashboardConfig = DashboardConfig(), device: str = "auto",
                 windows: torch.Tensor | None = None) -> None:
        super().__init__(model, device)
        self.names = None if dictionaries is None else tuple(dictionaries)
        self.job, self.dashboard, self.windows = config, dashboard, windows
        self.corpus: dict | None = None

    def config(self) -> dict:
        return {"model": self.model_name, "dictionaries": None if self.names is None else list(self.names),
                "device": self.device, **dataclasses.asdict(self.job), **dataclasses.asdict(self.dashboard)}

    def provenance(self) -> dict:
        return {"corpus": {"name": self.job.corpus, "split": "heldout", "ctx_len": self.job.ctx_len,
                           "tokens": self.job.tokens, "seed": self.job.corpus_seed}, "seed": self.dashboard.seed}

    def settings(self, unit: DictionaryUnit) -> dict:
        """What a unit's marker must hold for the unit to count as done."""
        return marker_settings(self.corpus, self.job.skip_positions, unit.run_id, self.dashboard)

    def plan(self, store, run_id: str, force: bool) -> tuple[list[Unit], list[str]]:
        """Step 1: the dictionaries, the windows (once, sent with the job), the units without a marker."""
        adapter = self.model()
        rows = stored_dictionaries(store, adapter.store_name, self.names)
        specs = [DictionaryUnit(r.name, r.path, adapter.check_site(r.site), r.run_id) for r in rows.itertuples()]
        self._read_windows(adapter)
        keys = [marker_key(adapter.store_name, s.name) for s in specs]
        found = store.read("results", where={"name": MARKER, "key": keys}, columns=["key", "payload"])
        marked = {k: json.loads(p).get("settings") for k, p in zip(found["key"], found["payload"])}
        done = set() if force else {s.name for s, k in zip(specs, keys) if marked.get(k) == self.settings(s)}
        units = [Unit(s.name, s) for s in specs if s.name not in done]
        if units:
            adapter.record(store, run_id)
        return units, [s.name for s in specs if s.name in done]

    def _read_windows(self, adapter) -> None:
        from interp.corpus import token_windows

        if self.windows is not None:
            self.windows = torch.as_tensor(self.windows)
            self.corpus = {"windows": list(self.windows.shape), "checksum": int(self.windows.sum())}
            return
        config = self.job
        ctx = min(config.ctx_len, adapter.info.n_ctx)
        n_windows = -(-config.tokens // (ctx - config.skip_positions))  # counted as `interp train` counts them
        windows = token_windows(config.corpus, adapter.tokenizer, split="heldout", ctx_len=ctx,
                                max_tokens=n_windows * ctx, seed=config.corpus_seed)
        self.windows, self.corpus = windows.tokens, windows.describe()

    def run(self, store, unit: Unit, run_id: str) -> dict:
        """Step 2 for one dictionary: its dashboards, then the marker."""
        from interp.dictionaries.io import load_dictionary_dir

        adapter, spec = self.model(), unit.spec
        dictionary, _ = load_dictionary_dir(store.dictionary_folder(spec.name, spec.path))
        data = feature_dashboards(adapter, dictionary.eval(), self.windows, spec.site, spec.name, self.dashboard,
                                  batch_size=self.job.batch_size, skip=self.job.skip_positions)
        data.features = _keep_stored_columns(store, data.features)
        write_dashboards(store, data, run_id)
        summary = {"n_latents": len(data.features), "n_examples": len(data.activation_examples)}
        write_marker(store, adapter.store_name, spec.name, self.settings(spec), summary, run_id)
        return summary


def _plain(value):
    """`value` as it reads back from the store's JSON (tuples as lists)."""
    return json.loads(json.dumps(value))


def _keep_stored_columns(store, features: pd.DataFrame) -> pd.DataFrame:
    """`features` with the columns the dashboards do not set (a label, a complexity) of rows already
    stored, so that rewriting a dictionary's dashboards does not erase what other jobs wrote."""
    first = features.iloc[0]
    stored = store.read("features", where={c: first[c] for c in ("model", "site", "kind", "source")})
    stored = stored.drop(columns=["run_id", *(c for c in features.columns if c not in IDENTITY_COLS)],
                         errors="ignore").dropna(axis=1, how="all")
    if stored.empty or len(stored.columns) == len(IDENTITY_COLS):
        return features
    return features.merge(stored, on=list(IDENTITY_COLS), how="left")


def run_dashboards(store, model, dictionaries=None, config: DashboardsJobConfig = DashboardsJobConfig(),
                   dashboard: DashboardConfig = DashboardConfig(), *, windows: torch.Tensor | None = None,
                   force: bool = False, progress: bool = True, backend: str = "local", address: str | None = None,
                   device: str = "auto") -> DashboardsSummary:
    """Dashboards of `dictionaries` (names; None: every stored dictionary) of `model` (a name, or a
    loaded `ModelAdapter` for the local backend); see the module docstring.

    `windows`: (n, ctx) BOS-prefixed token windows to read instead of the configured corpus.
    """
    import time

    from interp.models.registry import store_model_name

    start = time.perf_counter()
    name = store_model_name(model) if isinstance(model, str) else model.store_name
    stored_dictionaries(store, name, dictionaries)  # refused before the model loads
    job = DashboardsJob(model, dictionaries, config, dashboard, device, windows)
    outcome = run_job(store, job, backend=backend, address=address, progress=progress, force=force)
    done = [outcome.done[key] for key in sorted(outcome.done)]
    n_tokens = int(job.windows.shape[0] * (job.windows.shape[1] - config.skip_positions))
    return DashboardsSummary(outcome.run_id, sorted(outcome.done), list(outcome.skipped),
                             sum(d["n_latents"] for d in done), sum(d["n_examples"] for d in done), n_tokens,
                             time.perf_counter() - start)
