"""The seed paper's claim on SmolLM2, properly trained: transcoders vs MLP-output SAEs at matched L0.

Dunefsky et al. (2024, Fig. 2) find that transcoders match or beat SAEs on the MLP output at
equal L0 in spliced next-token CE. Here:

1. Eight TopK dictionaries at one layer (default 15), trained together on one streamed pass
   of the model over the same training tokens (default 2,000,000, one epoch;
   `interp.jobs.dictionaries.train_and_publish_many`): at each k in 8, 16, 32, 64 a skip
   transcoder (MLP input -> MLP output) with the main job's recipe (`transcoder_recipe`) and
   an SAE on the MLP output with the same recipe minus the skip term (an SAE's input is its
   target, so a skip term would make it the identity). Checkpoints every 50 steps: a killed
   run started again with the same store resumes.
2. Every dictionary is evaluated on the same held-out windows (default 20,480 tokens): one
   clean/ablation baseline for all eight (an SAE on the MLP output reuses the transcoder's
   passes with its own input), spliced CE, CE recovered, FVU, L0 and dead share, each with a
   95% bootstrap interval over windows (columns ``<metric>_lo`` / ``_hi``).
3. One row per dictionary, printed and stored as a ``dictionary_sweep`` result (key
   ``<model>/L<layer>/topk-<tokens>``), which the Dictionaries page draws (L0 vs spliced CE,
   one line per kind); then, per k, transcoder minus SAE of spliced CE and CE recovered.
   `--archs topk batchtopk` trains each architecture's dictionaries on the same pass; each
   architecture has its own stored comparison (key ``<model>/L<layer>/<arch>-<tokens>``).
   `--only KIND:K[:ARCH] ...` trains just those dictionaries (an earlier checkpoint of theirs is
   moved aside to ``*.safetensors.before-<time>``, so the retrain starts afresh and nothing is
   deleted) and replaces their rows in the stored comparison, keeping the other rows.

    .venv/bin/python benchmarks/bench_transcoder_vs_sae.py [--tokens 2000000] [--layer 15] \
        [--ks 8 16 32 64] [--archs topk] [--only transcoder:8 sae:16:batchtopk] \
        [--eval-tokens 20480] [--store PATH]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=2_000_000)
    parser.add_argument("--layer", type=int, default=15)
    parser.add_argument("--ks", type=int, nargs="+", default=[8, 16, 32, 64])
    parser.add_argument("--archs", nargs="+", default=["topk"], choices=["topk", "batchtopk"])
    parser.add_argument("--only", nargs="+", default=None, metavar="KIND:K[:ARCH]",
                        help="train only these (e.g. transcoder:8 sae:16:batchtopk); the stored comparisons "
                             "keep the other rows")
    parser.add_argument("--variant", action="append", default=None, metavar="NAME=field:value,...",
                        help="train the recipe with these TrainConfig fields changed, on the same pass; "
                             "repeatable (default: recipe=, the recipe itself)")
    parser.add_argument("--eval-tokens", type=int, default=20_480)
    parser.add_argument("--store", default=None, help="store root (default: <data root>/store)")
    args = parser.parse_args()
    only = parse_only(args.only, args.ks, args.archs)
    if isinstance(only, str):
        parser.error(only)
    variants = args.variant or [f"{RECIPE}="]
    bad = [v for v in variants if not re.fullmatch(r"[a-z0-9][a-z0-9.]*=.*", v)
           or (v.startswith(f"{RECIPE}=") and v != f"{RECIPE}=")]
    if bad or len({v.partition("=")[0] for v in variants}) < len(variants):
        parser.error(f"--variant {(bad or variants)[0]!r}: need distinct NAME=field:value,... with NAME of lower-case "
                     f"letters, digits and dots ({RECIPE}= alone is the recipe itself)")

    from dataclasses import replace

    import pandas as pd
    import torch

    from interp.dictionaries.evaluation import EvalConfig, baseline
    from interp.jobs.dictionaries import (DataConfig, _shared_baseline, _windows, dictionary_name, dictionary_sites,
                                          train_and_publish_many)
    from interp.jobs.recipe import transcoder_recipe
    from interp.models import load_model
    from interp.paths import store_dir
    from interp.store import Store
    from interp.viz.dictionaries import kind_differences, l0_vs_ce_figure
    from bench_transcoder_recipe import parse_variant  # a sibling script (benchmarks/ is sys.path[0])

    torch.set_num_threads(os.cpu_count() or 1)
    for v in variants:  # a bad field or value stops here, before the model loads
        parse_variant(v, transcoder_recipe(args.tokens))
    adapter = load_model("smollm2-135m")
    store = Store(args.store or store_dir())
    data = DataConfig(eval_tokens=args.eval_tokens, dashboard_tokens=0)
    trains, variant_of, names = [], [], []
    for arch in args.archs:  # step 1: the settings, transcoder then SAE at each k, per variant
        for k in args.ks:
            base = replace(transcoder_recipe(args.tokens, k=k, checkpoint_every=50), arch=arch)
            for variant, recipe in (parse_variant(v, base) for v in variants):
                for t in (recipe, replace(recipe, kind="sae", skip=False)):
                    if only is None or (t.kind, t.k, t.arch) in only:
                        trains.append(t)
                        variant_of.append(variant)
                        names.append(variant_name(dictionary_name(adapter.store_name, args.layer, t), variant))
    if only is not None:  # a retrain starts afresh, not from an earlier run's last checkpoint
        for name in names:
            moved = move_checkpoint_aside(store, name)
            if moved:
                print(f"earlier checkpoint moved to {moved}", flush=True)
    sites = {kind: dictionary_sites(adapter, kind, args.layer) for kind in ("transcoder", "sae")}
    start = time.perf_counter()  # step 2: the shared baseline
    heldout = _windows(adapter, data, "heldout", data.eval_tokens).tokens
    tc = baseline(adapter, heldout, *sites["transcoder"], EvalConfig(skip=data.skip_positions), progress=True)
    sae = _shared_baseline(adapter, heldout, sites["sae"], {sites["transcoder"]: tc}, progress=True)
    print(f"baseline over {args.eval_tokens:,} held-out tokens: {time.perf_counter() - start:.0f} s", flush=True)
    start = time.perf_counter()
    pubs = train_and_publish_many(adapter, store, trains, [args.layer] * len(trains), data=data, names=names,
                                  shared={i: tc if t.kind == "transcoder" else sae for i, t in enumerate(trains)},
                                  command="bench_transcoder_vs_sae")
    seconds = time.perf_counter() - start
    rows = []  # step 3: the table
    for train, variant, pub in zip(trains, variant_of, pubs):
        m = pub.metrics
        rows.append({"name": pub.name, "variant": variant, "kind": train.kind, "arch": train.arch, "k": train.k,
                     "skip": train.skip,
                     **{key: getattr(m, key) for key in ("l0", "fvu", "ce_clean", "ce_spliced", "delta_ce",
                                                         "ce_recovered", "ce_recovered_mean", "kl", "dead_fraction",
                                                         "n_tokens")},
                     **{f"{key}_{end}": v for key, pair in m.intervals.items() for end, v in zip(("lo", "hi"), pair)}})
    load = os.getloadavg()
    print(f"\n{len(trains)} dictionaries on one pass over {args.tokens:,} tokens: {seconds:.0f} s; "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} ({os.cpu_count()} cores)")
    for r in rows:
        print(_line(r))
    for arch, variant in sorted({(r["arch"], r["variant"]) for r in rows}):
        key = variant_name(f"{adapter.store_name}/L{args.layer}/{arch}-{args.tokens}", variant)
        new = [r for r in rows if (r["arch"], r["variant"]) == (arch, variant)]
        stored = store.read("results", where={"name": "dictionary_sweep", "key": key})
        earlier = [] if stored.empty else _payload(stored["payload"].iloc[0])["table"]
        table = pd.DataFrame(merge_rows(earlier, new))
        print(f"\n{key}: transcoder - SAE at each k (negative spliced CE: the transcoder is better)"
              + (f"; {len(table) - len(new)} rows kept from the stored comparison" if len(table) > len(new) else ""))
        print(kind_differences(table).round(4).to_string(index=False))
        fig = l0_vs_ce_figure(table, title=f"smollm2-135m layer {args.layer}: {arch} skip transcoders vs MLP-out "
                                           f"SAEs{'' if variant == RECIPE else f' ({variant})'} "
                                           f"({args.tokens:,} training tokens each, "
                                           f"{int(table['n_tokens'].iloc[0]):,} held-out)")
        run = store.start_run("bench_transcoder_vs_sae", {"tokens": args.tokens, "layer": args.layer, "ks": args.ks,
                                                          "arch": arch, "only": args.only, "variant": variant,
                                                          "eval_tokens": args.eval_tokens})
        store.write("results", [{"name": "dictionary_sweep", "key": key,
                                 "payload": {"table": table.to_dict("records"), "figure": fig.to_json(),
                                             "train_tokens": args.tokens, "seconds": seconds, "load": list(load)}}],
                    run_id=run)
        store.finish_run(run, "done")


RECIPE = "recipe"
"""The variant name of the recipe itself (`--variant recipe=`): its names and keys carry no suffix."""


def variant_name(name: str, variant: str) -> str:
    """A dictionary name or comparison key of `variant`: unchanged for the recipe, else ``name-<variant>``."""
    return name if variant == RECIPE else f"{name}-{variant}"


def parse_only(values: list[str] | None, ks: list[int], archs: list[str]) -> set | str | None:
    """`--only` as a set of (kind, k, arch), or the one-line error naming the bad value."""
    if values is None:
        return None
    out = set()
    for value in values:
        parts = value.split(":")
        if len(parts) == 2:  # ARCH defaults to the first of --archs
            parts.append(archs[0])
        kind, k, arch = parts if len(parts) == 3 else ("", "", "")
        if kind not in ("transcoder", "sae") or not k.isdigit() or int(k) not in ks or arch not in archs:
            return (f"--only {value!r}: need KIND:K[:ARCH] with KIND transcoder or sae, K one of --ks "
                    f"{' '.join(map(str, ks))} and ARCH one of --archs {' '.join(archs)}")
        out.add((kind, int(k), arch))
    return out


def merge_rows(earlier: list[dict], new: list[dict]) -> list[dict]:
    """The stored comparison's rows with those of the same (kind, k) replaced by `new`, by k then kind."""
    fresh = {(r["kind"], r["k"]) for r in new}
    rows = [r for r in earlier if (r["kind"], r["k"]) not in fresh] + list(new)
    return sorted(rows, key=lambda r: (r["k"], r["kind"] != "transcoder"))


def move_checkpoint_aside(store, name: str) -> Path | None:
    """Rename dictionary `name`'s training checkpoint (if any) to ``*.before-<time>``; its new path."""
    from interp.dictionaries.checkpoint import StoreCheckpoint
    from interp.store.tensors import tensor_path

    path = tensor_path(store.root, StoreCheckpoint(store, name).bundle)
    if not path.exists():
        return None
    target = path.with_name(f"{path.name}.before-{time.strftime('%Y%m%dT%H%M%S')}")
    path.rename(target)
    return target


def _payload(payload):
    import json

    return json.loads(payload) if isinstance(payload, str) else payload


def _line(r: dict) -> str:
    def show(key):
        return f"{r[key]:.3f} [{r.get(f'{key}_lo', float('nan')):.3f}, {r.get(f'{key}_hi', float('nan')):.3f}]"

    return (f"{r['kind']:<10} k {r['k']:>2}  L0 {show('l0')}  spliced CE {r['ce_spliced']:.4f} "
            f"(clean {r['ce_clean']:.4f}; spliced - clean {show('delta_ce')})  CE recovered {show('ce_recovered')}  "
            f"FVU {show('fvu')}  "
            f"dead {show('dead_fraction')}")


if __name__ == "__main__":
    main()
