"""The stored SAEBench-style evals of dictionaries (``interp dict-eval``) as tidy tables.

Rows of the ``results`` table named ``dictionary_probing``, ``dictionary_tpp`` and
``dictionary_meta``, one per dictionary (key = its name), flattened so that several
dictionaries sit side by side.
"""

from __future__ import annotations

import pandas as pd

from interp.store.read.sql import parse_json

PROBING_RESULT, TPP_RESULT, META_RESULT = "dictionary_probing", "dictionary_tpp", "dictionary_meta"


def _payloads(store, name: str) -> list[dict]:
    frame = store.read("results", where={"name": name})
    return [parse_json(p) for p in frame["payload"]] if not frame.empty else []


def probing_results(store) -> pd.DataFrame:
    """One row per (dictionary, dataset, k): accuracy of the k-latent probe and of the raw probe."""
    rows = [{"dictionary": p["dictionary"], "kind": p.get("kind"), "arch": p.get("arch"), "dataset": r["dataset"],
             "k": k, "accuracy": acc, "raw_accuracy": r["raw_accuracy"], "n_test": r["n_test"]}
            for p in _payloads(store, PROBING_RESULT) for r in p["results"] for k, acc in zip(r["ks"], r["accuracy"])]
    return pd.DataFrame(rows, columns=["dictionary", "kind", "arch", "dataset", "k", "accuracy", "raw_accuracy",
                                       "n_test"])


def tpp_results(store) -> pd.DataFrame:
    """One row per (dictionary, n): TPP and its mean intended and unintended accuracy drops."""
    rows = []
    for p in _payloads(store, TPP_RESULT):
        r = p["result"]
        for a, n in enumerate(r["ns"]):
            intended, unintended = r["intended"][a], r["unintended"][a]
            rows.append({"dictionary": p["dictionary"], "kind": p.get("kind"), "arch": p.get("arch"),
                         "tasks": ", ".join(r["tasks"]), "n": n, "tpp": r["tpp"][a],
                         "intended_drop": sum(intended) / len(intended),
                         "unintended_drop": sum(unintended) / len(unintended)})
    return pd.DataFrame(rows, columns=["dictionary", "kind", "arch", "tasks", "n", "tpp", "intended_drop",
                                       "unintended_drop"])


META_COLUMNS = ["dictionary", "kind", "arch", "d_sae", "width", "k", "explained_variance",
                "baseline_explained_variance", "l0", "used_fraction", "baseline_l0", "baseline_used_fraction", "steps"]


def meta_results(store) -> pd.DataFrame:
    """One row per dictionary: its meta-dictionary's size, explained variance of the decoder rows,
    mean L0 and share of meta-latents used, and the same on random directions (NaN when not fitted)."""
    rows = [{"dictionary": p["dictionary"], "kind": p.get("kind"), "arch": p.get("arch"), "d_sae": p.get("d_sae"),
             **{c: p["result"].get(c) for c in META_COLUMNS[4:]}} for p in _payloads(store, META_RESULT)]
    return pd.DataFrame(rows, columns=META_COLUMNS).astype({c: float for c in META_COLUMNS[6:12]})
