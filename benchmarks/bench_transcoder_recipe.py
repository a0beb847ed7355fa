"""The main job's layer-15 transcoder recipe against its variants, side by side in one run.

1. The main job's training windows (`pipeline_transcoders`: 80,000 distinct IMDB tokens,
   artefact positions skipped) run once through SmolLM2 up to layer 15; the MLP input and
   output are cached on disk (reused by later runs).
2. One clean / ablation baseline over the held-out windows (>= 10,000 tokens), shared by
   every variant.
3. Each variant is the main job's `TrainConfig` (`transcoder_recipe`) with some fields changed (`--variant
   name=field:value,field:value`), trained on the cached activations for the same number of
   epochs, then evaluated like the main job's dictionary: dead share, FVU and CE recovered on
   the held-out tokens with 95% bootstrap intervals over windows, and the peak training FVU
   after the first quarter of steps (`train_fvu_peak`: spikes after resamplings show there). A
   variant with ``kind:sae,skip:false`` is an SAE on the MLP output, trained and evaluated on it.
4. One row per variant printed and stored in ``results`` (name ``transcoder_recipe``).

    .venv/bin/python benchmarks/bench_transcoder_recipe.py [--epochs 4] [--store PATH] \
        [--variant resample=topk_resample_every:125] [--variant k32=k:32] \
        [--variant sae8=kind:sae,skip:false,k:8]

With no --variant the default set below runs (the recipe itself first). Measured (SmolLM2
layer 15, 10,332 held-out tokens; dead / FVU / CE recovered): recipe 0.079 / 0.308 / 0.954;
no skip 0.089 / 0.511 / 0.718; no resampling 0.545 / 0.308 / 0.950; neither (the previous
recipe) 0.314 / 0.509 / 0.712; k 32 0.027 / 0.288 / 0.957.

At k 8 (``--epochs 10``: 800k tokens, 3,125 steps; dead / FVU / CE recovered / training FVU peak):
the recipe at k 8 0.258 / 0.316 / 0.962 / 1.78; resampling every 400 steps 0.392 / 0.311 / 0.957 /
1.54; resampled norm 1x 0.457 / 0.308 / 0.971 / 1.06; 0.5x 0.484 / 0.304 / 0.962 / 0.356; 0.2x
0.490 / 0.303 / 0.977 / 0.339 (each ``k:8`` plus ``topk_resample_every`` or ``topk_resample_scale``);
at most 5% of latents moved at once (``topk_resample_max_share:0.05``) 0.255 / 0.314 / 0.956 / 1.2,
15% 0.315 / 0.320 / 0.966 / 2.04; the density bias (``topk_resample_bias:density``) 0.498 / 0.306 /
0.974 / 0.398, and over ``--epochs 25`` (7,812 steps) 0.537 / 0.302 / 0.969 / 0.551. The SAE on the
MLP output at k 8 (``kind:sae,skip:false,k:8``): 0.623 / 0.543 / 0.685 / 0.703; AuxK alone
(``topk_resample_every:0``) 0.566 / 0.533 / 0.689 / 0.562; the density bias 0.291 / 0.513 / 0.736 /
0.545.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import fields, replace

DEFAULT_VARIANTS = (
    "recipe=",
    "no-skip=skip:false",
    "no-resampling=topk_resample_every:0",
    "neither=skip:false,topk_resample_every:0",
    "k32=k:32",
)
"""The recipe (`interp.jobs.dictionaries.transcoder_recipe`), it without its skip term, without
TopK resampling, without both (the previous main-job recipe), and at k 32."""


def parse_variant(text: str, base):
    """'name=field:value,...' -> (name, TrainConfig); values are parsed as the field's type."""
    name, _, spec = text.partition("=")
    if not name:
        raise SystemExit(f"error: variant {text!r} needs a name: name=field:value,...")
    types = {f.name: type(getattr(base, f.name)) for f in fields(base)}
    changes = {}
    for item in filter(None, spec.split(",")):
        key, _, value = item.partition(":")
        if key not in types:
            raise SystemExit(f"error: variant {name!r}: {key!r} is not a TrainConfig field; valid: {sorted(types)}")
        changes[key] = types[key](value) if types[key] is not bool else value.lower() in ("1", "true", "yes")
    try:
        return name, replace(base, **changes)
    except ValueError as e:
        raise SystemExit(f"error: variant {name!r}: {e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layer", type=int, default=15)
    parser.add_argument("--tokens", type=int, default=80_000, help="distinct training tokens (the main job's)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--eval-tokens", type=int, default=10_240)
    parser.add_argument("--variant", action="append", default=None, help="name=field:value,... (repeatable)")
    parser.add_argument("--store", default=None, help="store root (default: <data root>/store)")
    args = parser.parse_args()

    import torch

    from interp.dictionaries.activations import cache_activations, in_memory_batches, load_cached_activations
    from interp.dictionaries.evaluation import EvalConfig, baseline, evaluate_dictionary
    from interp.dictionaries.training import train_dictionary
    from interp.jobs.dictionaries import DataConfig, _shared_baseline, _windows
    from interp.jobs.recipe import transcoder_recipe
    from interp.models import load_model
    from interp.paths import cache_dir, store_dir
    from interp.store import Store

    # the cores this process may use (taskset); os.cpu_count() where affinity is not exposed (macOS)
    torch.set_num_threads(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    recipe = transcoder_recipe(args.tokens * args.epochs)
    variants = [parse_variant(v, recipe) for v in (args.variant or DEFAULT_VARIANTS)]
    adapter = load_model("smollm2-135m")
    store = Store(args.store or store_dir())
    data = DataConfig(eval_tokens=args.eval_tokens, dashboard_tokens=0, activation_tokens=args.tokens)
    sites = adapter.sites(args.layer)
    site_in, site_out = sites.mlp_in, sites.mlp_out
    path = cache_dir() / "activations" / f"recipe-{adapter.store_name.replace('/', '_')}-L{args.layer}-{args.tokens}.safetensors"
    if not path.is_file():
        start = time.perf_counter()
        windows = _windows(adapter, data, "train", args.tokens)
        cache_activations(adapter, windows.tokens, [site_in, site_out], path, skip=data.skip_positions)
        print(f"cached {args.tokens} tokens' activations in {time.perf_counter() - start:.0f} s -> {path}")
    acts = load_cached_activations(path, [site_in, site_out])
    x, y = acts[site_in], acts[site_out]
    start = time.perf_counter()
    heldout = _windows(adapter, data, "heldout", data.eval_tokens).tokens
    shared = baseline(adapter, heldout, site_in, site_out, EvalConfig(skip=data.skip_positions), progress=True)
    # An SAE variant (kind:sae,skip:false) reconstructs the MLP output: same passes, its own input.
    shared_sae = _shared_baseline(adapter, heldout, (site_out, site_out), {(site_in, site_out): shared}, progress=False)
    print(f"baseline over {args.eval_tokens} held-out tokens: {time.perf_counter() - start:.0f} s; "
          f"{x.shape[0]} training rows, {args.epochs} epochs")
    rows = []
    for name, train in variants:
        start = time.perf_counter()
        sae = train.kind == "sae"
        source = y if sae else x
        result = train_dictionary(in_memory_batches(source, None if sae else y, train.batch_size, train.seed), train,
                                  source.shape[1], y.shape[1], progress=False)
        seconds = time.perf_counter() - start
        m = evaluate_dictionary(adapter, result.dictionary, None, site_out if sae else site_in, site_out,
                                EvalConfig(skip=shared.skip), shared=shared_sae if sae else shared)
        rows.append({"variant": name, "changes": {f.name: getattr(train, f.name) for f in fields(train)
                                                  if getattr(train, f.name) != getattr(recipe, f.name)},
                     "train_seconds": seconds, "n_eval_tokens": m.n_tokens, "dead_fraction": m.dead_fraction,
                     "fvu": m.fvu, "ce_recovered": m.ce_recovered, "l0": m.l0, "kl": m.kl,
                     "intervals": m.intervals, "train_fvu_peak": train_fvu_peak(result.history),
                     "train_fvu_peak_by_quarter": fvu_peaks_by_quarter(result.history)})
        print(_line(rows[-1]), flush=True)
    load = os.getloadavg()
    print(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}  ({os.cpu_count()} cores)")
    run = store.start_run("bench_transcoder_recipe", {"layer": args.layer, "tokens": args.tokens,
                                                      "epochs": args.epochs, "variants": [v for v, _ in variants]})
    store.write("results", [{"name": "transcoder_recipe", "key": f"{adapter.name}/L{args.layer}",
                             "payload": {"rows": rows, "load": list(load)}}], run_id=run)
    store.finish_run(run, "done")


def train_fvu_peak(history: list[dict]) -> float:
    """The largest training FVU logged after the first quarter of training (past the warm-up and
    the first resamplings): a stable run stays near its final FVU, an unstable one spikes."""
    late = [h["fvu"] for h in history[len(history) // 4:]]
    return max(late) if late else float("nan")


def fvu_peaks_by_quarter(history: list[dict]) -> list[float]:
    """The largest training FVU logged in each quarter of the steps: spikes that grow from one
    quarter to the next are the start of a divergence."""
    n = len(history)
    return [max((h["fvu"] for h in history[q * n // 4:(q + 1) * n // 4]), default=float("nan")) for q in range(4)]


def _line(r: dict) -> str:
    from bench_dictionary_tokens import with_interval  # a sibling script (benchmarks/ is sys.path[0])

    show = lambda key: with_interval(r, key)  # noqa: E731
    return (f"{r['variant']:>18}  train {r['train_seconds']:5.0f} s  dead {show('dead_fraction')}  "
            f"FVU {show('fvu')}  CE recovered {show('ce_recovered')}  training FVU peak {r['train_fvu_peak']:.3g} "
            f"(by quarter {' / '.join(f'{p:.3g}' for p in r.get('train_fvu_peak_by_quarter', []))})  "
            f"(n={r['n_eval_tokens']})")


if __name__ == "__main__":
    main()
