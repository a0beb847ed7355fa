"""V-information complexity of features: how much computation a feature needs.

Paper: Fel, Bethune, Lampinen, Serre, Hermann (NeurIPS 2024), "Understanding Visual Feature
Reliance through the Lens of Complexity". Adapted to language models: a feature z is a scalar
at one site (a neuron, a dictionary latent, a direction), and the representations h_l are
the residual streams before it (h_0 = embeddings = resid_pre of block 0, h_l = resid_post of
block l-1).

Algorithm (all features at once, one factorisation per layer):

1. Split tokens into train / validation / test (by window when `groups` is given, so that
   positions of one context never straddle the split).
2. Per layer l: centre h_l with its train mean and divide each dimension by its train std
   (the residual stream has a few huge dimensions; standardising makes one lambda grid fit
   every layer); centre every feature z with its train mean.
3. Eigendecompose the train Gram matrix once: ``H^T H = V diag(s) V^T``. With
   ``B = V^T H^T Z`` the ridge solution for every feature and every lambda is
   ``W_lambda = V diag(1 / (s + lambda)) B``: no per-feature fit.
4. Held-out squared error without forming predictions: for a split with inputs H' and
   targets Z', ``A = V^T H'^T Z'``, ``Q = V^T H'^T H' V`` and ``M = B / (s + lambda)``,
   ``SSE = ||Z'||^2 - 2 sum(A * M) + sum(M * (Q M))`` per feature (d^2 F per lambda instead
   of n d F).
5. Pick lambda per feature on validation (test error is then evaluated at that lambda
   only); report the test
   ``R^2 = 1 - SSE / (n Var_test(z))`` (sklearn's `r2_score` convention), clipped at 0.
   For the linear-Gaussian family this R^2 is the V-information
   ``I_V(h_l -> z) = H_V(z) - H_V(z | h_l)``; the log form ``-1/2 log(1 - R^2)`` (nats) is
   reported as well.
6. ``K(z) = 1 - mean_{l in Ls} I_V(h_l -> z)`` over the layers the feature can read
   (`feature_depth`); the first decodable layer is the first l with
   ``I_V >= 0.5 * max_l I_V``. Features that are constant on the test split get K = NaN.

The lambda grid is ``lambda = alpha * n_train`` (alpha is a penalty per training token on
the standardised scale, where each diagonal entry of H^T H is n_train).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

DEFAULT_ALPHAS = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)


@dataclass(frozen=True)
class ComplexityConfig:
    """Settings of `feature_complexity`."""

    alphas: tuple[float, ...] = DEFAULT_ALPHAS
    """Ridge strengths per training token (lambda = alpha * n_train), chosen per feature."""
    val_fraction: float = 0.15
    """Share of tokens (or windows) used to choose lambda."""
    test_fraction: float = 0.15
    """Share of tokens (or windows) on which R^2 is reported."""
    standardize: bool = True
    """Divide each residual dimension by its train std before the ridge fit."""
    decodable_fraction: float = 0.5
    """First decodable layer: first l with I_V >= this fraction of the curve's max."""
    min_variance: float = 1e-10
    """Features whose test variance is below this are flagged constant (K = NaN)."""
    seed: int = 0
    """Seed of the train/val/test split."""

    def __post_init__(self) -> None:
        if not self.alphas or any(not a > 0 for a in self.alphas):
            raise ValueError(f"alphas must be a non-empty tuple of positive floats, got {self.alphas!r}")
        object.__setattr__(self, "alphas", tuple(float(a) for a in self.alphas))
        for name in ("val_fraction", "test_fraction"):
            v = getattr(self, name)
            if not 0 < v < 1:
                raise ValueError(f"{name} must be in (0, 1), got {v!r}")
        if self.val_fraction + self.test_fraction >= 0.9:
            raise ValueError(
                f"val_fraction + test_fraction = {self.val_fraction + self.test_fraction} leaves "
                "too few training tokens; keep the sum below 0.9")
        if not 0 < self.decodable_fraction <= 1:
            raise ValueError(f"decodable_fraction must be in (0, 1], got {self.decodable_fraction!r}")


