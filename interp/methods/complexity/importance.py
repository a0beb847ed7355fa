"""Importance of features for the output, its rank correlation with complexity, and layer flow.

Importance (default: gradient x activation; Fel et al. 2024 use the same attribution family):

1. Run the model with autograd on windows of held-out tokens; let ``y_t = argmax logits_t``
   be the predicted token at each position and ``O = sum_t logit_t[y_t]``.
2. One backward pass gives ``g_s = dO / dx_s`` at every feature's write site. A feature z
   writes ``z * w`` there (a neuron: its own coordinate; an SAE latent: its decoder row at
   the site; a transcoder latent: its decoder row at the MLP output; a direction v:
   ``v / ||v||^2``), so its attribution at position s is ``a_s = z_s * (g_s . w)``: its
   linearised effect on the predicted logits of position s and every later position.
3. ``importance = mean_s |a_s|`` over non-BOS positions (the signed mean is kept too).

Why this default rather than the CE increase on ablation: it costs one forward and one
backward pass per batch for every feature at once, where ablation needs a forward pass per
feature (4,608 neurons would be 4,608 passes); on the features where both were compared in
the literature (attribution patching) the linear estimate ranks large effects well.

Rank correlation: Spearman's rho between K and importance over features with a finite K
(`scipy.stats.spearmanr`). The paper's claim is rho < 0 (complex features matter less).

Layer flow (where decodability comes from): for block b, ``I_V`` at resid_pre_b (= h_b),
resid_mid_b and resid_post_b (= h_{b+1}). ``mid - pre`` is what attention wrote,
``post - mid`` what the MLP wrote; they telescope, so for each feature
``I(h_last) = I(h_0) + sum_b attn_b + sum_b mlp_b``: the part already decodable from the
embeddings (carried by the residual stream) plus what each sublayer added.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from interp.methods.complexity.vinfo import ComplexityConfig, ComplexityResult, decodability, make_split
from interp.methods.complexity.activations import FeatureGroup


@dataclass(frozen=True)
class ImportanceConfig:
    """Settings of `feature_importance`."""

    batch_size: int = 4
    """Windows per forward+backward pass."""
    max_windows: int | None = 32
    """Use at most this many windows (None: all)."""

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size!r}")
        if self.max_windows is not None and self.max_windows < 1:
            raise ValueError(f"max_windows must be >= 1 or None, got {self.max_windows!r}")


@dataclass(frozen=True)
class Importance:
    """Gradient x activation importance of each feature."""

    mean_abs: torch.Tensor
    """(F,) mean |z_s (g_s . w)| over positions: the importance."""
    mean: torch.Tensor
    """(F,) signed mean (positive: pushes the predicted tokens up)."""
    n_tokens: int


def _attributions(group: FeatureGroup, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """(n, k) z * (g . w) for one group from its site input x (n, d) and write-site grad g (n, d_w)."""
    r = group.readout
    z = r(x)
    if r.index is not None:
        return z * g[:, r.index]
    if r.write is None:
        raise ValueError(f"features at {group.site} have no write direction; importance needs one")
    return z * (g @ r.write.to(g.dtype).T)


def feature_importance(adapter, tokens: torch.Tensor, groups: Sequence[FeatureGroup],
                       config: ImportanceConfig = ImportanceConfig(), progress: Callable | None = None
                       ) -> Importance:
    """Gradient x activation importance (see the module docstring) of every group's features.

    Args:
        tokens: (n_windows, ctx) token windows with BOS in column 0.
    """
    tokens = torch.as_tensor(tokens)
    if tokens.ndim != 2 or tokens.shape[1] < 2:
        raise ValueError(f"tokens must be (n_windows, ctx >= 2), got {tuple(tokens.shape)}")
    if config.max_windows is not None:
        tokens = tokens[: config.max_windows]
    write_sites = list(dict.fromkeys(g.readout.write_site or g.site for g in groups))
    read_sites = list(dict.fromkeys(g.site for g in groups))
    total_abs = torch.zeros(sum(len(g.ids) for g in groups), dtype=torch.float64)
    total = torch.zeros_like(total_abs)
    n = 0
    batches = range(0, tokens.shape[0], config.batch_size)
    for start in (progress(batches) if progress else batches):
        batch = tokens[start:start + config.batch_size].to(adapter.device)
        leaves: dict[str, torch.Tensor] = {}

        def make_leaf(name):
            # The model's weights need no grad: make each write site a leaf that does, so one
            # backward pass yields dO/dx there and nothing upstream is differentiated.
            def hook(act, hook):
                leaves[name] = act.detach().requires_grad_(True)
                return leaves[name]
            return hook

        with adapter.hooks(fwd_hooks=[(w, make_leaf(w)) for w in write_sites]):
            out = adapter.run(batch, read_sites, keep_grad=True)
        objective = out.output.gather(-1, out.output.argmax(-1, keepdim=True)).sum()
        grads = dict(zip(write_sites, torch.autograd.grad(objective, [leaves[w] for w in write_sites])))
        with torch.no_grad():
            flat = lambda t: t[:, 1:].reshape(-1, t.shape[-1]).float()  # drop BOS column
            attr = torch.cat([_attributions(g, flat(out.cache[g.site].detach()),
                                            flat(grads[g.readout.write_site or g.site])) for g in groups], dim=1)
            attr = attr.double()
        total_abs += attr.abs().sum(0).cpu()
        total += attr.sum(0).cpu()
        n += attr.shape[0]
        del out, grads, leaves
    return Importance((total_abs / n).float(), (total / n).float(), n)


@dataclass(frozen=True)
class RankCorrelation:
    """Spearman rank correlation between two per-feature scores."""

    rho: float
    pvalue: float
    n: int
    """Finite pairs the correlation used."""
    ci: tuple[float, float] = (float("nan"), float("nan"))
    """95% interval of rho (`interp.stats.spearman_interval`: Fisher z, independent pairs)."""


def rank_correlation(a: torch.Tensor, b: torch.Tensor) -> RankCorrelation:
    """Spearman's rho of a and b over entries where both are finite."""
    from scipy.stats import spearmanr

    a, b = torch.as_tensor(a).double(), torch.as_tensor(b).double()
    keep = a.isfinite() & b.isfinite()
    if keep.sum() < 3:
        raise ValueError(f"rank correlation needs at least 3 finite pairs, got {int(keep.sum())}")
    from interp.stats import spearman_interval

    res = spearmanr(a[keep].numpy(), b[keep].numpy())
    n = int(keep.sum())
    return RankCorrelation(float(res.statistic), float(res.pvalue), n, spearman_interval(float(res.statistic), n))


