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

Soft-NS / Soft-NC follow ``faith_config.convention`` (default "reagent", the authors' code; see
`interp.methods.attribution.faithfulness`); each record also holds the other convention's
soft metrics under ``<convention>:soft_ns`` etc. (the same attribution, its own masks' pass).
`analogy_prompts` builds the paper's analogies-style prompts (its templates with a distractor
clause) for the one-cell reproduction.

4. `run_benchmark` (``interp faithfulness``) runs steps 1-3 as a job (`interp.jobs.units`):
   prompt shards run locally or as Ray tasks, each shard's records written together; a rerun
   with the same tag computes only the missing prompts.

``benchmarks/bench_reagent.py`` runs it over the corpus and stores records and summary in the
``results`` table; `interp.methods.attribution.store` writes them and reads them back
(`stored_records`, `stored_summary`) for the notebook and the dashboard.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd
import torch

from interp.jobs.units import ModelJob, Unit, run_job, shards
from interp.methods.attribution.faithfulness import bootstrap_interval  # noqa: F401 - re-exported

METHODS = ("reagent", "reagent_minmax", "occlusion", "integrated_gradients", "input_x_gradient", "gradient_norm",
           "attention_last", "attention_rollout", "random")
"""Compared methods; ``reagent_minmax`` re-reads ReAGent's probes with min-max importances (no extra runs)."""
METRICS = ("soft_ns", "soft_nc", "comp@0.2", "suff@0.2")
SOFT = ("soft_ns", "soft_nc", "soft_s", "soft_c", "s0", "soft_ns_lo", "soft_ns_hi", "soft_nc_lo", "soft_nc_hi")


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


ANALOGY_TEMPLATES = {
    # casszhao/ReAGent src/data/data_utils.py (after Vafa et al. 2021): [A]/[B] are an analogy
    # pair of Mikolov et al.'s test set; the prompt ends just before the last slot (the target).
    "capital-common-countries": ("When my flight landed in [B], I converted my currency and slowly fell asleep. "
                                 "(I had a terrifying dream about my grandmother, but that's a story for another "
                                 "time). I was staying in the capital, [A]"),
    "family": ("I initially invited my [A], who gladly accepted my invitation. (My favorite song just came on, so I "
               "was able to relax). When I learned that women were allowed, I went ahead and also invited my [B]"),
    "gram2-opposite": ("I thought it was [A]. (Just then an ad came on the TV, but that's irrelevant). It was the "
                       "opposite of that: it was [B]"),
    "gram8-plural": ("I really wanted to buy the [A], more than I ever wanted to buy anything before. (I was also "
                     "behind on my homework, but that's another story). So I went to the store and asked if they had "
                     "any [B]"),
}
ANALOGY_PAIRS = {  # (A, B) pairs from Mikolov et al.'s questions-words.txt, one section each
    "capital-common-countries": [("Athens", "Greece"), ("Berlin", "Germany"), ("Paris", "France"), ("Rome", "Italy"),
                                 ("Madrid", "Spain"), ("London", "England"), ("Moscow", "Russia"), ("Tokyo", "Japan"),
                                 ("Cairo", "Egypt"), ("Beijing", "China"), ("Oslo", "Norway"), ("Lisbon", "Portugal"),
                                 ("Vienna", "Austria"), ("Dublin", "Ireland"), ("Stockholm", "Sweden"),
                                 ("Helsinki", "Finland"), ("Ottawa", "Canada"), ("Havana", "Cuba"),
                                 ("Baghdad", "Iraq"), ("Tehran", "Iran"), ("Bangkok", "Thailand"), ("Hanoi", "Vietnam")],
    "family": [("boy", "girl"), ("brother", "sister"), ("father", "mother"), ("grandfather", "grandmother"),
               ("husband", "wife"), ("king", "queen"), ("man", "woman"), ("nephew", "niece"), ("son", "daughter"),
               ("uncle", "aunt"), ("dad", "mom"), ("groom", "bride"), ("prince", "princess"), ("stepson", "stepdaughter")],
    "gram2-opposite": [("aware", "unaware"), ("certain", "uncertain"), ("clear", "unclear"), ("comfortable",
                       "uncomfortable"), ("efficient", "inefficient"), ("fortunate", "unfortunate"), ("honest",
                       "dishonest"), ("possible", "impossible"), ("pleasant", "unpleasant"), ("likely", "unlikely"),
                       ("known", "unknown"), ("sure", "unsure"), ("tasteful", "tasteless"), ("reasonable", "unreasonable")],
    "gram8-plural": [("banana", "bananas"), ("bird", "birds"), ("bottle", "bottles"), ("building", "buildings"),
                     ("car", "cars"), ("cat", "cats"), ("computer", "computers"), ("dog", "dogs"), ("apple", "apples"),
                     ("horse", "horses"), ("machine", "machines"), ("monkey", "monkeys"), ("pig", "pigs"),
                     ("snake", "snakes"), ("rat", "rats"), ("mouse", "mice"), ("child", "children"), ("dollar", "dollars")],
}


