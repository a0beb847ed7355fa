"""Transcoder quality vs training tokens: what an hour of this CPU buys.

1. One layer-15 TopK transcoder per token budget (default 20k, 200k, 2M), each with the main
   job's recipe (`interp.jobs.dictionaries.transcoder_recipe`: a skip transcoder, k 16,
   expansion 4, lr `RECIPE_LR`, geometric-median b_dec, AuxK and TopK resampling, artefact
   positions skipped), one pass over its tokens (no epochs), activations
   streamed from the model chunk by chunk, checkpoints every 50 steps: an interrupted budget
   resumes where it stopped when the script is started again with the same store.
2. Every dictionary is evaluated on the same held-out windows (one shared clean/ablation
   baseline, >= 10,000 tokens) with 95% bootstrap intervals over windows.
3. One row per budget (tokens, seconds, dead share, FVU, CE recovered, each with its
   interval) printed and stored in ``results`` (name ``dictionary_tokens``).

Measured with `transcoder_recipe` (10,332 held-out tokens; dead / FVU / CE recovered): 20k
tokens 0.571 / 0.570 / 0.690 (49 s); 200k 0.109 / 0.329 / 0.944 (281 s); 2M 0.144 / 0.297 /
0.975 (2,681 s, under a second niced job). FVU and CE recovered improve with tokens; the dead
share does not after 200k: resampling stops for the final decay phase (20% of steps: 1,562
steps at 2M, 156 at 200k), probably long enough at 2M for latents to fall silent again (not
yet checked with a variant that resamples into the decay).

    .venv/bin/python benchmarks/bench_dictionary_tokens.py --tokens 20000 200000 [2000000] \
        [--layer 15] [--eval-tokens 10240] [--store PATH]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, nargs="+", default=[20_000, 200_000, 2_000_000])
    parser.add_argument("--layer", type=int, default=15)
    parser.add_argument("--eval-tokens", type=int, default=10_240)
    parser.add_argument("--store", default=None, help="store root (default: <data root>/store)")
    args = parser.parse_args()

    from dataclasses import replace

    import torch

    from interp.dictionaries.evaluation import EvalConfig, baseline
    from interp.jobs.dictionaries import DataConfig, _windows, dictionary_sites, train_and_publish
    from interp.jobs.recipe import transcoder_recipe
    from interp.models import load_model
    from interp.paths import store_dir
    from interp.store import Store

    torch.set_num_threads(os.cpu_count() or 1)
    adapter = load_model("smollm2-135m")
    store = Store(args.store or store_dir())
    data = DataConfig(eval_tokens=args.eval_tokens, dashboard_tokens=0)
    site_in, site_out = dictionary_sites(adapter, "transcoder", args.layer)
    start = time.perf_counter()
    shared = baseline(adapter, _windows(adapter, data, "heldout", data.eval_tokens).tokens, site_in, site_out,
                      EvalConfig(skip=data.skip_positions), progress=True)
    print(f"baseline (clean + 2 ablation passes over {args.eval_tokens} tokens): {time.perf_counter() - start:.0f} s")
    rows = []
    for n in args.tokens:
        train = transcoder_recipe(n, checkpoint_every=50)
        start = time.perf_counter()
        pub = train_and_publish(adapter, store, train, args.layer, data=replace(data), shared=shared,
                                command="bench_dictionary_tokens")
        m, ci = pub.metrics, pub.metrics.intervals
        rows.append({"tokens": n, "seconds": time.perf_counter() - start, "n_eval_tokens": m.n_tokens,
                     **{k: getattr(m, k) for k in ("dead_fraction", "fvu", "ce_recovered", "l0", "kl")},
                     "intervals": ci, "name": pub.name})
        print(_line(rows[-1]), flush=True)
    load = os.getloadavg()
    print(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}  ({os.cpu_count()} cores)")
    run = store.start_run("bench_dictionary_tokens", {"tokens": args.tokens, "layer": args.layer})
    store.write("results", [{"name": "dictionary_tokens", "key": f"{adapter.name}/L{args.layer}",
                             "payload": {"rows": rows, "load": list(load), "git": _git()}}], run_id=run)
    store.finish_run(run, "done")


def with_interval(r: dict, key: str) -> str:
    """'value [lo, hi]' of metric `key` of a row holding the metric and its ``intervals``."""
    lo, hi = r["intervals"].get(key, (float("nan"), float("nan")))
    return f"{r[key]:.3f} [{lo:.3f}, {hi:.3f}]"


def _line(r: dict) -> str:
    show = lambda key: with_interval(r, key)  # noqa: E731
    return (f"{r['tokens']:>9,} tokens {r['seconds']:7.0f} s  dead {show('dead_fraction')}  FVU {show('fvu')}  "
            f"CE recovered {show('ce_recovered')}  (on {r['n_eval_tokens']:,} held-out tokens)")


def _git() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


if __name__ == "__main__":
    main()
