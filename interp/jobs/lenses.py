"""Train a model's tuned lens on the corpus, compare it with the logit lens, store both.

    from interp.jobs.lenses import LensJobConfig, train_lens
    summary = train_lens(store, "smollm2-135m", TunedLensConfig(tokens=20_000), LensJobConfig())

1. Train windows: ``config.n_windows`` windows of the corpus's train split
   (`interp.corpus.token_windows`, deterministic by seed); held-out windows from the
   held-out split (documents training never sees).
2. Inside one store run (provenance: both configs, the train slice, the seed):
   `train_tuned_lens`, then `compare_lenses` on the held-out windows, then
   `save_tuned_lens` (the translators and a ``tuned_lens`` results row).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from interp.methods.lenses import LensComparison, TunedLensConfig, compare_lenses, train_tuned_lens
from interp.methods.lenses.store import save_tuned_lens


@dataclass(frozen=True)
class LensJobConfig:
    """The held-out evaluation of `train_lens`."""

    heldout_tokens: int = 504
    """Held-out tokens the two lenses are compared on (BOS excluded; rounded up to whole windows)."""
    heldout_ctx_len: int = 64
    """Tokens per held-out window, BOS included."""

    def __post_init__(self) -> None:
        if not isinstance(self.heldout_ctx_len, int) or self.heldout_ctx_len < 2:
            raise ValueError(f"heldout_ctx_len must be an int >= 2, got {self.heldout_ctx_len!r}")
        if not isinstance(self.heldout_tokens, int) or self.heldout_tokens < 1:
            raise ValueError(f"heldout_tokens must be a positive int, got {self.heldout_tokens!r}")

    @property
    def n_windows(self) -> int:
        return -(-self.heldout_tokens // (self.heldout_ctx_len - 1))


@dataclass(frozen=True)
class LensJobSummary:
    """What `train_lens` computed and where it is."""

    model: str
    run_id: str
    bundle: str
    comparison: LensComparison
    n_tokens: int
    train_seconds: float
    seconds: float
    """The whole job: windows, training, evaluation and writes."""


def _windows(adapter, corpus: str, split: str, ctx_len: int, n_windows: int, seed: int):
    from interp.corpus import token_windows

    return token_windows(corpus, adapter.tokenizer, split=split, ctx_len=ctx_len, max_tokens=n_windows * ctx_len,
                         seed=seed)


def train_lens(store, model, config: TunedLensConfig = TunedLensConfig(), job: LensJobConfig = LensJobConfig(),
               progress: bool = True) -> LensJobSummary:
    """Steps 1-2 for `model` (a name, or a loaded adapter)."""
    start = time.perf_counter()
    if isinstance(model, str):
        from interp.models import load_model

        model = load_model(model)
    train = _windows(model, config.corpus, "train", config.ctx_len, config.n_windows, config.seed)
    heldout = _windows(model, config.corpus, "heldout", job.heldout_ctx_len, job.n_windows, config.seed)
    with store.run("interp lens train", {"model": model.store_name, "train": config.to_dict(), "job": job.__dict__},
                   corpus={"train": train.describe(), "heldout": heldout.describe()}, seed=config.seed) as run_id:
        model.record(store, run_id)
        training = train_tuned_lens(model, train.tokens, config, progress=progress)
        comparison = compare_lenses(model, heldout.tokens, training.lens)
        bundle = save_tuned_lens(store, model, training, comparison, run_id,
                                 corpus={"train": train.describe(), "heldout": heldout.describe()})
    return LensJobSummary(model.store_name, run_id, bundle, comparison, training.n_tokens, training.seconds,
                          time.perf_counter() - start)