def analogy_prompts(adapter, n: int) -> list[dict]:
    """Up to n analogies-style prompts (the paper's templates, each with its distractor clause)
    whose target word is one token that the model predicts greedily - the authors keep only
    analogies the model gets right. Interleaved over the four sections; BOS prepended."""
    rows = []
    for section, template in ANALOGY_TEMPLATES.items():
        last = "[A]" if template.rindex("[A]") > template.rindex("[B]") else "[B]"
        for a, b in ANALOGY_PAIRS[section]:
            text = template.replace("[A]", a).replace("[B]", b)
            word = a if last == "[A]" else b
            prompt = text[: text.rindex(word)].rstrip()
            ids = adapter.tokenizer(" " + word, add_special_tokens=False)["input_ids"]
            if len(ids) == 1:
                rows.append((section, prompt, ids[0]))
    order = sorted(range(len(rows)), key=lambda i: (sum(r[0] == rows[i][0] for r in rows[:i]), i))
    out = []
    for i in order:
        section, prompt, target = rows[i]
        tokens = [adapter.info.bos_token_id] + adapter.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        probs = torch.softmax(adapter.logits(torch.tensor([tokens]))[0, -1].float(), -1)
        if int(probs.argmax()) == target:
            out.append({"tokens": tokens, "prompt": prompt, "target": target, "p": float(probs[target]),
                        "section": section})
        if len(out) >= n:
            break
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
    from interp.methods.attribution.faithfulness import CONVENTIONS, faithfulness

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
        for other in CONVENTIONS:
            if other != faith_config.convention:
                alt = faithfulness(adapter, result, target, replace(faith_config, seed=seed, convention=other)).to_dict()
                faith.update({f"{other}:{k}": alt[k] for k in SOFT})
        record["methods"][name] = {**faith, "seconds": seconds, "cpu_seconds": cpu_seconds,
                                   "converged": result.extra.get("converged_probes"),
                                   "num_probes": result.extra.get("num_probes"), "scores": result.scores.tolist()}
    return record


def summarise(records: list[dict], convention: str | None = None) -> pd.DataFrame:
    """Per method: n, mean and 95% bootstrap interval (over prompts) of Soft-NS / Soft-NC, hard
    metrics, cost. `convention`: read that convention's soft metrics (default: the records' own)."""
    rows = []
    own = records[0]["methods"][next(iter(records[0]["methods"]))].get("convention", "interp") if records else None
    prefix = "" if convention in (None, own) else f"{convention}:"
    for name in METHODS:
        per = [r["methods"][name] for r in records if name in r["methods"]]
        if not per:
            continue
        row = {"method": name, "n": len(per), "convention": convention or own}
        for metric in ("soft_ns", "soft_nc"):
            v = [p[prefix + metric] for p in per]
            row[metric] = float(np.mean(v))
            row[f"{metric}_lo"], row[f"{metric}_hi"] = bootstrap_interval(v)
        for metric in ("comp@0.2", "suff@0.2", "seconds"):
            row[metric] = float(np.mean([p[metric] for p in per]))
        if all("cpu_seconds" in p for p in per):
            row["cpu_seconds"] = float(np.mean([p["cpu_seconds"] for p in per]))
        if name == "reagent":
            row["converged_share"] = float(np.mean([(p["converged"] or 0) > 0 for p in per]))
            if all(p.get("num_probes") for p in per):
                row["converged_probe_share"] = float(np.mean([p["converged"] / p["num_probes"] for p in per]))
        rows.append(row)
    return pd.DataFrame(rows).sort_values("soft_ns", ascending=False, ignore_index=True)


