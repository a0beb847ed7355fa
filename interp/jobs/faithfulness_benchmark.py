"""The faithfulness benchmark of ReAGent against its baselines, as in Zhao & Shan (2024), Table 2.

1. Prompts: sentence prefixes from the IMDB corpus (BOS + 10..19 tokens) whose greedy next
   token the model predicts with p > 0.5 - "confident" next tokens, so that every method
   attributes the same clear target (`confident_prefixes`).
2. Every method of `METHODS` attributes that token; `faithfulness` scores it (Soft-NS,
   Soft-NC, hard comprehensiveness / sufficiency at top-k%), seeded per prompt
   (`evaluate_prompt` - one JSON-able record per prompt, the unit a benchmark run stores and
   resumes by).
3. `summarise`: per method the mean of each metric over prompts with a 95% percentile
   bootstrap interval (2000 resamples of prompts), and `paired_differences`: ReAGent minus
   each method per prompt, with its bootstrap interval - the paired test of "ReAGent is more
   faithful" (an interval above 0).

``benchmarks/bench_reagent.py`` runs it over the corpus and stores records and summary in the
``results`` table; `interp.methods.attribution.store` writes them and reads them back
(`stored_records`, `stored_summary`) for the notebook and the dashboard.
"""

from __future__ import annotations

import re
import time
from dataclasses import replace

import numpy as np
import pandas as pd
import torch

METHODS = ("reagent", "reagent_minmax", "occlusion", "integrated_gradients", "input_x_gradient", "gradient_norm",
           "attention_last", "attention_rollout", "random")
"""Compared methods; ``reagent_minmax`` re-reads ReAGent's probes with min-max importances (no extra runs)."""
METRICS = ("soft_ns", "soft_nc", "comp@0.2", "suff@0.2")


def confident_prefixes(adapter, n: int, min_len: int = 11, max_len: int = 20, threshold: float = 0.5,
                       seed: int = 0) -> list[dict]:
    """Sentence prefixes from IMDB reviews (BOS + 10..19 tokens) whose greedy next token has p > threshold.

    Deterministic for a seed: the first n prompts are the same whatever n.
    """
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


def _minmax(adapter, result):
    from interp.methods.attribution.targets import special_mask
    from interp.methods.attribution.reagent import aggregate_probes

    return aggregate_probes(torch.tensor(result.extra["probe_scores"]), torch.tensor(result.extra["converged"]),
                            ~special_mask(adapter, result.token_ids), "minmax")


def evaluate_prompt(adapter, item: dict, seed: int, reagent_config, baseline_config, faith_config,
                    methods=METHODS) -> dict:
    """One benchmark record: every method's importances, faithfulness and cost for one prompt.

    `item`: a `confident_prefixes` entry; `seed` seeds the random baseline and the masks.
    Seconds are wall time, CPU seconds this process's (unaffected by other load).
    """
    from interp.methods.attribution.registry import METHODS as FNS
    from interp.methods.attribution.targets import TokenTarget
    from interp.methods.attribution.faithfulness import faithfulness

    tokens = torch.tensor(item["tokens"])
    target = TokenTarget(item["target"], label=f"p({adapter.decode([item['target']])!r})")
    record = {"prompt": item["prompt"], "target": target.label, "target_id": item["target"], "p": item["p"],
              "tokens": item["tokens"], "n_tokens": len(tokens), "methods": {}}
    result = None
    for name in methods:
        t0, c0 = time.perf_counter(), time.process_time()
        if name == "reagent_minmax":  # the same probes, importance = min-max(s) instead of softmax(s)
            if result is None or result.method != "reagent":
                raise ValueError("reagent_minmax re-reads ReAGent's probes: list it right after 'reagent'")
            result = replace(result, method=name, scores=_minmax(adapter, result))
        else:
            config = reagent_config if name == "reagent" else replace(baseline_config, seed=seed)
            result = FNS[name](adapter, tokens, target, config)
        seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
        faith = faithfulness(adapter, result, target, replace(faith_config, seed=seed)).to_dict()
        record["methods"][name] = {**faith, "seconds": seconds, "cpu_seconds": cpu_seconds,
                                   "converged": result.extra.get("converged_probes"), "scores": result.scores.tolist()}
    return record


def bootstrap_interval(values, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% percentile bootstrap interval of the mean (resampling the values, i.e. prompts)."""
    values = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(n_boot, len(values)))].mean(1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def summarise(records: list[dict]) -> pd.DataFrame:
    """Per method: n, mean and 95% bootstrap interval of Soft-NS / Soft-NC, hard metrics, cost."""
    rows = []
    for name in METHODS:
        per = [r["methods"][name] for r in records if name in r["methods"]]
        if not per:
            continue
        row = {"method": name, "n": len(per)}
        for metric in ("soft_ns", "soft_nc"):
            v = [p[metric] for p in per]
            row[metric] = float(np.mean(v))
            row[f"{metric}_lo"], row[f"{metric}_hi"] = bootstrap_interval(v)
        for metric in ("comp@0.2", "suff@0.2", "seconds"):
            row[metric] = float(np.mean([p[metric] for p in per]))
        if all("cpu_seconds" in p for p in per):
            row["cpu_seconds"] = float(np.mean([p["cpu_seconds"] for p in per]))
        if name == "reagent":
            row["converged_share"] = float(np.mean([(p["converged"] or 0) > 0 for p in per]))
        rows.append(row)
    return pd.DataFrame(rows).sort_values("soft_ns", ascending=False, ignore_index=True)


def paired_differences(records: list[dict], reference: str = "reagent") -> pd.DataFrame:
    """`reference` minus each other method, per prompt: mean and 95% bootstrap interval, per soft metric."""
    rows = []
    both = [r for r in records if reference in r["methods"]]
    for name in METHODS:
        if name == reference:
            continue
        pairs = [r["methods"] for r in both if name in r["methods"]]
        if not pairs:
            continue
        row = {"method": name, "n": len(pairs)}
        for metric in ("soft_ns", "soft_nc"):
            d = [m[reference][metric] - m[name][metric] for m in pairs]
            row[f"{metric}_diff"] = float(np.mean(d))
            row[f"{metric}_diff_lo"], row[f"{metric}_diff_hi"] = bootstrap_interval(d)
            row[f"{metric}_wins"] = float(np.mean([x > 0 for x in d]))
        rows.append(row)
    return pd.DataFrame(rows)
