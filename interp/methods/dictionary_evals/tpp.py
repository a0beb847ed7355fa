"""Targeted probe perturbation (TPP): do a concept's latents carry that concept and only it?

SAEBench's TPP eval (Karvonen, Rager et al. 2025), on binary tasks (one labelled set each,
e.g. sentiment and Python vs C):

1. Per task i, fit a standardised logistic-regression probe ``P_i`` on the pooled *target*
   activations y of its train texts (the site the dictionary reconstructs, where latents
   are ablated); ``acc_i`` = its clean test accuracy.
2. Effect of latent j on task i (SAEBench's attribution): its positive class-mean
   difference on the train texts times the probe's read-out of its decoder row,
   ``e_ij = max(0, mean(z_j | 1) - mean(z_j | 0)) * (w_i . W_dec[j])``, with ``w_i`` the
   probe's weight in raw units. ``L_i(n)`` = the n latents of largest positive effect.
3. Ablate ``L_i(n)`` from every task's test texts, keeping the dictionary's error term:
   ``y' = y - z[:, L] @ W_dec[L]`` (pooled; exact because pooling is linear). ``A[n, i, j]``
   = the accuracy of the frozen probe ``P_j`` on task j's ablated test texts.
4. Per task i: intended drop ``acc_i - A[n, i, i]``, unintended drop
   ``mean_{j != i} (acc_j - A[n, i, j])``; ``TPP(n) = mean_i (intended - unintended)``.
   High TPP: removing a concept's latents destroys that concept and leaves the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from interp.methods.dictionary_evals.pooled import PooledActivations
from interp.methods.dictionary_evals.probing import mean_difference, probe_accuracy


@dataclass(frozen=True)
class TPPConfig:
    """Settings of `targeted_probe_perturbation`."""

    ns: tuple[int, ...] = (2, 5, 10, 20, 50)
    """Latents ablated per task."""
    C: float = 1.0
    """Inverse L2 strength of the probes (sklearn's C)."""
    max_iter: int = 1000
    """Iterations of the logistic-regression solver."""

    def __post_init__(self) -> None:
        ns = tuple(self.ns)
        object.__setattr__(self, "ns", ns)
        if not ns or any(not isinstance(n, int) or n < 1 for n in ns) or list(ns) != sorted(set(ns)):
            raise ValueError(f"ns must be strictly increasing positive ints, got {self.ns!r}")
        if not self.C > 0 or not isinstance(self.max_iter, int) or self.max_iter < 1:
            raise ValueError(f"need C > 0 and max_iter >= 1, got C={self.C!r}, max_iter={self.max_iter!r}")


@dataclass(frozen=True)
class TPPTask:
    """One binary task: its name and pooled train and test activations."""

    name: str
    train: PooledActivations
    test: PooledActivations


@dataclass(frozen=True)
class TPPResult:
    """Accuracies after ablation and the TPP scores."""

    tasks: tuple[str, ...]
    ns: tuple[int, ...]
    clean_accuracy: tuple[float, ...]
    """Per task: the probe's test accuracy on unablated activations."""
    accuracy: torch.Tensor
    """(len(ns), T, T): A[n, i, j], task j's probe on its test texts with task i's top-n latents ablated."""
    intended: torch.Tensor
    """(len(ns), T) acc_i - A[n, i, i]."""
    unintended: torch.Tensor
    """(len(ns), T) mean over j != i of acc_j - A[n, i, j]."""
    tpp: torch.Tensor
    """(len(ns),) mean over tasks of intended - unintended."""
    latents: tuple[tuple[int, ...], ...]
    """Per task: its top max(ns) latents by effect (fewer when fewer have a positive effect)."""

    def to_dict(self) -> dict:
        return {"tasks": list(self.tasks), "ns": list(self.ns), "clean_accuracy": list(self.clean_accuracy),
                "accuracy": self.accuracy.tolist(), "intended": self.intended.tolist(),
                "unintended": self.unintended.tolist(), "tpp": self.tpp.tolist(),
                "latents": [list(v) for v in self.latents]}


def latent_effects(task: TPPTask, probe, W_dec: torch.Tensor) -> torch.Tensor:
    """(d_sae,) e_ij of step 2 for one task's fitted probe (an sklearn scaler + regression pipeline)."""
    scaler, reg = probe[0], probe[-1]
    w = torch.as_tensor(reg.coef_[0] / scaler.scale_, dtype=torch.float64)  # (d_out,) raw-unit weight
    return mean_difference(task.train.z, task.train.labels).clamp(min=0) * (W_dec.double() @ w)


def targeted_probe_perturbation(tasks: Sequence[TPPTask], W_dec: torch.Tensor,
                                config: TPPConfig = TPPConfig()) -> TPPResult:
    """Steps 1-4 for >= 2 `tasks`; `W_dec` (d_sae, d_out) is the dictionary's decoder."""
    if len(tasks) < 2:
        raise ValueError(f"TPP compares tasks: give at least 2, got {len(tasks)}")
    if config.ns[-1] > W_dec.shape[0]:
        raise ValueError(f"ns go up to {config.ns[-1]} but the dictionary has {W_dec.shape[0]} latents")
    probes, clean, ranked = [], [], []
    for t in tasks:
        acc, probe = probe_accuracy(t.train.y.double().numpy(), t.train.labels.numpy(), t.test.y.double().numpy(),
                                    t.test.labels.numpy(), config.C, config.max_iter)
        probes.append(probe)
        clean.append(acc)
        effects = latent_effects(t, probe, W_dec)
        order = torch.sort(-effects, stable=True).indices
        ranked.append(order[effects[order] > 0][:config.ns[-1]])
    T, W = len(tasks), W_dec.double()
    A = torch.zeros(len(config.ns), T, T, dtype=torch.float64)
    for a, n in enumerate(config.ns):
        for i in range(T):
            ablate = ranked[i][:n]
            for j, t in enumerate(tasks):
                y = t.test.y.double() - t.test.z.double()[:, ablate] @ W[ablate]  # (n_test, d_out)
                A[a, i, j] = float((probes[j].predict(y.numpy()) == t.test.labels.numpy()).mean())
    acc = torch.tensor(clean, dtype=torch.float64)
    drop = acc[None, None, :] - A  # (n, i, j): drop of task j's probe when task i's latents go
    intended = torch.diagonal(drop, dim1=1, dim2=2)  # (n, T)
    off = ~torch.eye(T, dtype=torch.bool)
    unintended = (drop * off).sum(-1) / (T - 1)
    return TPPResult(tuple(t.name for t in tasks), config.ns, tuple(clean), A, intended, unintended,
                     (intended - unintended).mean(-1), tuple(tuple(int(i) for i in r) for r in ranked))
