"""The main job's dictionary recipe: the TopK skip-transcoder settings the pipeline, the long
recipe and the benchmarks train with, and the measurements behind each choice.

Kept apart from `interp.jobs.dictionaries` (which trains and publishes whatever config it is
given) so the settings and their evidence read in one place.
"""

from __future__ import annotations

from interp.dictionaries.train_config import TrainConfig


def transcoder_recipe(train_tokens: int, *, k: int = 16, expansion: int = 4, checkpoint_every: int = 0,
                      seed: int = 0) -> TrainConfig:
    """The main job's transcoder recipe (also the long recipe's and the benchmarks'): a TopK skip
    transcoder, batch 256, lr `RECIPE_LR` with 50 warm-up steps, geometric-median b_dec, AuxK on
    latents silent for `RECIPE_DEAD_AFTER` tokens, and TopK resampling every
    `RECIPE_RESAMPLE_EVERY` steps at `RECIPE_RESAMPLE_SCALE` (measured side by side in
    benchmarks/bench_transcoder_recipe.py)."""
    return TrainConfig(kind="transcoder", arch="topk", k=k, expansion=expansion, skip=True, batch_size=256,
                       lr=RECIPE_LR, train_tokens=train_tokens, warmup_steps=50, b_dec_init="geometric_median",
                       dead_after_tokens=RECIPE_DEAD_AFTER, aux_k=512, aux_coefficient=RECIPE_AUX,
                       topk_resample_every=RECIPE_RESAMPLE_EVERY, topk_resample_scale=RECIPE_RESAMPLE_SCALE,
                       checkpoint_every=checkpoint_every, seed=seed)


RECIPE_RESAMPLE_EVERY = 50
RECIPE_RESAMPLE_SCALE = 1.5
"""TopK resampling of the recipe: every 50 steps, latents silent since the last resampling are
pointed at badly reconstructed inputs with encoder norms 1.5x the never-resampled alive ones'
(`interp.dictionaries.objective._resample_topk`). Every 25 steps at 1.5x trained unstably
(training FVU rose to 2.2 mid-run); at 1x the held-out dead share stayed near 14%. Measured at
k 16 (the main job's); at k 8 over 2M tokens the recipe diverges (held-out FVU 13.9). At k 8 the
training-FVU spikes after resamplings grow with this multiple, not with how often it resamples
(800k tokens, benchmarks/bench_transcoder_recipe.py; peak training FVU / held-out dead share):
1.5x 1.78 / 0.26, 1.5x every 400 steps 1.54 / 0.39, 1x 1.06 / 0.46, 0.5x 0.36 / 0.48, 0.2x
0.34 / 0.49. No multiple tried is both stable and keeps the dead share down at k 8.

Why the spikes (benchmarks/resample_takeover.py, k 8, steps 100-700): right after a resampling
at 1.5x with every silent latent moved (185-1,355 of 2,304), the new latents took 98-99.7% of
the top-8 slots on every token of the next batch, whose FVU was 1.08-3.14 against 0.35-0.52
before, rising with each resampling as the whole dictionary's activations grew (mean alive
activation 3.7 -> 8.1). Capping the share moved at once (`topk_resample_max_share`) did not
help: 5% peaked at 1.2 and 15% at 2.04. Setting the new latents' bias at the pool's
(1 - k/d_sae) quantile (`topk_resample_bias='density'`) cut their share of slots to 6-19% and
the post-resampling FVU to 0.36-0.50 (0.34-0.52 before), and training stayed stable over
7,812 steps (the 2M-token run's count; peak 0.55, FVU 0.302, CE recovered 0.969), but half
the latents stay dead (0.50 at 800k tokens, 0.54 over 7,812 steps), where the centred bias
keeps 0.26. On the SAE at k 8 it halves the dead share (0.29 against 0.62) and lowers FVU
(0.513 against 0.543). The main job keeps the centred bias: it trains at k 16, where that is
stable and the density bias is unmeasured."""

RECIPE_DEAD_AFTER = 2_000
RECIPE_AUX = 1.0
"""The main job's dead-latent handling: a latent silent for 2,000 tokens (8 steps) joins the
TopK auxiliary loss at weight 1. Measured on SmolLM2 layer 15, 80k tokens x 4 epochs: dead
latents on 10k held-out tokens 40% with (32,000 tokens, 0.5) -> 25% with (2,000, 1.0), FVU
0.51 either way."""

RECIPE_LR = 2e-3
"""Adam learning rate of the main job's and the long recipe's transcoders (activations scaled
to E||x||^2 = d_model; measured best of 1e-3, 2e-3, 3e-3 at 20k-200k tokens, see
benchmarks/bench_dictionary_tokens.py)."""