@dataclass(frozen=True)
class Split:
    """Row indices of the three splits."""

    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor


@dataclass(frozen=True)
class RidgeScores:
    """Held-out scores of one layer's ridge fits, every lambda, every feature."""

    r2_val: torch.Tensor
    """(n_alphas, F) validation R^2."""
    r2_test: torch.Tensor
    """(n_alphas, F) test R^2 (not clipped)."""
    var_test: torch.Tensor
    """(F,) test variance of each feature."""


@dataclass(frozen=True)
class ComplexityResult:
    """Per-feature complexity and the per-layer decodability curves."""

    curve: torch.Tensor
    """(n_layers, F) I_V(h_l -> z) = test R^2 clipped at 0; NaN past a feature's depth."""
    curve_nats: torch.Tensor
    """(n_layers, F) the log form -1/2 log(1 - R^2), same mask."""
    alpha: torch.Tensor
    """(n_layers, F) the alpha chosen on validation; NaN past a feature's depth."""
    K: torch.Tensor
    """(F,) complexity 1 - mean_l I_V; NaN for constant features."""
    first_layer: torch.Tensor
    """(F,) int64 first decodable layer; -1 when never decodable (max I_V = 0)."""
    depth: torch.Tensor
    """(F,) int64 number of layers averaged (layers 0 .. depth-1)."""
    constant: torch.Tensor
    """(F,) bool: feature was (near) constant on the test split."""
    n_train: int
    n_test: int


def make_split(n: int, config: ComplexityConfig, groups: torch.Tensor | None = None) -> Split:
    """Random train/val/test split of `n` rows (whole groups together when `groups` is given)."""
    gen = torch.Generator().manual_seed(config.seed)
    if groups is None:
        groups = torch.arange(n)
    groups = torch.as_tensor(groups).reshape(-1)
    if groups.numel() != n:
        raise ValueError(f"groups has {groups.numel()} entries but there are {n} rows")
    uniq, inverse = torch.unique(groups, return_inverse=True)
    if len(uniq) < 3:
        raise ValueError(f"need at least 3 groups (windows) to split, got {len(uniq)}")
    order = torch.randperm(len(uniq), generator=gen)
    n_val = max(1, round(config.val_fraction * len(uniq)))
    n_test = max(1, round(config.test_fraction * len(uniq)))
    role = torch.zeros(len(uniq), dtype=torch.long)  # 0 train, 1 val, 2 test
    role[order[:n_val]] = 1
    role[order[n_val:n_val + n_test]] = 2
    row_role = role[inverse]
    idx = [torch.nonzero(row_role == r).squeeze(1) for r in range(3)]
    return Split(*idx)


@dataclass(frozen=True)
class Targets:
    """Features split once and centred by their train mean (predictions are mean + H W)."""

    train: torch.Tensor
    """(n_train, F)"""
    val: torch.Tensor
    test: torch.Tensor
    ss_val: torch.Tensor
    """(F,) n_val * Var_val(z) (float64)."""
    ss_test: torch.Tensor
    """(F,) n_test * Var_test(z) (float64)."""

    @classmethod
    def build(cls, Z: torch.Tensor, split: Split) -> "Targets":
        dtype = torch.float64 if Z.dtype == torch.float64 else torch.float32
        tr = Z[split.train].to(dtype)
        mu = tr.mean(0)
        parts = [tr - mu, Z[split.val].to(dtype) - mu, Z[split.test].to(dtype) - mu]
        ss = [((p.double() - p.double().mean(0)) ** 2).sum(0) for p in parts[1:]]
        return cls(*parts, *ss)

    def head(self, k: int) -> "Targets":
        """The first k features (views, no copy)."""
        return Targets(self.train[:, :k], self.val[:, :k], self.test[:, :k], self.ss_val[:k], self.ss_test[:k])


