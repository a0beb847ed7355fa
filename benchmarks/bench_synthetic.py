"""Ground-truth recovery side by side: interp's TopK, BatchTopK and Matryoshka-BatchTopK SAEs
and SAELens's own trainer, on the same synthetic activations for the same number of samples.

1. SAELens's generator plants F features (`sae_lens.synthetic.FeatureDictionary`, unit
   vectors in d dimensions, orthogonalised) that fire with Zipfian probabilities
   (`zipfian_firing_probabilities`, most features rare) and magnitude 1 +- 0.1; N samples are
   drawn once and kept in memory.
2. Every trainer gets those same N samples, in the same batch size, from memory: interp's
   loop through `in_memory_batches`, SAELens's ``SAETrainer`` (the loop inside
   ``train_toy_sae`` and its LM runner) through a ``data_provider`` iterator over the tensor,
   so neither pays for generation. SAELens trains its ``topk`` and ``batchtopk`` SAEs with
   ``train_toy_sae``'s settings (constant lr, Adam 0.9/0.999).
3. SAELens's scorer (`eval_sae_on_synthetic_data`, on fresh samples) gives MCC, F1 of latents
   as feature detectors, dead latents, L0 and explained variance; samples/s is N over the
   wall time of the training call (one run each: read samples/s as a rough ratio on a shared
   machine).

    .venv/bin/python benchmarks/bench_synthetic.py [--d 64] [--features 256] [--samples 400000] [--k 8]
"""

from __future__ import annotations

import argparse
import itertools
import time

import torch


def _planted(args):
    from sae_lens.synthetic import ActivationGenerator, FeatureDictionary, zipfian_firing_probabilities

    torch.manual_seed(args.seed)
    features = FeatureDictionary(args.features, args.d, seed=args.seed + 12345)
    probs = zipfian_firing_probabilities(args.features, exponent=0.5, max_prob=args.max_prob, min_prob=args.min_prob)
    generator = ActivationGenerator(args.features, firing_probabilities=probs, std_firing_magnitudes=0.1,
                                    mean_firing_magnitudes=1.0)
    with torch.no_grad():
        x = features(generator.sample(args.samples))  # (N, d)
    return features, generator, x


def _interp(arch: str, x: torch.Tensor, args):
    from interp.dictionaries import TrainConfig, in_memory_batches, train_dictionary
    from interp.dictionaries.io import to_sae_lens

    cfg = TrainConfig(kind="sae", arch=arch, expansion=args.expansion, k=args.k, lr=args.lr, batch_size=args.batch,
                      train_tokens=x.shape[0], dead_after_tokens=min(100_000, x.shape[0] // 10), seed=1,
                      matryoshka_fractions=(0.125, 0.5))
    start = time.perf_counter()
    result = train_dictionary(in_memory_batches(x, None, args.batch), cfg, x.shape[1], x.shape[1], progress=False)
    return to_sae_lens(result.dictionary), time.perf_counter() - start


def _sae_lens(arch: str, x: torch.Tensor, args):
    from sae_lens.config import LoggingConfig, SAETrainerConfig
    from sae_lens.saes.batchtopk_sae import BatchTopKTrainingSAE, BatchTopKTrainingSAEConfig
    from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig
    from sae_lens.training.sae_trainer import SAETrainer

    d, d_sae = x.shape[1], args.expansion * x.shape[1]
    torch.manual_seed(1)
    if arch == "topk":
        sae = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=d, d_sae=d_sae, k=args.k))
    else:
        sae = BatchTopKTrainingSAE(BatchTopKTrainingSAEConfig(d_in=d, d_sae=d_sae, k=args.k))

    def provider():
        perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(0))
        for i in itertools.count():
            j = (i * args.batch) % (x.shape[0] - args.batch + 1)
            yield x[perm[j:j + args.batch]]

    # train_toy_sae's settings, fed from memory (see the module docstring, step 2).
    cfg = SAETrainerConfig(total_training_samples=x.shape[0], train_batch_size_samples=args.batch, lr=args.lr,
                           lr_end=args.lr, lr_scheduler_name="constant", device="cpu", n_checkpoints=0,
                           checkpoint_path=None, save_final_checkpoint=False, dead_feature_window=1000,
                           feature_sampling_window=2000, n_batches_for_norm_estimate=1000,
                           logger=LoggingConfig(log_to_wandb=False, eval_every_n_wandb_logs=2 ** 31 - 1))
    start = time.perf_counter()
    SAETrainer(cfg=cfg, sae=sae, data_provider=provider()).fit()
    elapsed = time.perf_counter() - start
    if arch == "batchtopk":  # score what SAELens saves: the JumpReLU SAE with the learned threshold
        import tempfile

        from sae_lens import SAE

        with tempfile.TemporaryDirectory() as tmp:
            sae.save_inference_model(tmp)
            sae = SAE.load_from_disk(tmp)
    return sae, elapsed


RUNS = [("interp topk", _interp, "topk"), ("interp batchtopk", _interp, "batchtopk"),
        ("interp matryoshka_batchtopk", _interp, "matryoshka_batchtopk"),
        ("SAELens topk", _sae_lens, "topk"), ("SAELens batchtopk", _sae_lens, "batchtopk")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--d", type=int, default=64, help="activation dimension")
    parser.add_argument("--features", type=int, default=256, help="planted features")
    parser.add_argument("--samples", type=int, default=400_000, help="training samples, the same for every trainer")
    parser.add_argument("--expansion", type=int, default=4, help="d_sae = expansion * d")
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--max-prob", type=float, default=0.1)
    parser.add_argument("--min-prob", type=float, default=0.01)
    parser.add_argument("--eval-samples", type=int, default=50_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trainers", default="all",
                        help="comma-separated subset of: " + ", ".join(label for label, _, _ in RUNS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from sae_lens.synthetic import eval_sae_on_synthetic_data

    features, generator, x = _planted(args)
    true_l0 = float((generator.sample(20_000) > 0).sum(-1).float().mean())
    print(f"{args.features} features in {args.d} dims, true L0 {true_l0:.2f}; d_sae {args.expansion * args.d}, "
          f"k {args.k}, {args.samples:,} samples, batch {args.batch}, lr {args.lr}")
    print(f"{'trainer':34s} {'MCC':>6s} {'F1':>6s} {'uniq':>6s} {'dead':>5s} {'L0':>6s} {'EV':>6s} {'samples/s':>10s}")
    chosen = [r for r in RUNS if args.trainers == "all" or r[0] in args.trainers.split(",")]
    if not chosen:
        parser.error(f"--trainers {args.trainers!r} names none of: {', '.join(label for label, _, _ in RUNS)}")
    for label, fn, arch in chosen:
        sae, seconds = fn(arch, x, args)
        r = eval_sae_on_synthetic_data(sae, features, generator, num_samples=args.eval_samples)
        print(f"{label:34s} {r.mcc:6.3f} {r.classification.f1_score:6.3f} {r.uniqueness:6.3f} {r.dead_latents:5d} "
              f"{r.sae_l0:6.2f} {r.explained_variance:6.3f} {args.samples / seconds:10.0f}")


if __name__ == "__main__":
    main()
