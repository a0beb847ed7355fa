"""The dictionary_evals family in the store: one ``results`` row per eval and dictionary.

Writing (`save_probing`, `save_tpp`, `save_meta`): name `PROBING_RESULT`, `TPP_RESULT` or
`META_RESULT`, key = the
dictionary's store name (a newer evaluation of the same dictionary replaces the older),
payload = the named results' ``to_dict`` plus the dictionary's identity and the settings.
Reading as tidy tables (`probing_results`, `tpp_results`, `meta_results`) lives in
`interp.store.read.dictionary_evals`, so the app's read API needs no method import; this
module re-exports it.
"""

from __future__ import annotations

from typing import Sequence

from interp.methods.dictionary_evals.meta import MetaStructureResult
from interp.methods.dictionary_evals.probing import SparseProbingResult
from interp.methods.dictionary_evals.tpp import TPPResult
from interp.store.read.dictionary_evals import (META_RESULT, PROBING_RESULT, TPP_RESULT, meta_results,
                                                probing_results, tpp_results)


def save_probing(store, dictionary: str, results: Sequence[SparseProbingResult], about: dict, run_id: str) -> None:
    """Store the k-sparse probing `results` (one per labelled set) of `dictionary`; `about`:
    its model, kind, arch, d_sae and the settings."""
    store.write("results", [{"name": PROBING_RESULT, "key": dictionary, "payload": {
        **about, "dictionary": dictionary, "results": [r.to_dict() for r in results]}}], run_id=run_id)


def save_tpp(store, dictionary: str, result: TPPResult, about: dict, run_id: str) -> None:
    """Store the TPP `result` of `dictionary` (`about` as for `save_probing`)."""
    store.write("results", [{"name": TPP_RESULT, "key": dictionary, "payload": {
        **about, "dictionary": dictionary, "result": result.to_dict()}}], run_id=run_id)


def save_meta(store, dictionary: str, result: MetaStructureResult, about: dict, run_id: str) -> None:
    """Store the meta-structure `result` of `dictionary` (`about` as for `save_probing`)."""
    store.write("results", [{"name": META_RESULT, "key": dictionary, "payload": {
        **about, "dictionary": dictionary, "result": result.to_dict()}}], run_id=run_id)


__all__ = ["META_RESULT", "PROBING_RESULT", "TPP_RESULT", "meta_results", "probing_results", "save_meta",
           "save_probing", "save_tpp", "tpp_results"]