@dataclass(frozen=True)
class _Heldout:
    """Sufficient statistics of one held-out split in the eigenbasis V."""

    A: torch.Tensor
    """(d, F) V^T H'^T Z'."""
    Q: torch.Tensor
    """(d, d) V^T H'^T H' V."""
    zz: torch.Tensor
    """(F,) ||Z'||^2."""

    def sse(self, M: torch.Tensor, cols=slice(None)) -> torch.Tensor:
        """(F,) ||Z' - H' V M||^2 per column (M: (d, F) ridge weights in the eigenbasis)."""
        return self.zz[cols] - 2 * (self.A[:, cols] * M).sum(0) + (M * (self.Q @ M)).sum(0)


def _fit(H: torch.Tensor, T: Targets, split: Split, standardize: bool):
    """Eigenbasis of the standardised train Gram matrix and the held-out statistics."""
    dtype = T.train.dtype
    Htr = H[split.train].to(dtype)
    mu = Htr.mean(0)
    scale = Htr.std(0) if standardize else torch.ones_like(mu)
    scale = torch.where(scale > 1e-12 * scale.max().clamp_min(1e-30), scale, torch.ones_like(scale))
    Htr = (Htr - mu) / scale
    s, V = torch.linalg.eigh((Htr.T @ Htr).double())  # one factorisation serves every feature and lambda
    s, V = s.clamp_min(0).to(dtype), V.to(dtype)
    B = V.T @ (Htr.T @ T.train)  # (d, F)
    held = []
    for rows, Zs in ((split.val, T.val), (split.test, T.test)):
        Hs = (H[rows].to(dtype) - mu) / scale
        held.append(_Heldout(V.T @ (Hs.T @ Zs), V.T @ (Hs.T @ Hs) @ V, (Zs.double() ** 2).sum(0).to(dtype)))
    return s, B, held[0], held[1]


def ridge_scores(H: torch.Tensor, Z: torch.Tensor, split: Split, lambdas: Sequence[float],
                 standardize: bool = True) -> RidgeScores:
    """Held-out R^2 of ridge regressions from H to every column of Z, for every lambda.

    Args:
        H: (n, d) inputs (one layer's residual stream).
        Z: (n, F) targets (the features).
        split: row indices of train / val / test.
        lambdas: absolute ridge penalties (sklearn's `alpha`), applied to the (standardised)
            centred inputs; the intercept is not penalised.
    Returns:
        `RidgeScores` with (n_lambdas, F) val/test R^2.
    """
    T = Targets.build(Z, split)
    s, B, val, test = _fit(H, T, split, standardize)
    out = []
    for held, ss in ((val, T.ss_val), (test, T.ss_test)):
        sse = torch.stack([held.sse(B / (s + lam)[:, None]) for lam in lambdas]).double()
        out.append(1 - sse / ss.clamp_min(1e-300))
    return RidgeScores(out[0].float(), out[1].float(), (T.ss_test / len(split.test)).float())


