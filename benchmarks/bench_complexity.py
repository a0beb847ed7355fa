"""Complexity scoring cost vs activation extraction, and vs one sklearn probe per feature.

    .venv/bin/python benchmarks/bench_complexity.py                  # SmolLM2, 10,000 neurons
    .venv/bin/python benchmarks/bench_complexity.py --windows 24 --sample 10

Features: 10,000 MLP neurons of the deepest blocks (23..29), so every feature averages over
24-30 residual streams ("all layers"). Measured side by side in one run:

1. extraction: `collect_activations` (one forward pass per batch, caching h_0.. and the
   features at the sampled positions);
2. scoring: `feature_complexity` (closed-form ridge, one eigendecomposition per layer);
3. baseline: sklearn `Ridge` fitted per feature, per layer and per alpha on a sample of
   features, extrapolated to all features (same split, same standardisation, same grid).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def _baseline_seconds(acts, split, alphas, sample: int, seed: int = 0) -> float:
    """Seconds per feature of the sklearn loop (every layer up to its depth, every alpha)."""
    from sklearn.linear_model import Ridge
    from sklearn.metrics import r2_score

    rng = np.random.default_rng(seed)
    cols = rng.choice(acts.Z.shape[1], size=sample, replace=False)
    tr, va, te = (i.numpy() for i in (split.train, split.val, split.test))
    t0 = time.perf_counter()
    for c in cols:
        z = acts.Z[:, c].numpy()
        for l in range(int(acts.depth[c])):
            X = acts.hs[l].numpy()
            mu, sd = X[tr].mean(0), X[tr].std(0, ddof=1) + 1e-12
            X = (X - mu) / sd
            fits = [Ridge(alpha=a * len(tr)).fit(X[tr], z[tr]) for a in alphas]
            best = int(np.argmax([r2_score(z[va], f.predict(X[va])) for f in fits]))
            r2_score(z[te], fits[best].predict(X[te]))
    return (time.perf_counter() - t0) / sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--features", default="neurons:layers=24-29; neurons:23:752-1535",
                        help="feature query (default: 10,000 neurons of blocks 23-29)")
    parser.add_argument("--windows", type=int, default=48, help="held-out windows of 128 tokens")
    parser.add_argument("--positions", type=int, default=0, help="positions per window (0: all 127)")
    parser.add_argument("--sample", type=int, default=8, help="features fitted one by one with sklearn")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from interp.corpus import token_windows
    from interp.methods.complexity.vinfo import ComplexityConfig, feature_complexity, make_split
    from interp.methods.complexity.activations import CollectConfig, collect_activations
    from interp.methods.complexity.selection import feature_groups
    from interp.models import load_model

    adapter = load_model(args.model)
    groups = feature_groups(adapter, args.features)
    windows = token_windows("imdb", adapter.tokenizer, split="heldout", ctx_len=128,
                            max_tokens=args.windows * 127 + 1000, seed=0).tokens[: args.windows]
    n_feat = sum(len(g.ids) for g in groups)

    t0 = time.perf_counter()
    acts = collect_activations(adapter, windows, groups, CollectConfig(positions_per_window=args.positions or None))
    t_extract = time.perf_counter() - t0

    config = ComplexityConfig()
    t0 = time.perf_counter()
    res = feature_complexity(acts.hs, acts.Z, acts.depth, config, groups=acts.window)
    t_score = time.perf_counter() - t0

    split = make_split(acts.Z.shape[0], config, acts.window)
    per_feature = _baseline_seconds(acts, split, config.alphas, args.sample)
    t_baseline = per_feature * n_feat

    print(f"model {args.model}: {n_feat} features, depths {int(acts.depth.min())}-{int(acts.depth.max())} layers, "
          f"{acts.Z.shape[0]} sampled tokens from {len(windows)} windows, {len(config.alphas)} alphas, "
          f"{torch.get_num_threads()} threads")
    print(f"extract activations   {t_extract:8.1f} s")
    print(f"score (closed form)   {t_score:8.1f} s   ratio score/extract = {t_score / t_extract:.2f}  (target <= 1.5)")
    print(f"sklearn Ridge loop    {t_baseline:8.1f} s   (extrapolated from {args.sample} features: "
          f"{per_feature:.2f} s per feature)   speed-up = {t_baseline / t_score:.0f}x")
    print(f"K median {float(res.K.nanmedian()):.3f}, constant features {int(res.constant.sum())}")


if __name__ == "__main__":
    main()
