"""A small, realistic feature store for the dashboard tests, written through the store API."""

from __future__ import annotations

import numpy as np
import pandas as pd

from interp.features import FeatureId
from interp.store import Store

MODEL = "smollm2-135m"
WORDS = [" the", " dog", " Paris", " France", " cat", "<script>", " &", " capital", " is", "\n", " of", " a"]
TOP_NEURON = FeatureId(MODEL, "blocks.1.mlp.hook_post", "neuron", 7)
LATENT = FeatureId(MODEL, "blocks.2.ln2.hook_normalized", "transcoder", 3, source="tc-l2")  # input site
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
                     "specialisation": spec, "logit_z": 3.0 + 17.0 * spec if f.kind == "neuron" else None,
                     "complexity": None,  # the complexity job keeps K in its own table
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
    # the complexity table holds the neurons; the latent has only the older results payload
    store.write("complexity", pd.DataFrame([r for r in cx if r["kind"] == "neuron"]), run_id=run)
    store.write("results", [{"name": "complexity_features", "key": FeatureId.from_record(r).key, "payload": r}
                            for r in cx if r["kind"] != "neuron"], run_id=run)
    # as `interp clamp` / `interp clamp-report` store them
    sweep = {"model": MODEL, "target": " Paris", "layer": 1, "index": TOP_NEURON.index, "target_id": 9,
             "prompt": PROMPT, "values": [0.0, 2.0, 4.0, 8.0], "baseline_prob": 0.02,
             "target_probs": [0.01, 0.05, 0.2, 0.6], "control_indices": [3, 11],
             "control_probs": [[0.02, 0.02, 0.03, 0.02], [0.02, 0.01, 0.02, 0.03]], "kl": [None] * 4,
             "rise": 0.58, "beats_mean": True, "beats_all": True, "generation": " Paris Paris",
             "baseline_generation": " a city"}
    store.write("results", [
        {"name": "clamp", "key": f"{MODEL}/L1/N{TOP_NEURON.index}/0123456789ab", "payload": sweep},
        {"name": "clamp_report", "key": f"{MODEL}/n1", "payload": {
            "model": MODEL, "n": 1, "fraction_beats_mean": 1.0, "fraction_beats_all": 1.0,
            "neurons": [{"layer": 1, "index": TOP_NEURON.index, "rise": 0.58}]}}], run_id=run)
    store.finish_run(run, "done")

    run = store.start_run("interp train", {"l0": 32}, seed=1)
    store.write("dictionaries", [
        {"name": name, "model": MODEL, "site": "blocks.2.ln2.hook_normalized", "hook_out": "blocks.2.hook_mlp_out",
         "kind": "transcoder", "arch": "topk", "config": {"k": k},
         "metrics": {"l0": float(k), "fvu": 0.5 / k, "ce_clean": 3.0, "ce_spliced": 3.0 + 4.0 / k,
                     "delta_ce": 4.0 / k, "ce_recovered": 1 - 0.4 / k,
                     "density_histogram": {"log10_edges": [-6, -4, -2, 0], "counts": [3, 10, 2], "dead": 1}}}
        for name, k in (("tc-l2", 16), ("tc-l2-k32", 32))], run_id=run)
    store.write("results", [{"name": "circuit", "key": "circuit-demo", "payload": circuit_json()}], run_id=run)
    store.finish_run(run, "done")

    run = store.start_run("interp attribute", {"method": "reagent"}, seed=0)
    prompt_tokens = ["<|im_start|>", "The", " capital", " of", " France", " is"]
    store.write("attributions", [
        {"model": MODEL, "prompt": PROMPT, "method": method, "target": " Paris", "tokens": prompt_tokens,
         "scores": scores, "extra": {"faithfulness": {"soft_ns": ns, "soft_nc": nc, "s0": 0.1}}}
        for method, scores, ns, nc in (("reagent", [0, 0.1, 0.3, 0.1, 0.9, 0.2], 0.42, 0.31),
                                       ("integrated_gradients", [0, 0.2, 0.2, 0.05, 0.5, 0.4], 0.30, 0.22),
                                       ("random", [0, 0.3, 0.1, 0.4, 0.2, 0.1], 0.05, 0.04))], run_id=run)
    store.write("attributions", [
        {"model": MODEL, "prompt": "The Eiffel Tower is in", "method": method, "target": "p(' Paris')",
         "tokens": ["<|im_start|>", "The", " Eiffel", " Tower", " is", " in"], "scores": [0, 0.1, 0.5, 0.3, 0.05, 0.05],
         "extra": {"faithfulness": {"soft_ns": ns, "soft_nc": nc, "s0": 0.1}}}
        for method, ns, nc in (("reagent", 0.50, 0.35), ("integrated_gradients", 0.20, 0.18), ("random", 0.03, 0.06))],
        run_id=run)
    # as benchmarks/bench_reagent.py aggregates its records
    store.write("results", [{"name": "reagent_faithfulness", "key": "demo:table", "payload": [
        {"method": m, "n": 2, "soft_ns": ns, "soft_ns_lo": ns - 0.1, "soft_ns_hi": ns + 0.1,
         "soft_nc": nc, "soft_nc_lo": nc - 0.1, "soft_nc_hi": nc + 0.1}
        for m, ns, nc in (("reagent", 0.4, 0.5), ("random", 0.1, 0.2))]},
        {"name": "reagent_faithfulness", "key": "demo:paired", "payload": [
            {"method": "random", "n": 2, "soft_ns_diff": 0.3, "soft_ns_diff_lo": 0.1, "soft_ns_diff_hi": 0.5,
             "soft_ns_wins": 1.0, "soft_nc_diff": 0.3, "soft_nc_diff_lo": 0.1, "soft_nc_diff_hi": 0.5,
             "soft_nc_wins": 1.0}]}], run_id=run)
    store.finish_run(run, "done")

    run = store.start_run("interp obsprop", {"observable": "' she' - ' he'"}, seed=0)
    source = "she_vs_he"
    store.write("features", [{**FeatureId(MODEL, f"blocks.{l}.hook_attn_in", "obsprop", h, source).to_record(),
                              "label": f"she_vs_he via L{l}H{h}", "metrics": {"norm": 1.0 + l + h}}
                             for l, h in ((0, 1), (1, 2), (2, 0))], run_id=run)
    ranking = [{"component": f"L{l}H{h}", "kind": "head", "layer": l, "head": h, "norm": 1.0 + l + h}
               for l, h in ((0, 1), (1, 2), (2, 0))]
    efficiency = [{"method": m, "k": k, "seed": s, "auroc": min(1.0, 0.55 + 0.1 * i * (m == "obsprop") + 0.02 * k),
                   "corr": 0.5} for i, m in enumerate(("probe", "obsprop")) for k in (1, 4, 16) for s in (0, 1)]
    store.write("results", [
        {"name": "obsprop_ranking", "key": f"{MODEL}/{source}", "payload": {"observable": {"name": source},
                                                                            "ranking": ranking}},
        {"name": "obsprop_ablation", "key": f"{MODEL}/{source}",
         "payload": {"rows": [{"component": r["component"], "effect": -0.5 * r["norm"]} for r in ranking]}},
        {"name": "obsprop_data_efficiency", "key": f"{MODEL}/pronoun", "payload": {"ceiling_auroc": 0.99,
                                                                                  "rows": efficiency}},
    ], run_id=run)
    store.finish_run(run, "done")
    return store


def circuit_json() -> dict:
    """A three-node circuit: embedding -> LATENT (layer 2, position 4) -> logit of ' Paris'."""
    from interp.methods.circuits.graph import CircuitGraph, Edge, Node

    nodes = [Node("target", "target", label="logit ' Paris'", influence=1.0, expanded=True),
             Node("latent/L2/4/3", "latent", layer=2, position=4, index=LATENT.index, label="tc-l2[3]",
                  activation=2.5, influence=0.7, expanded=True),
             Node("embed/4", "embed", position=4, label="' France'", influence=0.5)]
    edges = [Edge("latent/L2/4/3", "target", 0.7), Edge("embed/4", "latent/L2/4/3", 0.5)]
    meta = {"model": MODEL, "prompt": PROMPT, "tokens": ["<|im_start|>", "The", " capital", " of", " France", " is"],
            "target": {"spec": 'logit:" Paris"', "label": "logit ' Paris'", "value": 12.0, "position": 5},
            "dictionaries": {"2": "tc-l2"}, "stats": {"error_share": 0.2}}
    return CircuitGraph(nodes, edges, meta).to_json()
