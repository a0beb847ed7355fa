"""SAEBench-style evals of a stored dictionary on interp's labelled sets (``interp dict-eval``).

1. Read the dictionary (`interp.dictionaries.io.load_dictionary`) and its sites from the store.
2. Per labelled set (`interp.corpus.labelled_set`, balanced, binary; by default all three:
   sentiment, code_language, pronoun_occupation, each with at most `n_per_class` texts per
   class or as many as the set holds): pool the input and target activations and the latents
   of every text once (`pooled_activations`); split into the set's fixed test part and the
   rest for training (`LabelledSet.test_indices`; pronoun_occupation by occupation).
3. k-sparse probing per set (`sparse_probing`) and TPP across the sets
   (`targeted_probe_perturbation`, each set one task).
4. Meta-structure of the decoder (`meta_structure`; it needs no model pass and no text).
5. Store one ``results`` row per eval and dictionary (`interp.methods.dictionary_evals.store`);
   `interp.store.read.dictionary_evals` reads them back as tables.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from interp.methods.dictionary_evals.meta import MetaStructureConfig, MetaStructureResult, meta_structure
from interp.methods.dictionary_evals.pooled import PoolConfig, PooledActivations, pooled_activations
from interp.methods.dictionary_evals.probing import SparseProbingConfig, SparseProbingResult, sparse_probing
from interp.methods.dictionary_evals.tpp import TPPConfig, TPPResult, TPPTask, targeted_probe_perturbation
from interp.methods.dictionary_evals.store import save_meta, save_probing, save_tpp

EVALS = ("probing", "tpp", "meta")
TEXT_EVALS = ("probing", "tpp")
"""The evals that run the model on the labelled sets (meta reads only the decoder)."""


@dataclass(frozen=True)
class EvalDataConfig:
    """Which labelled texts the evals use."""

    datasets: tuple[str, ...] = ("sentiment", "code_language", "pronoun_occupation")
    """Binary labelled sets (`interp.corpus.LABELLED_SETS`); TPP needs at least two."""
    n_per_class: int = 200
    """Texts per class of each set, at most (a set holding fewer, as pronoun_occupation's 176, gives all it has)."""
    test_fraction: float = 0.25
    """Share of each class held out for the test accuracies."""
    seed: int = 0
    """Seed of the labelled sets' draws."""

    def __post_init__(self) -> None:
        from interp.corpus.labelled import LABELLED_SETS

        object.__setattr__(self, "datasets", tuple(self.datasets))
        bad = [d for d in self.datasets if d not in LABELLED_SETS]
        if bad or not self.datasets or len(set(self.datasets)) != len(self.datasets):
            raise ValueError(f"datasets must be distinct labelled sets from {', '.join(LABELLED_SETS)}; "
                             f"got {self.datasets!r}")
        if not isinstance(self.n_per_class, int) or self.n_per_class < 4:
            raise ValueError(f"n_per_class must be an int >= 4, got {self.n_per_class!r}")
        if not 0 < self.test_fraction < 1:
            raise ValueError(f"test_fraction must be in (0, 1), got {self.test_fraction!r}")


@dataclass
class DictionaryEvals:
    """What `evaluate_stored_dictionary` computed (None for an eval not asked for)."""

    name: str
    probing: list[SparseProbingResult] | None
    tpp: TPPResult | None
    meta: MetaStructureResult | None
    run_id: str


def _labelled_pools(adapter, dictionary, meta: dict, data: EvalDataConfig,
                    pool: PoolConfig) -> dict[str, tuple[PooledActivations, PooledActivations]]:
    from interp.corpus import labelled_set
    from interp.corpus.labelled import MAX_PER_CLASS

    out = {}
    for name in data.datasets:
        labelled = labelled_set(name, n_per_class=min(data.n_per_class, MAX_PER_CLASS[name]), seed=data.seed)
        pooled = pooled_activations(adapter, dictionary, labelled.texts, labelled.labels, meta["hook_name"],
                                    meta.get("hook_name_out") or meta["hook_name"], pool)
        test = labelled.test_indices(data.test_fraction)
        held = set(test)
        out[name] = (pooled.subset([i for i in range(len(labelled)) if i not in held]), pooled.subset(test))
    return out


def evaluate_stored_dictionary(adapter, store, name: str, evals: tuple[str, ...] = EVALS,
                               data: EvalDataConfig = EvalDataConfig(), pool: PoolConfig = PoolConfig(),
                               probing: SparseProbingConfig = SparseProbingConfig(),
                               tpp: TPPConfig = TPPConfig(), meta: MetaStructureConfig = MetaStructureConfig(),
                               command: str = "interp dict-eval") -> DictionaryEvals:
    """Steps 1-5 for store dictionary `name` (`evals`: a subset of `EVALS`; `adapter` may be None
    when only "meta" is asked for, which runs no model)."""
    from interp.dictionaries.io import load_dictionary
    from interp.models.registry import store_model_name

    bad = [e for e in evals if e not in EVALS]
    if bad or not evals:
        raise ValueError(f"evals must be a non-empty subset of {EVALS}, got {evals!r}")
    if "tpp" in evals and len(data.datasets) < 2:
        raise ValueError(f"TPP compares labelled sets: give at least 2 datasets, got {data.datasets!r}")
    if adapter is None and set(evals) & set(TEXT_EVALS):
        raise ValueError(f"evals {sorted(set(evals) & set(TEXT_EVALS))} run the model: give an adapter")
    dictionary, info = load_dictionary(store, name)
    largest = max(probing.ks[-1] if "probing" in evals else 0, tpp.ns[-1] if "tpp" in evals else 0)
    if largest > dictionary.d_sae:  # refused before the model runs
        raise ValueError(f"ks/ns go up to {largest} but {name!r} has {dictionary.d_sae} latents")
    if pool.skip is None:  # the positions the dictionary was trained without
        pool = replace(pool, skip=int(info.get("skip_positions", 1)))
    model = adapter.store_name if adapter is not None else store_model_name(info.get("model_name") or "")
    settings = {"data": asdict(data), "pool": asdict(pool), "probing": asdict(probing), "tpp": asdict(tpp),
                "meta": asdict(meta)}
    with store.run(command, {"dictionary": name, "evals": list(evals), **settings, "model": model},
                   seed=data.seed) as run_id:
        about = {"model": model, "kind": dictionary.kind, "arch": info.get("training_arch", dictionary.arch),
                 "d_sae": dictionary.d_sae, "settings": settings}
        probing_results = tpp_result = meta_result = None
        if set(evals) & set(TEXT_EVALS):
            pools = _labelled_pools(adapter, dictionary, info, data, pool)
        if "probing" in evals:
            probing_results = [sparse_probing(tr, te, probing, dataset=d) for d, (tr, te) in pools.items()]
            save_probing(store, name, probing_results, about, run_id)
        if "tpp" in evals:
            tasks = [TPPTask(d, tr, te) for d, (tr, te) in pools.items()]
            tpp_result = targeted_probe_perturbation(tasks, dictionary.W_dec.detach(), tpp)
            save_tpp(store, name, tpp_result, about, run_id)
        if "meta" in evals:
            meta_result = meta_structure(dictionary.W_dec.detach(), meta)
            save_meta(store, name, meta_result, about, run_id)
    return DictionaryEvals(name, probing_results, tpp_result, meta_result, run_id)
