"""Dashboard search speed on a whole-model neuron map (SmolLM2 size: 30 x 1536 neurons).

Writes a synthetic map through the store API (features plus top/bottom-k decoded tokens of
two directions), then times the queries the search and feature pages run, side by side with
a plain `Store.read` of the whole features table, which is what a page would cost if it
filtered in pandas.

    .venv/bin/python benchmarks/bench_app_search.py [--k 10] [--root /tmp/bench_store]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from interp.features import FeatureId  # noqa: E402
from interp.store import Store, read  # noqa: E402

MODEL, N_LAYERS, D_MLP, VOCAB = "smollm2-135m", 30, 1536, 2000


def build(root: Path, k: int) -> Store:
    store = Store(root)
    run = store.start_run("bench map", {"k": k}, seed=0)
    rng = np.random.default_rng(0)
    words = np.array([f" w{i}" for i in range(VOCAB)], dtype=object)
    for layer in range(N_LAYERS):
        site = f"blocks.{layer}.mlp.hook_post"
        idx = np.arange(D_MLP)
        store.write("features", pd.DataFrame({
            "model": MODEL, "site": site, "kind": "neuron", "index": idx, "label": words[idx % VOCAB],
            "specialisation": rng.uniform(0, 1, D_MLP), "complexity": rng.uniform(0, 1, D_MLP),
            "max_act": rng.uniform(0, 5, D_MLP)}), run_id=run)
        n = D_MLP * 2 * 2 * k
        tok = rng.integers(0, VOCAB, n)
        store.write("feature_tokens", pd.DataFrame({
            "model": MODEL, "site": site, "kind": "neuron", "index": np.repeat(idx, 2 * 2 * k),
            "direction": np.tile(np.repeat(["up", "down"], 2 * k), D_MLP),
            "variant": "gain_folded", "end": np.tile(np.repeat(["top", "bottom"], k), 2 * D_MLP),
            "rank": np.tile(np.arange(k), 4 * D_MLP), "token_id": tok, "token_str": words[tok],
            "logit": rng.normal(size=n), "prob": rng.uniform(size=n)}), run_id=run)
    store.finish_run(run)
    return store


def timed(label: str, fn, repeat: int = 3) -> float:
    best = min(_once(fn) for _ in range(repeat))
    print(f"{label:<55s} {best * 1000:8.0f} ms")
    return best


def _once(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--root", default="/tmp/bench_app_store")
    args = parser.parse_args()
    root = Path(args.root)
    if not (root / "tables" / "features").exists():
        shutil.rmtree(root, ignore_errors=True)
        start = time.perf_counter()
        build(root, args.k)
        print(f"built {N_LAYERS * D_MLP:,} features in {time.perf_counter() - start:.1f} s")
    store = Store(root)
    print(read.table_counts(store))
    fid = FeatureId(MODEL, "blocks.12.mlp.hook_post", "neuron", 77)
    full = timed("baseline: Store.read('features') (whole table)", lambda: store.read("features"))
    tokens = timed("baseline: Store.read('feature_tokens') (whole table)", lambda: store.read("feature_tokens"),
                   repeat=1)
    timed("fixed cost of one Store.sql call (SELECT 1)", lambda: store.sql("SELECT 1"))
    page = timed("search page 1, no filter, by specialisation", lambda: read.search(store, read.SearchQuery()))
    timed("search: kind + complexity range + label text", lambda: read.search(store, read.SearchQuery(
        kinds=("neuron",), complexity=(0.2, 0.4), label="w1")))
    tok = timed("search: decoded token ' w42' among top 10", lambda: read.search(
        store, read.SearchQuery(token="w42")))
    timed("search: page 20 (offset 950)", lambda: read.search(store, read.SearchQuery(offset=950)))
    timed("facets (distinct model/kind/site)", lambda: read.facets(store))
    timed("feature page: row + tokens",
          lambda: (read.feature_row(store, fid), read.feature_tokens(store, fid)))
    timed("feature page: nearest features", lambda: read.neighbours(store, fid))
    print(f"ratios: token search / whole feature_tokens read = {tok / tokens:.2f}; "
          f"first page / whole features read = {page / full:.2f}; token search / plain page = {tok / page:.2f}")


if __name__ == "__main__":
    main()
