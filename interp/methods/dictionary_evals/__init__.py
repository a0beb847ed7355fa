"""dictionary_evals family: SAEBench-style downstream evaluations of SAEs and transcoders, offline.

Karvonen, Rager et al. (2025), "SAEBench: A Comprehensive Benchmark for Sparse Autoencoders
in Language Model Interpretability", run on interp's own labelled sets
(`interp.corpus.labelled`: sentiment on IMDB reviews, Python vs C, occupations' gender
stereotype) with no hub access, plus the meta-structure of the decoder (Bussmann et al. 2024).

Entry points:

- `pooled_activations` (`.pooled`) - per text, the mean over its tokens of the input and
  target activations and of the dictionary's latents; `PoolConfig`, `PooledActivations`.
- `sparse_probing` (`.probing`) - k-sparse probing: top-k latents by mean difference, then
  logistic regression, against a probe on the raw activations; `SparseProbingConfig`,
  `SparseProbingResult`.
- `targeted_probe_perturbation` (`.tpp`) - TPP: ablate each task's top latents, the drop in
  that task's probe accuracy against the others'; `TPPConfig`, `TPPTask`, `TPPResult`.
- `meta_structure` (`.meta`) - a small BatchTopK meta-dictionary on the unit decoder rows:
  how much of them a few shared meta-latents explain; `MetaStructureConfig`,
  `MetaStructureResult`.
- `save_probing`, `save_tpp`, `save_meta`, `probing_results`, `tpp_results`, `meta_results`
  (`.store`).

Names load lazily (sklearn is imported only by the methods that fit probes).
"""

_LAZY = {
    "pooled_activations": "pooled", "PoolConfig": "pooled", "PooledActivations": "pooled",
    "sparse_probing": "probing", "SparseProbingConfig": "probing", "SparseProbingResult": "probing",
    "targeted_probe_perturbation": "tpp", "TPPConfig": "tpp", "TPPTask": "tpp", "TPPResult": "tpp",
    "meta_structure": "meta", "MetaStructureConfig": "meta", "MetaStructureResult": "meta",
    "save_probing": "store", "save_tpp": "store", "save_meta": "store", "probing_results": "store",
    "tpp_results": "store", "meta_results": "store",
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    import importlib

    if name in _LAZY:
        return getattr(importlib.import_module(f"interp.methods.dictionary_evals.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'interp.methods.dictionary_evals' has no attribute {name!r}")
