"""ReAGent benchmarks on SmolLM2: faithfulness of every method, and speed against IG.

    # faithfulness: confident sentence prefixes from IMDB, every method, Soft-NS / Soft-NC
    python benchmarks/bench_reagent.py faith --n 100 --workers 2 --budget-min 55
    python benchmarks/bench_reagent.py aggregate          # table + figure into the store
    # speed: wall time per attributed token, ReAGent vs integrated gradients (and Inseq if present)
    python benchmarks/bench_reagent.py speed --n 4

`faith` writes one record per prompt to the store's ``results`` table (name
``reagent_faithfulness_records:<tag>``) as it goes, so a run cut short by its time budget still
aggregates; `aggregate` writes ``reagent_faithfulness`` (keys ``<tag>:table`` and ``<tag>:figure``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import re
import time
from dataclasses import replace
from queue import Empty

import numpy as np
import torch

METHODS = ("reagent", "reagent_minmax", "occlusion", "integrated_gradients", "input_x_gradient", "gradient_norm",
           "attention_last", "attention_rollout", "random")
RECORDS, SUMMARY = "reagent_faithfulness_records", "reagent_faithfulness"


def confident_prefixes(adapter, n: int, min_len: int = 11, max_len: int = 20, threshold: float = 0.5,
                       seed: int = 0) -> list[dict]:
    """Sentence prefixes from IMDB reviews (BOS + 10..19 tokens) whose greedy next token has p > threshold."""
    from interp.corpus import load_documents

    rng = np.random.default_rng(seed)
    docs = load_documents("imdb")
    out: list[dict] = []
    for start in range(0, len(docs), 64):
        sentences = []
        for j in rng.permutation(len(docs))[start : start + 64]:
            parts = [s for s in re.split(r"(?<=[.!?])\s+", docs[j].text) if len(s.split()) >= 14]
            if parts:
                sentences.append(parts[int(rng.integers(len(parts)))])
        ids = [[adapter.info.bos_token_id] + adapter.tokenizer(s, add_special_tokens=False)["input_ids"][: max_len]
               for s in sentences]
        ids = torch.tensor([r for r in ids if len(r) > max_len])
        probs = torch.softmax(adapter.logits(ids).float(), -1)  # (batch, pos, vocab)
        for row, p in zip(ids, probs):
            for end in range(min_len, max_len + 1):  # prefix = row[:end], prediction at end - 1
                top = p[end - 1].max()
                if top > threshold:
                    prefix = row[:end]
                    out.append({"tokens": prefix.tolist(), "prompt": adapter.decode(prefix[1:]),
                                "target": int(p[end - 1].argmax()), "p": float(top)})
                    break
            if len(out) >= n:
                return out
    return out


def _configs(args):
    from interp.methods.attribution_baselines import BaselineConfig
    from interp.methods.faithfulness import FaithfulnessConfig
    from interp.methods.reagent import ReagentConfig

    return (ReagentConfig(num_probes=args.probes, max_probe_steps=args.steps),
            BaselineConfig(n_steps=args.ig_steps, internal_batch_size=args.ig_steps),
            FaithfulnessConfig(n_samples=args.masks))


def _minmax(adapter, result) -> torch.Tensor:
    from interp.methods.attribution_targets import special_mask
    from interp.methods.reagent import aggregate_probes

    return aggregate_probes(torch.tensor(result.extra["probe_scores"]), torch.tensor(result.extra["converged"]),
                            ~special_mask(adapter, result.token_ids), "minmax")


def _settings(args) -> dict:
    """What makes records comparable: one tag holds records of one setting only."""
    return {"model": args.model, "seed": args.seed, "probes": args.probes, "steps": args.steps,
            "ig_steps": args.ig_steps, "masks": args.masks}


def _pending(store, args, n: int) -> list[int]:
    """Prompt indices without a record under this tag (a rerun resumes); refuses mixed settings."""
    found = store.read("results", where={"name": f"{RECORDS}:{args.tag}"}, columns=["key", "payload"])
    done = set()
    for key, payload in zip(found["key"], found["payload"]):
        settings = json.loads(payload).get("settings")
        if settings is not None and settings != _settings(args):
            raise SystemExit(f"tag {args.tag!r} holds records made with {settings}, not {_settings(args)}: "
                             "rerun with those settings or choose another --tag")
        done.add(int(key))
    return [i for i in range(n) if i not in done]


def _worker(shard: int, args, prompts: list[dict], queue, run_id: str, deadline: float) -> None:
    import warnings

    torch.set_num_threads(1)
    from interp.methods.attribution import METHODS as FNS
    from interp.methods.attribution_targets import TokenTarget
    from interp.methods.faithfulness import faithfulness
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
        item = prompts[i]
        tokens = torch.tensor(item["tokens"])
        target = TokenTarget(item["target"], label=f"p({adapter.decode([item['target']])!r})")
        record = {"prompt": item["prompt"], "target": target.label, "target_id": item["target"], "p": item["p"],
                  "tokens": item["tokens"], "n_tokens": len(tokens), "settings": _settings(args), "methods": {}}
        for name in METHODS:
            t0, c0 = time.perf_counter(), time.process_time()
            if name == "reagent_minmax":  # the same probes, importance = min-max(s) instead of softmax(s)
                result = replace(result, method=name, scores=_minmax(adapter, result))
            else:
                cfg = reagent_cfg if name == "reagent" else replace(base_cfg, seed=i)
                result = FNS[name](adapter, tokens, target, cfg)
            seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
            faith = faithfulness(adapter, result, target, replace(faith_cfg, seed=i)).to_dict()
            record["methods"][name] = {**faith, "seconds": seconds, "cpu_seconds": cpu_seconds,
                                       "converged": result.extra.get("converged_probes"),
                                       "scores": result.scores.tolist()}
        store.write("results", [{"name": f"{RECORDS}:{args.tag}", "key": f"{i:04d}", "payload": record}], run_id=run_id)
        print(f"[{shard}] prompt {i} done", flush=True)


def faith(args) -> None:
    from interp.models import load_model
    from interp.store import Store

    torch.set_num_threads(1)
    deadline = time.time() + 60 * args.budget_min
    adapter = load_model(args.model)
    prompts = confident_prefixes(adapter, args.n, seed=args.seed)
    print(f"{len(prompts)} confident prefixes (p > 0.5), lengths {min(len(p['tokens']) for p in prompts)}-"
          f"{max(len(p['tokens']) for p in prompts)} tokens", flush=True)
    del adapter
    store = Store()
    todo = _pending(store, args, len(prompts))
    print(f"{len(prompts) - len(todo)} prompts already stored under tag {args.tag!r}; {len(todo)} to do", flush=True)
    config = {k: v for k, v in vars(args).items() if k != "func"}
    run_id = store.start_run("bench_reagent faith", config, corpus={"name": "imdb", "n_prompts": len(prompts)},
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


def _bootstrap(values: np.ndarray, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(n_boot, len(values)))].mean(1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def aggregate(args) -> None:
    import pandas as pd

    from interp.store import Store
    from interp.viz.attribution import faithfulness_figure

    store = Store()
    records = store.read("results", where={"name": f"{RECORDS}:{args.tag}"})
    payloads = [json.loads(p) for p in records["payload"]]
    rows = []
    for name in METHODS:
        per = [p["methods"][name] for p in payloads if name in p["methods"]]
        if not per:
            continue
        row = {"method": name, "n": len(per)}
        for metric in ("soft_ns", "soft_nc"):
            v = np.array([r[metric] for r in per])
            row[metric] = float(v.mean())
            row[f"{metric}_lo"], row[f"{metric}_hi"] = _bootstrap(v)
        for metric in ("comp@0.2", "suff@0.2", "seconds"):
            row[metric] = float(np.mean([r[metric] for r in per]))
        if name == "reagent":
            row["converged_share"] = float(np.mean([r["converged"] > 0 for r in per]))
        rows.append(row)
    table = pd.DataFrame(rows).sort_values("soft_ns", ascending=False)
    print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    run_id = store.start_run("bench_reagent aggregate", {"records": len(payloads), "tag": args.tag})
    fig = faithfulness_figure(table, title=f"Faithfulness on SmolLM2-135M, {len(payloads)} IMDB prefixes")
    store.write("results", [{"name": SUMMARY, "key": f"{args.tag}:table", "payload": table.to_dict("records")},
                            {"name": SUMMARY, "key": f"{args.tag}:figure", "payload": fig.to_json()}], run_id=run_id)
    store.finish_run(run_id, "done")


def speed(args) -> None:
    from interp.methods.attribution_baselines import integrated_gradients
    from interp.methods.attribution_targets import TokenTarget
    from interp.methods.reagent import reagent
    from interp.models import load_model

    torch.set_num_threads(1)
    adapter = load_model(args.model)
    prompts = confident_prefixes(adapter, args.n, seed=args.seed + 1)
    reagent_cfg, base_cfg, _ = _configs(args)
    times, steps, converged = {"reagent": 0.0, "integrated_gradients": 0.0}, [], []
    for item in prompts:
        tokens = torch.tensor(item["tokens"])
        target = TokenTarget(item["target"])
        for name, fn, cfg in (("reagent", reagent, reagent_cfg), ("integrated_gradients", integrated_gradients, base_cfg)):
            t0 = time.perf_counter()
            result = fn(adapter, tokens, target, cfg)
            times[name] += time.perf_counter() - t0
            if name == "reagent":
                steps += result.extra["steps"]
                converged.append(result.extra["converged_probes"])
    n = len(prompts)  # one attributed (target) token per prompt
    print(f"settings: reagent {reagent_cfg}, IG n_steps={base_cfg.n_steps}")
    print(f"reagent probe steps: mean {np.mean(steps):.1f}, max {max(steps)}; converged probes per prompt {converged}")
    print(f"per attributed token: reagent {times['reagent'] / n:.2f} s, IG {times['integrated_gradients'] / n:.2f} s, "
          f"ratio {times['reagent'] / times['integrated_gradients']:.1f}x IG over {n} prompts")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tag", default="default", help="names this benchmark's records and summary in the store")
    parser.add_argument("--probes", type=int, default=16, help="ReAGent num_probes")
    parser.add_argument("--steps", type=int, default=3000, help="ReAGent max_probe_steps")
    parser.add_argument("--ig-steps", type=int, default=50, help="integrated gradients n_steps")
    parser.add_argument("--masks", type=int, default=8, help="Bernoulli masks per soft metric")
    sub = parser.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("faith")
    f.add_argument("--n", type=int, default=100)
    f.add_argument("--workers", type=int, default=1)
    f.add_argument("--budget-min", type=float, default=60.0)
    f.set_defaults(func=faith)
    sub.add_parser("aggregate").set_defaults(func=aggregate)
    s = sub.add_parser("speed")
    s.add_argument("--n", type=int, default=4)
    s.set_defaults(func=speed)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args.func(args)


if __name__ == "__main__":
    main()
