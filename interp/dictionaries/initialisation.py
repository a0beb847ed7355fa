"""A dictionary's training start, and the end that undoes its scaling (steps 1 and the last of
`interp.dictionaries.training`): the seeded module, the activation scale factors, b_dec at the
target mean or geometric median, the 1%-of-variance encoder scale, and the fold of the scale
factors into the weights once training ends."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from interp.dictionaries.activations import ActivationBatches
from interp.dictionaries.batchtopk import BATCH_ARCHS, matryoshka_widths
from interp.dictionaries.dictionary import Dictionary
from interp.dictionaries.objective import _encode
from interp.dictionaries.train_config import TrainConfig

INIT_VARIANCE_SHARE = 0.01
"""Initial reconstructions carry this share of the target's variance (see `init_from_data`)."""


def make_dictionary(config: TrainConfig, d_in: int, d_out: int) -> Dictionary:
    """A freshly initialised dictionary for `config` (seeded)."""
    batch = config.arch in BATCH_ARCHS  # trained with BatchTopK, used (and saved) as JumpReLU
    model = Dictionary(d_in, config.expansion * d_in, d_out, kind=config.kind,
                       arch="jumprelu" if batch else config.arch,
                       k=config.k if config.arch == "topk" else None, skip=config.skip)
    model.init_weights(torch.Generator().manual_seed(config.seed))
    if batch:
        if config.k > model.d_sae:
            raise ValueError(f"{config.arch} needs k in 1..d_sae={model.d_sae}, got {config.k}")
        with torch.no_grad():
            model.threshold.zero_()
        model.threshold.requires_grad_(False)  # set by the moving average, not by gradients
        if config.arch == "matryoshka_batchtopk":
            matryoshka_widths(model.d_sae, config.matryoshka_fractions)  # refused now, not at step 1
    return model


def geometric_median(points: torch.Tensor, iterations: int = 50, tol: float = 1e-6) -> torch.Tensor:
    """(d,) point minimising the summed Euclidean distance to `points` (n, d) (Weiszfeld's algorithm,
    started at the mean; SAELens initialises an SAE's b_dec the same way)."""
    median = points.mean(0)
    for _ in range(iterations):
        w = 1.0 / (points - median).norm(dim=-1).clamp_min(1e-8)  # (n,)
        new = (w[:, None] * points).sum(0) / w.sum()
        if (new - median).norm() <= tol * median.norm().clamp_min(1e-12):
            return new
        median = new
    return median


class Scales(NamedTuple):
    """The constants training runs at (kept in `interp.dictionaries.training.TrainState`)."""

    x_scale: float
    """Inputs train at x * x_scale, so that E||x||^2 = d_in."""
    y_scale: float
    """Targets at y * y_scale (= x_scale for an SAE)."""
    scale: float
    """The scaled target's mean squared distance to its mean (the reconstruction term's divisor)."""


def init_from_data(model: Dictionary, batches: ActivationBatches, config: TrainConfig) -> Scales:
    """Fix the input/target scale factors, set b_dec to the (scaled) target mean or geometric
    median and scale W_enc so the first reconstructions have the target's spread."""
    return _init_from_sample(model, *batches.sample(8192), config)


@torch.no_grad()
def _init_from_sample(model: Dictionary, x: torch.Tensor, y: torch.Tensor, config: TrainConfig) -> Scales:
    x_scale = math.sqrt(x.shape[1] / float(x.pow(2).sum(-1).mean().clamp_min(1e-12)))
    y_scale = x_scale if model.kind == "sae" else \
        math.sqrt(y.shape[1] / float(y.pow(2).sum(-1).mean().clamp_min(1e-12)))
    x, y = x * x_scale, y * y_scale
    mean = y.mean(0)
    model.b_dec.copy_(mean if config.b_dec_init == "mean" else geometric_median(y))
    scale = float((y - mean).pow(2).sum(-1).mean().clamp_min(1e-12))
    centre = not model.apply_b_dec_to_input
    if centre:
        # A transcoder's input is not centred by b_dec (b_dec lives in the output space), and the
        # normalised residual has a large mean: uncentred, the latents whose random directions
        # point along it win the top-k on every token and the rest start dead (measured on
        # SmolLM2 layer 15: 53% dead on held-out tokens vs 49% with this start).
        model.b_enc.copy_(-(x.mean(0) @ model.W_enc))
    enc, _ = _encode(model, x, config)  # the training-time activation (BatchTopK selects across the sample)
    spread = float((model.decode_sparse(enc, x) - model.b_dec).pow(2).sum(-1).mean())
    if spread > 0:
        # Random decoder directions add their variance to the error: start at 1% of the target's
        # variance, so the first reconstructions are close to the mean predictor (FVU ~ 1).
        factor = math.sqrt(INIT_VARIANCE_SHARE * scale / spread)
        model.W_enc.mul_(factor)
        if centre:
            model.b_enc.mul_(factor)  # -mean @ W_enc scales with W_enc
    return Scales(x_scale, y_scale, scale)


@torch.no_grad()
def fold_scales(model: Dictionary, sx: float, sy: float) -> None:
    """Turn the dictionary trained on (x * sx -> y * sy) into one on raw activations."""
    # An SAE's pre = (sx x - b_dec) W_enc = (x - b_dec / sx) (sx W_enc), and sx == sy there.
    model.W_enc.mul_(sx)
    model.W_dec.div_(sy)
    model.b_dec.div_(sy)
    if model.skip:
        model.W_skip.mul_(sx / sy)
