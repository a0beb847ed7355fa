"""interp's k-sparse probing, TPP and meta-structure against SAEBench's own code (sae-bench 0.6.0),
on the same stored SAE and the same activations.

    make .venv-saebench
    python benchmarks/compare_sae_bench.py --store /tmp/h17e-store \
        --dictionary smollm2-135m/L8-sae-topk-k16-x8-20k --n-per-class 60 --max-tokens 48

1. Per labelled set (`interp.corpus.labelled_set`): interp's pooled activations and latents
   (`pooled_activations`, the dictionary's skip positions left out) and, for SAEBench, the same
   texts' per-token activations (n, L, d) with every position the pooling leaves out set to 0
   (SAEBench pools over the non-zero positions). The split is the eval job's (the set's fixed
   test part), then each class of each split cut to the smaller class's count (SAEBench's probe
   data needs as many negatives as positives).
2. interp on the pooled data: `sparse_probing`, `targeted_probe_perturbation`, and
   `meta_structure` of the decoder.
3. SAEBench in its own venv on the saved arrays and the SAE folder (`sae_bench_side.py`): its
   sparse-probing, TPP and meta-structure functions (nothing from the hub: its ``run_eval``
   entry points download datasets and a HookedTransformer, its building blocks take tensors).
4. Print both side by side. The sanity line checks that SAEBench's pooling of the handed-over
   arrays gives interp's pooled activations (the same inputs on both sides).

Measured with the command above (the 20k-token TopK SAE, k = 16, layer 8 MLP output; about 150
train and 50 test texts per set; ``--meta-steps 1500``, SAEBench's default budget): the pooled
inputs agree to 2.9e-6; k-sparse probing accuracies agree at k = 1 on all three sets and differ
by at most 0.042 at k = 2, 5 (2 of 50 test texts); the raw/LLM probes by at most 0.03; TPP's
clean probes agree on two sets (0.02 apart on pronoun_occupation), TPP at n = 20 is +0.063
(interp) against +0.027 (SAEBench), SAEBench's unintended drops being larger (0.04-0.06 against
under 0.01); decoder variance explained 0.420 (interp, 900 steps of 256 rows) against 0.390
(SAEBench, 1500 steps of 1024 rows; 0.331 at 225 steps), interp's random-direction reference
being 0.381 (the SAE's dead latents keep random decoder rows).

Where the numbers differ by design:

- k-sparse probing: both rank latents by |class-mean difference| on train and fit sklearn's
  L2 logistic regression (C = 1); interp standardises the k inputs first, SAEBench fits the raw
  latents. The LLM probe: interp fits sklearn on standardised activations; SAEBench trains a
  torch probe for up to 100 epochs and keeps the epoch with the best *test* accuracy (an
  optimistic figure).
- TPP: SAEBench's probes are torch probes with an L1 penalty on raw activations (kept at the
  best test epoch; at ~150 training texts and batch 16 that is ~10 steps an epoch, so its probes
  are weaker and shift more when any latent goes), interp's sklearn probes on standardised
  ones; the latent effects, top-n selection, ablation with the error term kept and the
  intended/unintended arithmetic match.
- Meta-structure: both train a BatchTopK SAE (k = 4, a quarter of d_sae) on the decoder rows;
  interp normalises the rows, shuffles them per epoch, uses its own loop (warm-up, decay,
  threshold moving average, JumpReLU at inference); SAEBench samples rows with replacement,
  SAELens's trainer, constant lr 5e-4, BatchTopK with its threshold at inference. Same FVU.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from interp.methods.dictionary_evals.pooled import PoolConfig, PooledActivations, pooled_activations  # noqa: E402


@torch.no_grad()
def zeroed_activations(adapter, texts, site: str, pool: PoolConfig) -> torch.Tensor:
    """(n, max_tokens, d) activations at `site`, 0 at the positions `pooled_activations` leaves out."""
    from interp.methods.dictionary_evals.pooled import _head

    out = torch.zeros(len(texts), pool.max_tokens, adapter.site_dim(site))
    for start in range(0, len(texts), pool.batch_size):
        batch = adapter.tokenize([_head(adapter, t, pool.max_tokens) for t in texts[start:start + pool.batch_size]])
        tokens, lengths = batch.tokens[:, :pool.max_tokens], batch.lengths.clamp(max=pool.max_tokens)
        x = adapter.run(tokens, names=[site]).cache[site].float()  # (batch, pos, d)
        pos = torch.arange(tokens.shape[1])
        keep = (pos[None] >= pool.skip) & (pos[None] < lengths[:, None])  # (batch, pos)
        out[start:start + len(tokens), :tokens.shape[1]] = x * keep[..., None]
    return out


def balanced_split(labelled, test_fraction: float) -> tuple[list[int], list[int]]:
    """The eval job's train/test indices, each class cut to the smaller class's count."""
    test = set(labelled.test_indices(test_fraction))
    parts = []
    for members in ([i for i in range(len(labelled)) if i not in test], sorted(test)):
        by = [[i for i in members if labelled.labels[i] == c] for c in (0, 1)]
        n = min(len(b) for b in by)
        parts.append(sorted(by[0][:n] + by[1][:n]))
    return parts[0], parts[1]


def _interp_side(adapter, dictionary, meta: dict, args, work: Path) -> tuple[dict, dict]:
    from interp.corpus import labelled_set
    from interp.corpus.labelled import MAX_PER_CLASS
    from interp.methods.dictionary_evals.meta import MetaStructureConfig, meta_structure
    from interp.methods.dictionary_evals.probing import SparseProbingConfig, sparse_probing
    from interp.methods.dictionary_evals.tpp import TPPConfig, TPPTask, targeted_probe_perturbation

    site = meta["hook_name"]
    pool = PoolConfig(max_tokens=args.max_tokens, skip=int(meta.get("skip_positions", 1)))
    probing, tasks, sanity = {}, [], 0.0
    for name in args.datasets:
        labelled = labelled_set(name, n_per_class=min(args.n_per_class, MAX_PER_CLASS[name]), seed=0)
        pooled = pooled_activations(adapter, dictionary, labelled.texts, labelled.labels, site, site, pool)
        acts = zeroed_activations(adapter, labelled.texts, site, pool)
        counts = (acts.sum(-1) != 0).sum(1, keepdim=True)  # SAEBench's pooling of the zeroed arrays
        sanity = max(sanity, float((acts.sum(1) / counts - pooled.x).abs().max()))
        train, test = balanced_split(labelled, 0.25)
        labels = np.asarray(labelled.labels)
        np.savez(work / f"{name}.npz", train=acts[train].numpy(), test=acts[test].numpy(),
                 train_labels=labels[train], test_labels=labels[test])
        tr, te = pooled.subset(train), pooled.subset(test)
        r = sparse_probing(tr, te, SparseProbingConfig(ks=tuple(args.ks)), dataset=name)
        probing[name] = {"raw_accuracy": r.raw_accuracy, **{f"k={k}": a for k, a in zip(r.ks, r.accuracy)},
                         "n_train": r.n_train, "n_test": r.n_test}
        tasks.append(TPPTask(name, tr, te))
    t = targeted_probe_perturbation(tasks, dictionary.W_dec.detach(), TPPConfig(ns=tuple(args.ns)))
    tpp = {"clean_accuracy": dict(zip(t.tasks, t.clean_accuracy)),
           **{f"n={n}": {"tpp": float(t.tpp[i]), "intended": float(t.intended[i].mean()),
                         "unintended": float(t.unintended[i].mean())} for i, n in enumerate(t.ns)}}
    start = time.time()
    m = meta_structure(dictionary.W_dec.detach(), MetaStructureConfig(baseline=False))
    meta_out = {"explained_variance": m.scores.explained_variance, "width": m.width, "steps": m.steps,
                "rows_seen": m.steps * min(256, m.n_rows), "seconds": time.time() - start}
    return {"sparse_probing": probing, "tpp": tpp, "meta_structure": meta_out}, {"max_pooling_difference": sanity}


def _print(ours: dict, theirs: dict, args) -> None:
    print("k-sparse probing (test accuracy; SAEBench: mean of its two one-vs-rest probes)")
    for name in args.datasets:
        a, b = ours["sparse_probing"][name], theirs["sparse_probing"][name]
        print(f"  {name} (train {a['n_train']}, test {a['n_test']}): raw/LLM probe interp {a['raw_accuracy']:.4f} "
              f"SAEBench {b['llm_test_accuracy']:.4f}")
        for k in args.ks:
            x, y = a[f"k={k}"], b[f"sae_top_{k}_test_accuracy"]
            print(f"    k={k:<3} interp {x:.4f}  SAEBench {y:.4f}  diff {x - y:+.4f}")
    if theirs.get("tpp"):
        print("TPP (mean over sets of intended - unintended accuracy drop)")
        for name in args.datasets:
            print(f"  clean probe accuracy {name}: interp {ours['tpp']['clean_accuracy'][name]:.4f} "
                  f"SAEBench {theirs['tpp']['clean_accuracy'][name]:.4f}")
        for n in args.ns:
            a = ours["tpp"][f"n={n}"]
            b = {key: theirs["tpp"][f"tpp_threshold_{n}_{part}"]
                 for key, part in (("tpp", "total_metric"), ("intended", "intended_diff_only"),
                                   ("unintended", "unintended_diff_only"))}
            print(f"    n={n:<3} TPP interp {a['tpp']:+.4f} SAEBench {b['tpp']:+.4f}   intended {a['intended']:+.4f} "
                  f"/ {b['intended']:+.4f}   unintended {a['unintended']:+.4f} / {b['unintended']:+.4f}")
    if theirs.get("meta_structure"):
        a, b = ours["meta_structure"], theirs["meta_structure"]
        print(f"meta-structure: decoder variance explained interp {a['explained_variance']:.4f} "
              f"(width {a['width']}, {a['steps']} steps, {a['rows_seen']} rows seen, {a['seconds']:.0f} s)  "
              f"SAEBench {b['decoder_fraction_variance_explained']:.4f} ({b['settings']['train_steps']} steps x "
              f"{b['settings']['train_batch_size']} rows, {b['train_time_seconds']:.0f} s)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--store", required=True)
    p.add_argument("--dictionary", required=True, help="store name of an SAE")
    p.add_argument("--datasets", default="sentiment,code_language,pronoun_occupation")
    p.add_argument("--n-per-class", type=int, default=60)
    p.add_argument("--max-tokens", type=int, default=48)
    p.add_argument("--ks", default="1,2,5")
    p.add_argument("--ns", default="2,5,10,20")
    p.add_argument("--meta-steps", type=int, default=225, help="SAEBench meta-structure steps of 1024 rows")
    p.add_argument("--python", default=str(ROOT / ".venv-saebench/bin/python"))
    p.add_argument("--work", default=None, help="folder for the handed-over arrays (default: a temporary one)")
    args = p.parse_args()
    args.datasets = args.datasets.split(",")
    args.ks, args.ns = [int(k) for k in args.ks.split(",")], [int(n) for n in args.ns.split(",")]
    torch.set_num_threads(1)
    from interp.dictionaries.io import load_dictionary
    from interp.models import load_model
    from interp.store import Store

    store = Store(args.store)
    dictionary, meta = load_dictionary(store, args.dictionary)
    if dictionary.kind != "sae":
        raise SystemExit(f"{args.dictionary!r} is a {dictionary.kind}; SAEBench evaluates SAEs")
    work = Path(args.work or tempfile.mkdtemp(prefix="sae-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    ours, sanity = _interp_side(load_model(meta["model_name"]), dictionary, meta, args, work)
    (work / "job.json").write_text(json.dumps({
        "sae_folder": str(store.dictionary_dir(args.dictionary)), "datasets": args.datasets, "ks": args.ks,
        "ns": args.ns, "seed": 0, "meta": {"train_steps": args.meta_steps, "autocast": False}}))
    start = time.time()
    subprocess.run([args.python, str(ROOT / "benchmarks/sae_bench_side.py"), str(work)], check=True)
    print(f"SAEBench side: {time.time() - start:.0f} s; arrays in {work}")
    theirs = json.loads((work / "sae_bench.json").read_text())
    print(f"same inputs: SAEBench's pooling of the arrays vs interp's pooled activations, largest difference "
          f"{sanity['max_pooling_difference']:.2e}")
    _print(ours, theirs, args)
    (work / "comparison.json").write_text(json.dumps({"interp": ours, "sae_bench": theirs}, indent=1))


if __name__ == "__main__":
    main()
