"""ReAGent benchmarks on SmolLM2: faithfulness of every method, and speed against IG.

    # faithfulness: confident sentence prefixes from IMDB, every method, Soft-NS / Soft-NC
    python benchmarks/bench_reagent.py faith --n 100 --workers 2 --budget-min 55
    python benchmarks/bench_reagent.py aggregate          # table + figure into the store
    # the paper's setting (one cell): analogies prompts, ratio 0.1, top-3 stop, 5000 steps, 5 probes
    python benchmarks/bench_reagent.py --tag paper-analogies --prompts analogies --ratio 0.1 \
        --steps 5000 --probes 5 faith --n 30
    # the earlier soft-metric variant as the headline: --convention interp
    # speed: wall time per attributed token, ReAGent vs integrated gradients, and vs Inseq's
    # ReAGent (Spearman of the importances) when .venv-inseq exists (make .venv-inseq)
    python benchmarks/bench_reagent.py speed --n 10

`faith` writes one record per prompt to the store's ``results`` table (name
``reagent_faithfulness_records:<tag>``) as it goes, so a run cut short by its time budget still
aggregates, and a rerun with the same --tag resumes (a tag holds one setting); `aggregate` writes
``reagent_faithfulness`` (keys ``<tag>:table``, ``<tag>:paired`` and ``<tag>:figure``); `speed`
writes ``reagent_speed`` (key ``<tag>``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path
from queue import Empty

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from interp.jobs.faithfulness_benchmark import (  # noqa: E402
    confident_prefixes,
    evaluate_prompt,
    bootstrap_interval,
    paired_differences,
    summarise,
)
from interp.methods.attribution.store import (  # noqa: E402
    save_record,
    save_speed,
    save_summary,
    stored_records,
    stored_settings,
)


def _configs(args):
    from interp.methods.attribution.baselines import BaselineConfig
    from interp.methods.attribution.faithfulness import FaithfulnessConfig
    from interp.methods.attribution.reagent import ReagentConfig

    return (ReagentConfig(num_probes=args.probes, max_probe_steps=args.steps, replacing_ratio=args.ratio,
                          keep_top_n=args.keep, top_k=args.top_k),
            BaselineConfig(n_steps=args.ig_steps, internal_batch_size=args.ig_steps),
            FaithfulnessConfig(n_samples=args.masks, convention=args.convention))


def _settings(args) -> dict:
    """What makes records comparable: one tag holds records of one setting only."""
    return {"model": args.model, "seed": args.seed, "probes": args.probes, "steps": args.steps,
            "ig_steps": args.ig_steps, "masks": args.masks, "convention": args.convention, "prompts": args.prompts,
            "ratio": args.ratio, "keep": args.keep, "top_k": args.top_k}


def _pending(store, args, n: int) -> list[int]:
    """Prompt indices without a record under this tag (a rerun resumes); refuses mixed settings."""
    done = stored_settings(store, args.tag)
    for settings in done.values():
        if settings is not None and settings != _settings(args):
            raise SystemExit(f"tag {args.tag!r} holds records made with {settings}, not {_settings(args)}: "
                             "rerun with those settings or choose another --tag")
    return [i for i in range(n) if i not in done]


def _worker(shard: int, args, prompts: list[dict], queue, run_id: str, deadline: float) -> None:
    import warnings

    torch.set_num_threads(1)
    from interp.models import load_model
    from interp.store import Store

    adapter, store = load_model(args.model), Store()
    reagent_cfg, base_cfg, faith_cfg = _configs(args)
    warnings.simplefilter("ignore")
    while time.time() < deadline:
        try:
            i = queue.get(timeout=1)
        except Empty:  # every prompt taken
            break
        record = evaluate_prompt(adapter, prompts[i], i, reagent_cfg, base_cfg, faith_cfg)
        record["settings"] = _settings(args)
        save_record(store, args.tag, i, record, run_id)
        print(f"[{shard}] prompt {i} done", flush=True)


def _prompts(adapter, args) -> list[dict]:
    from interp.jobs.faithfulness_benchmark import analogy_prompts

    if args.prompts == "analogies":
        return analogy_prompts(adapter, args.n)
    return confident_prefixes(adapter, args.n, seed=args.seed)


def faith(args) -> None:
    from interp.models import load_model
    from interp.store import Store

    torch.set_num_threads(1)
    deadline = time.time() + 60 * args.budget_min
    adapter = load_model(args.model)
    prompts = _prompts(adapter, args)
    print(f"{len(prompts)} {args.prompts} prompts, lengths {min(len(p['tokens']) for p in prompts)}-"
          f"{max(len(p['tokens']) for p in prompts)} tokens", flush=True)
    del adapter
    store = Store()
    todo = _pending(store, args, len(prompts))
    print(f"{len(prompts) - len(todo)} prompts already stored under tag {args.tag!r}; {len(todo)} to do", flush=True)
    config = {k: v for k, v in vars(args).items() if k != "func"}
    run_id = store.start_run("bench_reagent faith", config, corpus={"name": args.prompts, "n_prompts": len(prompts)},
                             seed=args.seed)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    for i in todo:  # a shared queue: a worker that drew quick prompts takes the next one
        queue.put(i)
    procs = [ctx.Process(target=_worker, args=(s, args, prompts, queue, run_id, deadline)) for s in range(args.workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    store.finish_run(run_id, "done")
    aggregate(args)


def aggregate(args) -> None:
    from interp.store import Store
    from interp.viz.attribution import faithfulness_figure

    store = Store()
    records = stored_records(store, args.tag)
    if not records:
        raise SystemExit(f"no records under tag {args.tag!r}: run `faith` first")
    table, paired = summarise(records), paired_differences(records)
    print(f"{len(records)} prompts; Soft-NS / Soft-NC under the {table['convention'].iloc[0]!r} convention")
    print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    print("\nReAGent minus each method, per prompt (95% bootstrap interval; wins = share of prompts where ReAGent is higher):")
    print(paired.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    run_id = store.start_run("bench_reagent aggregate", {"records": len(records), "tag": args.tag})
    fig = faithfulness_figure(table, title=f"Faithfulness on SmolLM2-135M, {len(records)} prompts "
                                           f"({table['convention'].iloc[0]} convention)")
    from interp.methods.attribution.faithfulness import CONVENTIONS

    others = [c for c in CONVENTIONS if c != table["convention"].iloc[0] and f"{c}:soft_ns" in
              records[0]["methods"][next(iter(records[0]["methods"]))]]
    for other in others:  # the same attributions under the other convention, for comparison
        print(f"\nthe same attributions under the {other!r} convention:")
        print(summarise(records, other).to_string(index=False, float_format=lambda x: f"{x:.3f}"))
        print(paired_differences(records, convention=other).to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    save_summary(store, args.tag, table, paired, fig.to_json(), run_id)
    store.finish_run(run_id, "done")


def speed(args) -> None:
    """ReAGent vs IG wall time per attributed token on the same prompts (and vs Inseq's ReAGent)."""
    from interp.methods.attribution.baselines import integrated_gradients
    from interp.methods.attribution.targets import TokenTarget
    from interp.methods.attribution.reagent import reagent
    from interp.models import load_model
    from interp.store import Store

    torch.set_num_threads(args.threads)
    adapter = load_model(args.model)
    prompts = confident_prefixes(adapter, args.n, seed=args.seed + 1)  # not the faithfulness prompts
    reagent_cfg, base_cfg, _ = _configs(args)
    times, steps, converged, ours = {"reagent": [], "integrated_gradients": []}, [], [], []
    for item in prompts:
        tokens = torch.tensor(item["tokens"])
        target = TokenTarget(item["target"])
        for name, fn, cfg in (("reagent", reagent, reagent_cfg), ("integrated_gradients", integrated_gradients, base_cfg)):
            t0 = time.perf_counter()
            result = fn(adapter, tokens, target, cfg)
            times[name].append(time.perf_counter() - t0)
            if name == "reagent":
                steps += result.extra["steps"]
                converged.append(result.extra["converged_probes"])
                ours.append(result.scores.tolist())
    n = len(prompts)  # one attributed (target) token per prompt
    r_time, ig_time = float(np.sum(times["reagent"])), float(np.sum(times["integrated_gradients"]))
    print(f"settings: reagent {reagent_cfg}, IG n_steps={base_cfg.n_steps}, {args.threads} threads, {n} prompts")
    print(f"reagent probe steps: mean {np.mean(steps):.1f}, max {max(steps)}; converged probes per prompt {converged}")
    print(f"per attributed token: reagent {r_time / n:.2f} s, IG {ig_time / n:.2f} s -> ratio {r_time / ig_time:.2f}x IG "
          f"(target <= 20x)")
    summary = {"n": n, "threads": args.threads, "reagent_s": r_time / n, "ig_s": ig_time / n, "ratio_vs_ig": r_time / ig_time,
               "mean_probe_steps": float(np.mean(steps)), "settings": _settings(args)}
    inseq = _inseq(args, prompts, reagent_cfg)
    if inseq is not None:
        m = len(inseq["scores"])  # prompts Inseq finished, compared against ours on the same prompts
        rhos = [_spearman(a, b, t) for a, b, t in zip(ours, inseq["scores"], prompts)]
        lo, hi = bootstrap_interval(rhos)
        theirs, mine = float(np.sum(inseq["seconds"])), float(np.sum(times["reagent"][:m]))
        summary.update(inseq_version=inseq["version"], inseq_prompts=m, inseq_s=theirs / m, ours_s_same_prompts=mine / m,
                       ratio_inseq_vs_ours=theirs / mine, spearman_mean=float(np.mean(rhos)), spearman_lo=lo,
                       spearman_hi=hi, inseq_same_tokens=inseq["same_tokens"])
        print(f"Inseq {inseq['version']} reagent (uniform replacement, same settings) on {m} of the prompts: "
              f"{theirs / m:.2f} s per attributed token vs {mine / m:.2f} s here -> Inseq / interp = {theirs / mine:.2f}; "
              f"Spearman of the importances (attributable tokens) mean {np.mean(rhos):.3f} [{lo:.3f}, {hi:.3f}]; "
              f"{inseq['same_tokens']}/{m} prompts tokenised identically")
    store = Store()
    run_id = store.start_run("bench_reagent speed", summary)
    save_speed(store, args.tag, summary, run_id)
    store.finish_run(run_id, "done")


def _spearman(ours, theirs, item) -> float:
    from scipy.stats import spearmanr

    keep = slice(1, len(item["tokens"]))  # position 0 is BOS: never attributable in interp
    return float(spearmanr(np.asarray(ours)[keep], np.asarray(theirs)[keep]).statistic)


def _inseq(args, prompts, reagent_cfg) -> dict | None:
    """Inseq's ReAGent on `prompts` in its own venv (see inseq_reagent.py), or None if that venv is missing."""
    import subprocess
    import tempfile

    from interp.paths import models_dir

    python = Path(args.inseq_python)
    if not python.exists():
        print(f"Inseq not compared: {python} is missing (make .venv-inseq creates it)")
        return None
    with tempfile.TemporaryDirectory() as tmp:
        inp, out = Path(tmp) / "in.json", Path(tmp) / "out.json"
        inp.write_text(json.dumps({
            "model_dir": str(models_dir() / args.model), "threads": args.threads,
            "settings": {"num_probes": reagent_cfg.num_probes, "max_probe_steps": reagent_cfg.max_probe_steps,
                         "keep_top_n": reagent_cfg.keep_top_n, "stopping_condition_top_k": reagent_cfg.top_k,
                         "replacing_ratio": reagent_cfg.replacing_ratio},
            "prompts": [{"tokens": p["tokens"], "target": p["target"]} for p in prompts]}))
        script = Path(__file__).with_name("inseq_reagent.py")
        try:
            subprocess.run([str(python), str(script), str(inp), str(out)], check=True, timeout=args.inseq_budget_s)
        except subprocess.TimeoutExpired:
            print(f"Inseq stopped at its {args.inseq_budget_s} s budget; comparing the prompts it finished")
        if not out.exists():
            print("Inseq finished no prompt within its budget")
            return None
        found = json.loads(out.read_text())
    results = found["results"]
    return {"version": found["inseq"], "seconds": [r["seconds"] for r in results],
            "scores": [r["scores"] for r in results], "same_tokens": sum(r["same_tokens"] for r in results)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tag", default="default", help="names this benchmark's records and summary in the store")
    parser.add_argument("--probes", type=int, default=16, help="ReAGent num_probes")
    parser.add_argument("--steps", type=int, default=3000, help="ReAGent max_probe_steps")
    parser.add_argument("--ig-steps", type=int, default=50, help="integrated gradients n_steps")
    parser.add_argument("--masks", type=int, default=8, help="Bernoulli masks per soft metric")
    parser.add_argument("--convention", default="reagent", choices=("reagent", "interp"),
                        help="Soft-NS / Soft-NC convention of the headline (the other is recorded too)")
    parser.add_argument("--prompts", default="imdb", choices=("imdb", "analogies"),
                        help="imdb: confident IMDB prefixes; analogies: the paper's analogies-style prompts")
    parser.add_argument("--ratio", type=float, default=0.3, help="ReAGent replacing_ratio")
    parser.add_argument("--keep", type=int, default=5, help="ReAGent keep_top_n (stopping condition)")
    parser.add_argument("--top-k", type=int, default=3, help="ReAGent stopping condition top_k")
    sub = parser.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("faith")
    f.add_argument("--n", type=int, default=100)
    f.add_argument("--workers", type=int, default=1)
    f.add_argument("--budget-min", type=float, default=60.0)
    f.set_defaults(func=faith)
    sub.add_parser("aggregate").set_defaults(func=aggregate)
    s = sub.add_parser("speed")
    s.add_argument("--n", type=int, default=10)
    s.add_argument("--threads", type=int, default=2)
    s.add_argument("--inseq-budget-s", type=float, default=1800, help="stop Inseq after this many seconds")
    s.add_argument("--inseq-python", default=str(Path(__file__).resolve().parent.parent / ".venv-inseq/bin/python"),
                   help="python of a venv with inseq (make .venv-inseq); compared when it exists")
    s.set_defaults(func=speed)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args.func(args)


if __name__ == "__main__":
    main()