def ridge_select(H: torch.Tensor, T: Targets, split: Split, lambdas: Sequence[float],
                 standardize: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Per feature: the lambda index best on validation and the test R^2 there (not clipped).

    Like `ridge_scores` followed by a per-column argmax, but the test error is evaluated
    only at each feature's chosen lambda (one (d, d) x (d, F) product instead of one per lambda).
    Returns:
        best: (F,) int64 index into `lambdas`; r2_test: (F,) float32.
    """
    s, B, val, test = _fit(H, T, split, standardize)
    r2_val = torch.stack([1 - val.sse(B / (s + lam)[:, None]).double() / T.ss_val.clamp_min(1e-300)
                          for lam in lambdas])
    best = r2_val.argmax(0)
    r2_test = torch.empty(B.shape[1], dtype=torch.float64)
    for i, lam in enumerate(lambdas):
        cols = torch.nonzero(best == i).squeeze(1)
        if len(cols):
            sse = test.sse(B[:, cols] / (s + lam)[:, None], cols).double()
            r2_test[cols] = 1 - sse / T.ss_test[cols].clamp_min(1e-300)
    return best, r2_test.float()


def _check_inputs(hs, Z, depth) -> torch.Tensor:
    if len(hs) == 0:
        raise ValueError("hs must hold at least one layer's residual stream")
    n, F = Z.shape
    for l, h in enumerate(hs):
        if h.ndim != 2 or h.shape[0] != n:
            raise ValueError(f"hs[{l}] has shape {tuple(h.shape)}; expected ({n}, d_model) to match Z")
    depth = torch.as_tensor(depth, dtype=torch.long).reshape(-1)
    if depth.numel() != F or (depth < 1).any() or (depth > len(hs)).any():
        raise ValueError(f"depth must be {F} integers in 1..{len(hs)}, got min {int(depth.min())} "
                         f"max {int(depth.max())} over {depth.numel()} entries")
    return depth


def decodability(hs: Sequence[torch.Tensor], Z: torch.Tensor, depth: torch.Tensor, config: ComplexityConfig,
                 split: Split) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(n_layers, F) test R^2 at the validation-chosen alpha and that alpha (NaN past depth),
    plus (F,) test variance. Features are processed deepest first so that the features
    scored at layer l are a prefix of the columns (views, no copies)."""
    L, F = len(hs), Z.shape[1]
    order = torch.argsort(depth, descending=True, stable=True)
    T = Targets.build(Z[:, order], split)
    lambdas = [a * len(split.train) for a in config.alphas]
    alphas = torch.tensor(config.alphas)
    curve = torch.full((L, F), float("nan"))
    chosen = torch.full((L, F), float("nan"))
    for l in range(L):
        k = int((depth > l).sum())
        if k == 0:
            break
        best, r2 = ridge_select(hs[l], T.head(k), split, lambdas, config.standardize)
        curve[l, order[:k]] = r2.clamp_min(0)
        chosen[l, order[:k]] = alphas[best]
    var_test = torch.empty(F)
    var_test[order] = (T.ss_test / len(split.test)).float()
    return curve, chosen, var_test


def feature_complexity(hs: Sequence[torch.Tensor], Z: torch.Tensor, depth: Sequence[int] | torch.Tensor,
                       config: ComplexityConfig = ComplexityConfig(),
                       groups: torch.Tensor | None = None) -> ComplexityResult:
    """Complexity K, decodability curves and first decodable layers of every column of Z.

    Args:
        hs: n_layers tensors of shape (n, d): h_0 (embeddings) .. h_{L}.
        Z: (n, F) feature activations on the same n tokens.
        depth: (F,) how many layers each feature averages over (layers 0 .. depth-1);
            1 <= depth <= n_layers.
        groups: optional (n,) window id of each token; splits keep windows whole.
    """
    depth = _check_inputs(hs, Z, depth)
    split = make_split(Z.shape[0], config, groups)
    if min(len(split.train), len(split.val), len(split.test)) < 2:
        raise ValueError(f"{Z.shape[0]} tokens are too few to split into train/val/test")
    curve, chosen, var_test = decodability(hs, Z, depth, config, split)
    return _summarise(curve, chosen, depth, var_test < config.min_variance, config, len(split.train),
                      len(split.test))


def _summarise(curve, chosen, depth, constant, config, n_train, n_test) -> ComplexityResult:
    curve = torch.where(constant[None] & ~curve.isnan(), torch.zeros_like(curve), curve)
    filled = curve.nan_to_num(0.0)
    K = 1 - filled.sum(0) / depth.float()
    K = torch.where(constant, torch.full_like(K, float("nan")), K)
    first = first_decodable_layer(curve, config.decodable_fraction)
    nats = -0.5 * torch.log1p(-curve.clamp(max=1 - 1e-7))
    return ComplexityResult(curve, nats, chosen, K, first, depth, constant, n_train, n_test)


def first_decodable_layer(curve: torch.Tensor, fraction: float = 0.5) -> torch.Tensor:
    """(F,) first layer l with curve[l] >= fraction * max(curve); -1 if the max is 0.

    Args:
        curve: (n_layers, F) I_V values, NaN past a feature's depth.
    """
    filled = curve.nan_to_num(-1.0)
    peak = filled.max(0).values
    hit = (filled >= fraction * peak[None]) & (filled > 0)
    first = hit.float().argmax(0)
    return torch.where(peak > 0, first, torch.full_like(first, -1))