def paired_differences(records: list[dict], reference: str = "reagent", convention: str | None = None) -> pd.DataFrame:
    """`reference` minus each other method, per prompt: mean and 95% bootstrap interval, per soft metric."""
    rows = []
    own = records[0]["methods"][next(iter(records[0]["methods"]))].get("convention", "interp") if records else None
    prefix = "" if convention in (None, own) else f"{convention}:"
    both = [r for r in records if reference in r["methods"]]
    for name in METHODS:
        if name == reference:
            continue
        pairs = [r["methods"] for r in both if name in r["methods"]]
        if not pairs:
            continue
        row = {"method": name, "n": len(pairs), "convention": convention or own}
        for metric in ("soft_ns", "soft_nc"):
            d = [m[reference][prefix + metric] - m[name][prefix + metric] for m in pairs]
            row[f"{metric}_diff"] = float(np.mean(d))
            row[f"{metric}_diff_lo"], row[f"{metric}_diff_hi"] = bootstrap_interval(d)
            row[f"{metric}_wins"] = float(np.mean([x > 0 for x in d]))
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class BenchmarkConfig:
    """What one faithfulness benchmark computes (``interp faithfulness``); one tag holds one setting."""

    tag: str = "default"
    """Names the benchmark's records and summary in the store."""
    n: int = 100
    """Prompts (fewer if the corpus runs out of confident prefixes)."""
    prompts: str = "imdb"
    """imdb (confident IMDB prefixes) or analogies (the paper's analogies-style prompts)."""
    seed: int = 0
    """Seed of the prompt choice, the random baseline and the masks."""
    probes: int = 16
    """ReAGent num_probes."""
    steps: int = 3000
    """ReAGent max_probe_steps."""
    ig_steps: int = 50
    """Integrated gradients n_steps."""
    masks: int = 8
    """Bernoulli masks per soft metric."""
    convention: str = "reagent"
    """Soft-NS / Soft-NC convention of the headline: reagent or interp (the other is recorded too)."""
    ratio: float = 0.3
    """ReAGent replacing_ratio."""
    keep: int = 5
    """ReAGent keep_top_n (stopping condition)."""
    top_k: int = 3
    """ReAGent stopping condition top_k."""
    methods: tuple[str, ...] = METHODS
    """Compared methods (``reagent_minmax`` right after ``reagent``)."""
    shard_size: int = 4
    """Prompts per unit of work."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "methods", tuple(self.methods))
        if self.n < 1 or self.shard_size < 1:
            raise ValueError(f"n and shard_size must be >= 1, got {self.n} and {self.shard_size}")
        if self.prompts not in ("imdb", "analogies"):
            raise ValueError(f"unknown prompt set {self.prompts!r}; valid: imdb, analogies")
        if self.convention not in ("reagent", "interp"):
            raise ValueError(f"unknown convention {self.convention!r}; valid: reagent, interp")
        bad = [m for m in self.methods if m not in METHODS]
        if bad or not self.methods:
            raise ValueError(f"unknown methods {bad}; valid: {', '.join(METHODS)}")

    def settings(self, model: str) -> dict:
        """What makes records comparable (stored with each record)."""
        return {"model": model, "seed": self.seed, "probes": self.probes, "steps": self.steps,
                "ig_steps": self.ig_steps, "masks": self.masks, "convention": self.convention,
                "prompts": self.prompts, "ratio": self.ratio, "keep": self.keep, "top_k": self.top_k,
                **({} if self.methods == METHODS else {"methods": list(self.methods)})}

    def method_configs(self):
        """(ReagentConfig, BaselineConfig, FaithfulnessConfig) of these settings."""
        from interp.methods.attribution.baselines import BaselineConfig
        from interp.methods.attribution.faithfulness import FaithfulnessConfig
        from interp.methods.attribution.reagent import ReagentConfig

        return (ReagentConfig(num_probes=self.probes, max_probe_steps=self.steps, replacing_ratio=self.ratio,
                              keep_top_n=self.keep, top_k=self.top_k),
                BaselineConfig(n_steps=self.ig_steps, internal_batch_size=self.ig_steps),
                FaithfulnessConfig(n_samples=self.masks, convention=self.convention))


def run_benchmark(store, model, config: BenchmarkConfig = BenchmarkConfig(), *, items: list[dict] | None = None,
                  backend: str = "local", address: str | None = None, progress: bool = True, device: str = "auto"):
    """The benchmark as a job (`interp.jobs.units`): prompt shards, each shard's records written
    together; a rerun with the same tag computes only the missing prompts, then the summary
    (table, paired differences, figure) is written from every stored record. Returns
    (summary table, paired differences).

    `items`: the prompts (`confident_prefixes` entries: tokens, prompt, target, p) instead of
    the ones `config.prompts` selects."""
    return run_job(store, FaithfulnessJob(model, config, device, items), backend=backend, address=address,
                   progress=progress).finished


class FaithfulnessJob(ModelJob):
    """The faithfulness benchmark on the job interface: one unit per shard of prompts."""

    command = "interp faithfulness"

    def __init__(self, model, config: BenchmarkConfig, device: str = "auto", items: list[dict] | None = None) -> None:
        super().__init__(model, device)
        self.bench, self.items = config, items

    def config(self) -> dict:
        return {**asdict(self.bench), "model": self.model_name, "device": self.device,
                **({} if self.items is None else {"items": len(self.items)})}

    def _settings(self) -> dict:
        return self.bench.settings(self.model_name)

    def plan(self, store, run_id: str, force: bool):
        from interp.methods.attribution.store import stored_settings

        adapter = self.model()
        if self.items is not None:
            prompts = list(self.items)[: self.bench.n]
        elif self.bench.prompts == "analogies":
            prompts = analogy_prompts(adapter, self.bench.n)
        else:
            prompts = confident_prefixes(adapter, self.bench.n, seed=self.bench.seed)
        if not prompts:
            raise ValueError(f"no {self.bench.prompts} prompt passes the confidence filter for {self.model_name}")
        done = {} if force else stored_settings(store, self.bench.tag)
        for settings in done.values():
            if settings is not None and settings != self._settings():
                raise ValueError(f"tag {self.bench.tag!r} holds records made with {settings}, not "
                                 f"{self._settings()}: rerun with those settings or choose another --tag")
        self.n_prompts = len(prompts)
        units, skipped = [], []
        for shard in shards(list(range(len(prompts))), self.bench.shard_size):
            key = f"{self.bench.tag}/prompts {shard[0]}-{shard[-1]}"
            if all(i in done for i in shard):
                skipped.append(key)
            else:
                units.append(Unit(key, [(i, prompts[i]) for i in shard if i not in done]))
        return units, skipped

    def run(self, store, unit: Unit, run_id: str) -> int:
        from interp.methods.attribution.store import RECORDS

        adapter = self.model()
        reagent, baseline_config, faith = self.bench.method_configs()
        rows = []
        for i, item in unit.spec:
            record = evaluate_prompt(adapter, item, i, reagent, baseline_config, faith, self.bench.methods)
            record["settings"] = self._settings()
            rows.append({"name": f"{RECORDS}:{self.bench.tag}", "key": f"{i:04d}", "payload": record})
        store.write("results", rows, run_id=run_id)  # the shard's records land together
        return len(rows)

    def finish(self, store, run_id: str, outcome):
        from interp.methods.attribution.store import save_summary, stored_records
        from interp.viz.attribution import faithfulness_figure

        records = stored_records(store, self.bench.tag)
        table, paired = summarise(records), paired_differences(records)
        fig = faithfulness_figure(table, title=f"Faithfulness on {self.model_name}, {len(records)} prompts "
                                               f"({table['convention'].iloc[0]} convention)")
        save_summary(store, self.bench.tag, table, paired, fig.to_json(), run_id)
        return table, paired
