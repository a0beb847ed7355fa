"""A small, realistic feature store for the dashboard tests, written through the store API."""

from __future__ import annotations

import numpy as np
import pandas as pd

from interp.features import FeatureId
from interp.store import Store

MODEL = "smollm2-135m"
WORDS = [" the", " dog", " Paris", " France", " cat", "<script>", " &", " capital", " is", "\n", " of", " a"]
TOP_NEURON = FeatureId(MODEL, "blocks.1.mlp.hook_post", "neuron", 7)
LATENT = FeatureId(MODEL, "blocks.2.hook_mlp_out", "transcoder", 3, source="tc-l2")
PROMPT = "The capital of France is"


def populate(root, n_layers: int = 3, n_neurons: int = 40, examples: bool = True) -> Store:
    """Features of `n_layers` x `n_neurons` neurons plus a transcoder, with tokens, examples,
    complexity, attributions, dictionaries and method results."""
    store = Store(root)
    rng = np.random.default_rng(0)
    run = store.start_run("interp map-neurons", {"k": 5}, corpus={"name": "imdb", "n_tokens": 4096}, seed=0)
    store.write("models", [{"model": MODEL, "n_layers": 30, "d_model": 576, "d_mlp": 1536, "d_vocab": 49152,
                            "n_heads": 9, "n_ctx": 8192, "architecture": {"arch": "llama"}}], run_id=run)
    feats = [FeatureId(MODEL, f"blocks.{l}.mlp.hook_post", "neuron", i) for l in range(n_layers)
             for i in range(n_neurons)]
    feats.append(LATENT)
    rows, tokens, exs, cx = [], [], [], []
    for j, f in enumerate(feats):
        word = WORDS[j % len(WORDS)]
        spec = 0.99 if f == TOP_NEURON else float(rng.uniform(0, 0.9))
        k_value = float(rng.uniform(0, 1))
        rows.append({**f.to_record(), "label": f"{word.strip() or 'newline'} detector", "density": 1e-3 * (j % 7 + 1),
                     "specialisation": spec, "complexity": None if f == LATENT else k_value,
                     "max_act": 2.0 + j % 5, "metrics": {"entropy": 3.5}})
        for direction in ("up", "down"):
            for end in ("top", "bottom"):
                for rank in range(5):
                    tok = (" Paris" if f == TOP_NEURON and rank == 0 and end == "top"
                           else WORDS[(j + rank + (end == "bottom")) % len(WORDS)])
                    tokens.append({**f.to_record(), "direction": direction, "variant": "gain_folded", "end": end,
                                   "rank": rank, "token_id": 100 + (j + rank) % 50, "token_str": tok,
                                   "logit": 10.0 - rank if end == "top" else -10.0 + rank, "prob": 0.3 / (rank + 1)})
        if examples:
            for group in ("top", "quantile_1"):
                for rank in range(3):
                    toks = [WORDS[(j + rank + p) % len(WORDS)] for p in range(8)]
                    acts = rng.uniform(0, 1, 8).astype(np.float32) * (3 - rank)
                    exs.append({**f.to_record(), "group": group, "example_rank": rank, "tokens": toks,
                                "token_ids": list(range(8)), "acts": acts.tolist(), "max_act": float(acts.max()),
                                "max_pos": int(acts.argmax())})
        curve = np.clip(np.linspace(0, 1, 6) + rng.normal(0, 0.05, 6), 0, 1)
        cx.append({**f.to_record(), "K": k_value, "first_decodable_layer": 2, "curve": curve.tolist(),
                   "importance": float(rng.uniform(0.01, 1))})
    store.write("features", pd.DataFrame(rows), run_id=run)
    store.write("feature_tokens", pd.DataFrame(tokens), run_id=run)
    if exs:
        store.write("activation_examples", pd.DataFrame(exs), run_id=run)
    # as `interp complexity` stores them: one payload per feature, keyed by the feature key
    store.write("results", [{"name": "complexity_features", "key": FeatureId.from_record(r).key, "payload": r}
                            for r in cx], run_id=run)
    store.write("results", [{"name": "clamp_dose_response", "key": TOP_NEURON.key,
                             "payload": {"values": [0, 2, 4, 8], "p_top_token": [0.01, 0.05, 0.2, 0.6],
                                         "random_control": [0.01, 0.01, 0.02, 0.02]}}], run_id=run)
    store.finish_run(run, "done")

    run = store.start_run("interp train", {"l0": 32}, seed=1)
    store.write("dictionaries", [
        {"name": name, "model": MODEL, "site": "blocks.2.ln2.hook_normalized", "hook_out": "blocks.2.hook_mlp_out",
         "kind": "transcoder", "arch": "topk", "config": {"k": k},
         "metrics": {"l0": float(k), "ce_loss_recovered": 0.6 + 0.01 * k, "fvu": 0.5 / k, "delta_ce": 1.0 / k}}
        for name, k in (("tc-l2", 16), ("tc-l2-k32", 32))], run_id=run)
    store.finish_run(run, "done")

    run = store.start_run("interp attribute", {"method": "reagent"}, seed=0)
    prompt_tokens = ["<|im_start|>", "The", " capital", " of", " France", " is"]
    store.write("attributions", [
        {"model": MODEL, "prompt": PROMPT, "method": method, "target": " Paris", "tokens": prompt_tokens,
         "scores": scores, "extra": {"soft_ns": ns, "soft_nc": nc}}
        for method, scores, ns, nc in (("reagent", [0, 0.1, 0.3, 0.1, 0.9, 0.2], 0.42, 0.31),
                                       ("integrated_gradients", [0, 0.2, 0.2, 0.05, 0.5, 0.4], 0.30, 0.22),
                                       ("random", [0, 0.3, 0.1, 0.4, 0.2, 0.1], 0.05, 0.04))], run_id=run)
    store.finish_run(run, "done")
    return store
