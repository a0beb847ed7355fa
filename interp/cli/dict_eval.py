"""``interp dict-eval``: SAEBench-style evals of a stored dictionary on labelled sets, offline.

    interp dict-eval probing smollm2-135m/L15-sae-batchtopk-k32-x8-200k
    interp dict-eval tpp smollm2-135m/L15-sae-batchtopk-k32-x8-200k --ns 2,5,10,20
    interp dict-eval meta smollm2-135m/L15-sae-batchtopk-k32-x8-200k --meta-k 4 --meta-width-fraction 0.125
    interp dict-eval all smollm2-135m/L15-transcoder-topk-k32-x8-200k --n-per-class 400

``probing`` is k-sparse probing (top-k latents by mean difference, logistic regression,
against a probe on the raw activations), ``tpp`` targeted probe perturbation across the
labelled sets (sentiment, code_language and pronoun_occupation unless ``--datasets`` says
otherwise), ``meta`` the meta-structure of the decoder (a small BatchTopK meta-dictionary on
its unit rows; no model pass), ``all`` the three, the first two on one pass of the model.
Results go to the store (the Dictionaries page shows them side by side); a table is printed.
Flags map onto `EvalDataConfig`, `PoolConfig`, `SparseProbingConfig`, `TPPConfig` and
`MetaStructureConfig` (``--meta-*``).
"""

from __future__ import annotations

import json

from interp.cli.options import add_config_arguments, config_from_args


def register(subparsers) -> None:
    from interp.jobs.dictionary_evals import EvalDataConfig
    from interp.methods.dictionary_evals.meta import MetaStructureConfig
    from interp.methods.dictionary_evals.pooled import PoolConfig
    from interp.methods.dictionary_evals.probing import SparseProbingConfig
    from interp.methods.dictionary_evals.tpp import TPPConfig

    parser = subparsers.add_parser("dict-eval", help="k-sparse probing, TPP and meta-structure of a stored dictionary")
    parser.add_argument("eval", choices=("probing", "tpp", "meta", "all"), help="which eval")
    parser.add_argument("dictionary", help="dictionary name as stored (see the Dictionaries page)")
    parser.add_argument("--model", default=None, help="model to run (default: the one the dictionary was trained on)")
    add_config_arguments(parser, EvalDataConfig, dest_prefix="data_")
    add_config_arguments(parser, PoolConfig, dest_prefix="pool_")
    add_config_arguments(parser, SparseProbingConfig, only=("ks",), dest_prefix="probing_")
    add_config_arguments(parser, TPPConfig, only=("ns",), dest_prefix="tpp_")
    add_config_arguments(parser, MetaStructureConfig, prefix="meta-", dest_prefix="meta_")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument("--store", default=None, metavar="PATH", help="store root (default: <data root>/store)")
    parser.set_defaults(func=_dict_eval)


def _dict_eval(args) -> int:
    from interp.dictionaries.io import load_dictionary
    from interp.jobs.dictionary_evals import EVALS, TEXT_EVALS, EvalDataConfig, evaluate_stored_dictionary
    from interp.methods.dictionary_evals.meta import MetaStructureConfig
    from interp.methods.dictionary_evals.pooled import PoolConfig
    from interp.methods.dictionary_evals.probing import SparseProbingConfig
    from interp.methods.dictionary_evals.tpp import TPPConfig
    from interp.models import load_model
    from interp.paths import store_dir
    from interp.store import Store

    store = Store(args.store or store_dir())
    data = config_from_args(EvalDataConfig, args, dest_prefix="data_")
    pool = config_from_args(PoolConfig, args, dest_prefix="pool_")
    probing = config_from_args(SparseProbingConfig, args, dest_prefix="probing_")
    tpp = config_from_args(TPPConfig, args, dest_prefix="tpp_")
    meta = config_from_args(MetaStructureConfig, args, dest_prefix="meta_")
    _, info = load_dictionary(store, args.dictionary)  # a missing name fails here, before the model loads
    evals = EVALS if args.eval == "all" else (args.eval,)
    adapter = None
    if set(evals) & set(TEXT_EVALS):  # meta alone reads only the decoder
        model = args.model or info.get("model_name")
        if not model:
            raise ValueError(f"dictionary {args.dictionary!r} does not record its model; pass --model")
        adapter = load_model(model)
    result = evaluate_stored_dictionary(adapter, store, args.dictionary, evals, data, pool, probing, tpp, meta)
    _print_records(_records(result), args.format)
    return 0


def _records(result) -> list[dict]:
    """One flat record per printed row (eval, then that eval's columns)."""
    records = []
    for r in result.probing or []:
        records += [{"eval": "probing", "dataset": r.dataset, "k": k, "accuracy": round(a, 4),
                     "raw_accuracy": round(r.raw_accuracy, 4)} for k, a in zip(r.ks, r.accuracy)]
    if result.tpp is not None:
        t = result.tpp
        records += [{"eval": "tpp", "tasks": ",".join(t.tasks), "n": n, "tpp": round(float(t.tpp[i]), 4),
                     "intended_drop": round(float(t.intended[i].mean()), 4),
                     "unintended_drop": round(float(t.unintended[i].mean()), 4)} for i, n in enumerate(t.ns)]
    if result.meta is not None:
        m = result.meta
        records.append({"eval": "meta", "width": m.width, "k": m.k,
                        "explained_variance": round(m.scores.explained_variance, 4), "l0": round(m.scores.l0, 3),
                        "used_fraction": round(m.scores.used_fraction, 4),
                        "baseline_explained_variance": round(m.baseline.explained_variance, 4) if m.baseline else None})
    return records


def _print_records(records: list[dict], format: str) -> None:
    """The records as JSON or as one table per eval."""
    if format == "json":
        print(json.dumps(records))
    else:
        import pandas as pd

        for kind in dict.fromkeys(r["eval"] for r in records):  # one table per eval, its own columns
            rows = pd.DataFrame([{k: v for k, v in r.items() if k != "eval"} for r in records if r["eval"] == kind])
            print(f"{kind}:\n{rows.to_string(index=False)}")
