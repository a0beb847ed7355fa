"""k-sparse probing and TPP on hand-built pooled activations whose right answers are known."""

from __future__ import annotations

import pytest
import torch

from interp.methods.dictionary_evals.pooled import PooledActivations
from interp.methods.dictionary_evals.probing import SparseProbingConfig, sparse_probing
from interp.methods.dictionary_evals.tpp import TPPConfig, TPPTask, targeted_probe_perturbation


def _probing_set(n_per_class: int) -> PooledActivations:
    """Latent 3 = the label; latent 1 fires (value 1) on 3/4 of the positives and no negative;
    the other latents are 0. The raw activation is latent 1's pattern."""
    labels = torch.tensor([0] * n_per_class + [1] * n_per_class)
    z = torch.zeros(2 * n_per_class, 6)
    z[:, 3] = labels.float()
    pos = torch.arange(n_per_class, 2 * n_per_class)
    z[pos[: 3 * n_per_class // 4], 1] = 1.0
    x = z[:, 1:2].clone()  # (n, 1)
    return PooledActivations(x, x, z, labels)


def test_sparse_probing_ranks_by_mean_difference_and_scores_known_accuracies():
    train, test = _probing_set(40), _probing_set(20)
    result = sparse_probing(train, test, SparseProbingConfig(ks=(1, 2, 5)), dataset="toy")
    # |mean difference|: latent 3 -> 1, latent 1 -> 3/4, the rest 0 (ties in index order).
    assert result.ranking == (3, 1, 0, 2, 4)
    assert result.mean_difference[:2] == (1.0, 0.75)
    assert result.accuracy == (1.0, 1.0, 1.0)  # latent 3 alone separates the classes
    # Raw probe: value 1 -> positive (all are), value 0 -> negative (20 of 25 are): 35 / 40 right.
    assert result.raw_accuracy == pytest.approx(7 / 8)
    assert (result.n_train, result.n_test) == (80, 40)


def test_sparse_probing_refuses_non_binary_labels_and_too_large_k():
    train = _probing_set(8)
    bad = PooledActivations(train.x, train.y, train.z, torch.zeros(16, dtype=torch.long))
    with pytest.raises(ValueError, match="both classes 0 and 1"):
        sparse_probing(bad, train)
    with pytest.raises(ValueError, match="6 latents"):
        sparse_probing(train, train, SparseProbingConfig(ks=(1, 10)))
    with pytest.raises(ValueError, match="strictly increasing"):
        SparseProbingConfig(ks=(5, 2))


def _tpp_task(latent: int, n_per_class: int) -> PooledActivations:
    """A task whose label is carried by one latent (value = label) of a 2-latent dictionary
    with decoder = identity and no error term: y = z."""
    labels = torch.tensor([0, 1] * n_per_class)
    z = torch.zeros(2 * n_per_class, 2)
    z[:, latent] = labels.float()
    return PooledActivations(z.clone(), z.clone(), z, labels)


def test_tpp_of_hand_built_tasks():
    # Tasks A and C share latent 0; task B has latent 1 to itself.
    tasks = [TPPTask(name, _tpp_task(latent, 30), _tpp_task(latent, 10))
             for name, latent in (("A", 0), ("B", 1), ("C", 0))]
    result = targeted_probe_perturbation(tasks, torch.eye(2), TPPConfig(ns=(1, 2)))
    assert result.clean_accuracy == (1.0, 1.0, 1.0)
    # Only the task's own latent has a positive effect.
    assert result.latents == ((0,), (1,), (0,))
    # Ablating latent 0 makes every A and C test row identical (y = 0): one prediction, accuracy 1/2.
    expected = torch.tensor([[0.5, 1.0, 0.5], [1.0, 0.5, 1.0], [0.5, 1.0, 0.5]], dtype=torch.float64)
    torch.testing.assert_close(result.accuracy[0], expected)
    torch.testing.assert_close(result.accuracy[1], expected)  # n = 2 still ablates the one latent
    torch.testing.assert_close(result.intended[0], torch.tensor([0.5, 0.5, 0.5], dtype=torch.float64))
    # A's ablation also costs C half its accuracy: unintended (0 + 0.5) / 2; B's costs nobody.
    torch.testing.assert_close(result.unintended[0], torch.tensor([0.25, 0.0, 0.25], dtype=torch.float64))
    assert float(result.tpp[0]) == pytest.approx((0.25 + 0.5 + 0.25) / 3)
    assert result.to_dict()["tpp"] == pytest.approx([1 / 3, 1 / 3])


def test_tpp_needs_two_tasks():
    t = TPPTask("A", _tpp_task(0, 4), _tpp_task(0, 4))
    with pytest.raises(ValueError, match="at least 2"):
        targeted_probe_perturbation([t], torch.eye(2))
