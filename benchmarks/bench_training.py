"""Dictionary training throughput, side by side in one run.

1. Activation generation: activations at ``blocks.L.hook_mlp_out`` via `site_activations`
   (the model stops after block L) vs a plain full forward on the same token windows.
2. SAE training step, ours vs SAELens's own trainer (``sae_lens.training.sae_trainer.SAETrainer``,
   the loop inside its ``LanguageModelSAETrainingRunner``), on the same model hook, dictionary
   size, batch size and the same pre-computed activations: both are fed batches from one
   in-memory tensor (SAELens through its ``data_provider`` iterator, ours through
   `in_memory_batches`), so neither pays for the model. Steady-state seconds per step are
   (time of 2N steps - time of N steps) / N, which cancels set-up (init, b_dec estimate).
   Runs alternate (ours, SAELens, ours, SAELens, ...) and the median is kept, so background
   load hits both alike.
3. TopK step vs dense ReLU step of our trainer (TopK's encoder backward and decoder are
   sparse gathers; target >= 2x).

    .venv/bin/python benchmarks/bench_training.py [--layer 15] [--tokens 2048] [--steps 4] [--batch 1024]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time

import torch


def _ours(x: torch.Tensor, arch: str, expansion: int, k: int, batch: int, steps: int) -> float:
    from interp.dictionaries import TrainConfig, in_memory_batches, train_dictionary

    cfg = TrainConfig(kind="sae", arch=arch, expansion=expansion, k=k, batch_size=batch,
                      train_tokens=batch * steps, resample_every=0)
    start = time.perf_counter()
    train_dictionary(in_memory_batches(x, None, batch), cfg, x.shape[1], x.shape[1], progress=False)
    return time.perf_counter() - start


def _sae_lens(x: torch.Tensor, arch: str, expansion: int, k: int, batch: int, steps: int) -> float:
    from sae_lens.config import SAETrainerConfig
    from sae_lens.saes.standard_sae import StandardTrainingSAE, StandardTrainingSAEConfig
    from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig
    from sae_lens.training.sae_trainer import SAETrainer

    d_in, d_sae = x.shape[1], expansion * x.shape[1]
    if arch == "topk":
        sae = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=d_in, d_sae=d_sae, k=k))
    else:
        sae = StandardTrainingSAE(StandardTrainingSAEConfig(d_in=d_in, d_sae=d_sae, l1_coefficient=5.0))

    def provider():
        perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(0))
        for i in itertools.count():
            j = (i * batch) % (x.shape[0] - batch + 1)
            yield x[perm[j:j + batch]]

    cfg = SAETrainerConfig(total_training_samples=batch * steps, train_batch_size_samples=batch, lr=1e-3,
                           lr_end=1e-3, device="cpu")
    trainer = SAETrainer(cfg, sae, provider())
    start = time.perf_counter()
    trainer.fit()
    return time.perf_counter() - start


def _per_step(fn, x, arch, args, repeats: int) -> float:
    """Median steady-state seconds per step."""
    times = []
    for _ in range(repeats):
        t1 = fn(x, arch, args.expansion, args.k, args.batch, args.steps)
        t2 = fn(x, arch, args.expansion, args.k, args.batch, 2 * args.steps)
        times.append(max(t2 - t1, 1e-9) / args.steps)
    return statistics.median(times)


def _activation_cost(adapter, tokens: torch.Tensor, layer: int) -> tuple[float, float, torch.Tensor]:
    from interp.dictionaries import site_activations

    site = adapter.sites(layer).mlp_out
    start = time.perf_counter()
    acts = site_activations(adapter, tokens, [site])[site]
    t_acts = time.perf_counter() - start
    start = time.perf_counter()
    for i in range(0, tokens.shape[0], 8):
        adapter.logits(tokens[i:i + 8])
    return t_acts, time.perf_counter() - start, acts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--layer", type=int, default=15)
    parser.add_argument("--tokens", type=int, default=2048, help="activation tokens (cycled through by training)")
    parser.add_argument("--expansion", type=int, default=8)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from interp.corpus import token_windows
    from interp.models import load_model

    adapter = load_model(args.model)
    tokens = token_windows("imdb", adapter.tokenizer, split="train", ctx_len=128,
                           max_tokens=-(-args.tokens // 127) * 128).tokens
    t_acts, t_full, x = _activation_cost(adapter, tokens, args.layer)
    n = x.shape[0]
    print(f"activations at layer {args.layer} (stops after block {args.layer}): {n / t_acts:8.0f} tok/s; "
          f"full forward {n / t_full:8.0f} tok/s; cost ratio {t_acts / t_full:.2f}x of a forward")
    print(f"SAE on {adapter.sites(args.layer).mlp_out}: d_in {x.shape[1]}, d_sae {args.expansion * x.shape[1]}, "
          f"batch {args.batch}, k {args.k}; median of {args.repeats} alternating runs")
    results = {}
    for arch in ("topk", "relu"):
        ours, theirs = [], []
        for _ in range(args.repeats):  # alternate so background load hits both alike
            ours.append(_per_step(_ours, x, arch, args, 1))
            theirs.append(_per_step(_sae_lens, x, arch, args, 1))
        results[arch] = (statistics.median(ours), statistics.median(theirs))
        o, t = results[arch]
        print(f"  {arch:5s} ours {args.batch / o:8.0f} tok/s   SAELens {args.batch / t:8.0f} tok/s   "
              f"ratio ours/SAELens {t / o:.2f}x (target >= 1.0)")
    print(f"  TopK step vs dense ReLU step (ours): {results['relu'][0] / results['topk'][0]:.2f}x faster "
          f"(target >= 2x)")


if __name__ == "__main__":
    main()
