"""k-sparse probing: how much of a binary concept do a dictionary's k best latents carry?

SAEBench's sparse-probing eval (Karvonen, Rager et al. 2025; Gurnee et al. 2023), offline:

1. Inputs: mean-pooled latents and raw activations of labelled texts, split into train and
   test (`interp.methods.dictionary_evals.pooled`).
2. Rank latents on the train split by the absolute difference of their class means,
   ``|mean(z_j | label 1) - mean(z_j | label 0)|`` (ties: lower index first).
3. For each k: standardise the top-k latents with the train statistics and fit an
   L2-regularised logistic regression (sklearn) on train; report test accuracy.
4. Baseline: the same probe on all raw activations of the dictionary's input site
   (SAEBench's "LLM" probe). A dictionary whose k latents reach the baseline's accuracy has
   the concept in a few latents.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from interp.methods.dictionary_evals.pooled import PooledActivations


@dataclass(frozen=True)
class SparseProbingConfig:
    """Settings of `sparse_probing`."""

    ks: tuple[int, ...] = (1, 2, 5, 10, 20)
    """Latents per probe."""
    C: float = 1.0
    """Inverse L2 strength of the logistic regressions (sklearn's C)."""
    max_iter: int = 1000
    """Iterations of the logistic-regression solver."""

    def __post_init__(self) -> None:
        ks = tuple(self.ks)
        object.__setattr__(self, "ks", ks)
        if not ks or any(not isinstance(k, int) or k < 1 for k in ks) or list(ks) != sorted(set(ks)):
            raise ValueError(f"ks must be strictly increasing positive ints, got {self.ks!r}")
        if not self.C > 0 or not isinstance(self.max_iter, int) or self.max_iter < 1:
            raise ValueError(f"need C > 0 and max_iter >= 1, got C={self.C!r}, max_iter={self.max_iter!r}")


@dataclass(frozen=True)
class SparseProbingResult:
    """Test accuracies of the k-latent probes and of the raw-activation probe."""

    dataset: str
    ks: tuple[int, ...]
    accuracy: tuple[float, ...]
    """Test accuracy of the probe on the top-k latents, per k."""
    raw_accuracy: float
    """Test accuracy of the probe on the raw input activations."""
    ranking: tuple[int, ...]
    """Latent indices by decreasing |mean difference| (the first max(ks))."""
    mean_difference: tuple[float, ...]
    """Their class-mean differences (label 1 minus label 0), signed."""
    n_train: int
    n_test: int

    def to_dict(self) -> dict:
        return {"dataset": self.dataset, "ks": list(self.ks), "accuracy": list(self.accuracy),
                "raw_accuracy": self.raw_accuracy, "ranking": list(self.ranking),
                "mean_difference": list(self.mean_difference), "n_train": self.n_train, "n_test": self.n_test}


def probe_accuracy(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                   C: float = 1.0, max_iter: int = 1000):
    """(test accuracy, fitted pipeline) of a standardised logistic-regression probe (step 3)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))
    probe.fit(x_train, y_train)
    return float((probe.predict(x_test) == y_test).mean()), probe


def mean_difference(z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(d_sae,) mean of each latent on label 1 minus its mean on label 0 (step 2)."""
    _check_binary(labels, "labels")
    return z[labels == 1].double().mean(0) - z[labels == 0].double().mean(0)


def _check_binary(labels: torch.Tensor, what: str) -> None:
    values = set(labels.tolist())
    if values != {0, 1}:
        raise ValueError(f"{what} must hold both classes 0 and 1 (a binary concept), got {sorted(values)}")


def sparse_probing(train: PooledActivations, test: PooledActivations, config: SparseProbingConfig = SparseProbingConfig(),
                   dataset: str = "") -> SparseProbingResult:
    """Steps 2-4 on pooled `train` and `test` activations of one binary labelled set."""
    _check_binary(train.labels, "train labels")
    _check_binary(test.labels, "test labels")
    d_sae = train.z.shape[1]
    if config.ks[-1] > d_sae:
        raise ValueError(f"ks go up to {config.ks[-1]} but the dictionary has {d_sae} latents")
    diff = mean_difference(train.z, train.labels)
    # A stable sort on -|diff| keeps ties in index order.
    order = torch.sort(-diff.abs(), stable=True).indices.numpy()
    y_tr, y_te = train.labels.numpy(), test.labels.numpy()
    z_tr, z_te = train.z.double().numpy(), test.z.double().numpy()
    accuracy = tuple(probe_accuracy(z_tr[:, order[:k]], y_tr, z_te[:, order[:k]], y_te, config.C, config.max_iter)[0]
                     for k in config.ks)
    raw, _ = probe_accuracy(train.x.double().numpy(), y_tr, test.x.double().numpy(), y_te, config.C, config.max_iter)
    top = order[:config.ks[-1]]
    return SparseProbingResult(dataset, config.ks, accuracy, raw, tuple(int(i) for i in top),
                               tuple(float(diff[i]) for i in top), len(y_tr), len(y_te))
