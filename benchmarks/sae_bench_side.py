"""SAEBench's own sparse-probing, TPP and meta-structure code on arrays handed over by
compare_sae_bench.py (runs in .venv-saebench: ``make .venv-saebench``; nothing from the hub).

    .venv-saebench/bin/python benchmarks/sae_bench_side.py WORKDIR

WORKDIR holds ``job.json`` (the SAE folder, ks, ns, meta-structure settings, the labelled sets)
and per set ``<set>.npz``: ``train``/``test`` (n, L, d) activations with every position that is
not pooled (the skipped leading positions, padding) set to 0 - SAEBench's own convention
(`activation_collection` zeroes BOS, EOS and padding and pools over the non-zero positions) -
and ``train_labels``/``test_labels``. Writes ``sae_bench.json``.

1. Per set, SAEBench's class dict ``{"<set>/0": acts of label 0, "<set>/1": acts of label 1}``.
2. Sparse probing (`sae_bench.evals.sparse_probing.main` step for step): the LLM probe on the
   mean-pooled activations (``train_probe_on_activations``, its torch probe, 100 epochs, lr 1e-2,
   batch 250), the SAE latents pooled by ``get_sae_meaned_activations``, top-k probes
   (``select_top_k=k``, sklearn). SAEBench probes each class against the rest; with two classes
   those are one task twice, and the set's accuracy is their mean.
3. TPP (`sae_bench.evals.scr_and_tpp.main`): the torch probe per set on class 1 vs 0 with
   SAEBench's TPP settings (20 epochs, batch 16, lr 1e-3, L1 1e-3), latent effects
   (``get_effects_per_class_precomputed_acts``), the top-n latents (``select_top_n_features``)
   ablated from every set's test activations (``ablated_precomputed_activations``, error term
   kept), the probes' accuracies (``test_probe_gpu``), ``create_tpp_plotting_dict``. SAEBench's
   classes live in one dataset; here each labelled set is one class, as interp's TPP has it.
4. Meta-structure: ``sae_bench.evals.meta_structure.main.run_eval_single_sae`` on the SAE.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

# SAEBench's probe helpers are @jaxtyped around @beartype-only inner calls; jaxtyping 0.3 carries
# the outer call's dimension sizes into the inner check ("train_dataset_size is 40 which does not
# equal the existing value of 20": a class's count against both classes'), so its checks are off.
os.environ.setdefault("JAXTYPING_DISABLE", "1")

import numpy as np
import torch


def _classes(npz, split: str, name: str) -> dict[str, torch.Tensor]:
    acts, labels = torch.from_numpy(npz[split]), torch.from_numpy(npz[f"{split}_labels"])
    return {f"{name}/{c}": acts[labels == c].contiguous() for c in (0, 1)}


def _sparse_probing(sae, train: dict, test: dict, ks: list[int]) -> dict:
    from sae_bench.evals.sparse_probing import probe_training
    from sae_bench.sae_bench_utils import activation_collection as collect

    train_x, test_x = collect.create_meaned_model_activations(train), collect.create_meaned_model_activations(test)
    _, llm = probe_training.train_probe_on_activations(train_x, test_x, select_top_k=None, use_sklearn=False,
                                                       batch_size=250, epochs=100, lr=1e-2)
    train_z = collect.get_sae_meaned_activations(train, sae, 125)
    test_z = collect.get_sae_meaned_activations(test, sae, 125)
    out = {"llm_test_accuracy": float(np.mean(list(llm.values())))}
    for k in ks:
        _, acc = probe_training.train_probe_on_activations(train_z, test_z, select_top_k=k)
        out[f"sae_top_{k}_test_accuracy"] = float(np.mean(list(acc.values())))
    return out


def _tpp(sae, sets: dict[str, tuple[dict, dict]], ns: list[int]) -> dict:
    from sae_bench.evals.scr_and_tpp import main as tpp
    from sae_bench.evals.sparse_probing import probe_training
    from sae_bench.sae_bench_utils import activation_collection as collect

    probes, clean = {}, {}
    for name, (train, test) in sets.items():
        torch.set_grad_enabled(True)
        x_tr, y_tr = probe_training.prepare_probe_data(collect.create_meaned_model_activations(train), f"{name}/1")
        x_te, y_te = probe_training.prepare_probe_data(collect.create_meaned_model_activations(test), f"{name}/1")
        probes[name], _ = probe_training.train_probe_gpu(x_tr, y_tr, x_te, y_te, dim=x_tr.shape[1], batch_size=16,
                                                         epochs=20, lr=1e-3, l1_penalty=1e-3,
                                                         early_stopping_patience=20)
        torch.set_grad_enabled(False)
        clean[name] = probe_training.test_probe_gpu(x_te, y_te, 500, probes[name])
    effects = {name: tpp.get_effects_per_class_precomputed_acts(sae, probes[name], f"{name}/1", train, False, 125)
               for name, (train, _) in sets.items()}
    accuracies: dict[str, dict[int, dict[str, float]]] = {}
    for ablated in sets:
        accuracies[ablated] = {}
        for n in ns:
            mask = tpp.select_top_n_features(effects[ablated], n, ablated)
            accuracies[ablated][n] = {}
            for name, (_, test) in sets.items():
                pooled = {c: tpp.ablated_precomputed_activations(a, sae, mask, 125) for c, a in test.items()}
                x, y = probe_training.prepare_probe_data(pooled, f"{name}/1")
                accuracies[ablated][n][name] = probe_training.test_probe_gpu(x, y, 500, probes[name])
    overall, _ = tpp.create_tpp_plotting_dict(accuracies, clean)
    return {"clean_accuracy": clean, **overall}


def _meta(sae, settings: dict) -> dict:
    from sae_bench.evals.meta_structure.eval_config import MetaStructureEvalConfig
    from sae_bench.evals.meta_structure.main import run_eval_single_sae

    config = MetaStructureEvalConfig(**settings)
    torch.set_grad_enabled(True)  # SAEBench's TPP leaves it off; its evals run one per process
    metrics = run_eval_single_sae("interp", "dictionary", sae, config, "cpu").eval_result_metrics.meta_structure
    return {"decoder_fraction_variance_explained": metrics.decoder_fraction_variance_explained,
            "train_time_seconds": metrics.train_time_seconds,
            "settings": {k: getattr(config, k) for k in ("train_steps", "train_batch_size", "learning_rate", "k",
                                                         "width_ratio", "autocast")}}


def main() -> None:
    from sae_lens import SAE

    work = Path(sys.argv[1])
    job = json.loads((work / "job.json").read_text())
    torch.manual_seed(job["seed"])
    torch.set_num_threads(job.get("threads", 1))
    sae = SAE.load_from_disk(job["sae_folder"])
    sets = {}
    for name in job["datasets"]:
        npz = np.load(work / f"{name}.npz")
        sets[name] = (_classes(npz, "train", name), _classes(npz, "test", name))
    out = {"sparse_probing": {name: _sparse_probing(sae, tr, te, job["ks"]) for name, (tr, te) in sets.items()}}
    out["tpp"] = _tpp(sae, sets, job["ns"]) if len(sets) > 1 else None
    out["meta_structure"] = _meta(sae, job["meta"]) if job.get("meta") else None
    (work / "sae_bench.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