@dataclass(frozen=True)
class LayerFlow:
    """Decodability before, between and after the sublayers of each block."""

    pre: torch.Tensor
    """(n_blocks, F) I_V at resid_pre_b (= h_b); NaN where the block is past the feature."""
    mid: torch.Tensor
    """(n_blocks, F) I_V at resid_mid_b."""
    post: torch.Tensor
    """(n_blocks, F) I_V at resid_post_b (= h_{b+1}); NaN where that stream is past the feature."""
    embed: torch.Tensor
    """(F,) I_V at h_0: what the residual stream carries from the embeddings."""
    attn: torch.Tensor
    """(F,) sum_b (mid_b - pre_b): decodability written by attention."""
    mlp: torch.Tensor
    """(F,) sum_b (post_b - mid_b): decodability written by MLPs."""


def layer_flow(mids: Sequence[torch.Tensor], Z: torch.Tensor, result: ComplexityResult,
               mid_depth: torch.Tensor, config: ComplexityConfig = ComplexityConfig(),
               groups: torch.Tensor | None = None) -> LayerFlow:
    """Split each feature's decodability into embedding carry, attention and MLP writes.

    Args:
        mids: resid_mid of blocks 0 .., each (n, d_model), on the same tokens as `result`.
        Z: (n, F) the features scored in `result` (same config and groups, so same split).
        mid_depth: (F,) blocks whose resid_mid precede each feature.
    """
    split = make_split(Z.shape[0], config, groups)
    curve = result.curve
    B, F = len(mids), Z.shape[1]
    mid = decodability(mids, Z, mid_depth, config, split)[0] if B else torch.full((0, F), float("nan"))
    mid[:, result.constant] = torch.where(mid[:, result.constant].isnan(), mid[:, result.constant], 0.0)
    pre = curve[:B].clone()
    post = torch.full((B, F), float("nan"))
    post[: min(B, curve.shape[0] - 1)] = curve[1: B + 1]
    attn = (mid - pre).nan_to_num(0.0).sum(0)
    mlp = (post - mid).nan_to_num(0.0).sum(0)
    return LayerFlow(pre, mid, post, curve[0].clone(), attn, mlp)
