"""Influence, pruning and scores of attribution graphs, on graphs small enough to work by hand."""

from __future__ import annotations

import pytest
import torch

from interp.methods.circuits.influence import (compute_influence, find_threshold, graph_scores, normalize_matrix,
                                               partial_influences, prune_graph)

# Nodes [f0, f1, err0, tok0, logit]: f0 <- tok0 (2), f1 <- f0 (1), f1 <- err0 (-3),
# logit <- f1 (6), logit <- tok0 (2). Rows are targets, columns sources.
A = torch.zeros(5, 5)
A[0, 3] = 2.0
A[1, 0], A[1, 2] = 1.0, -3.0
A[4, 1], A[4, 3] = 6.0, 2.0
P = torch.tensor([1.0])


def test_influence_by_hand():
    N = normalize_matrix(A)
    assert torch.allclose(N[1], torch.tensor([0.25, 0, 0.75, 0, 0]))
    assert torch.allclose(N[4], torch.tensor([0, 0.75, 0, 0.25, 0]))
    w = torch.tensor([0, 0, 0, 0, 1.0])
    # w A = (0, .75, 0, .25, 0); w A^2 = .75 row f1 = (.1875, 0, .5625, 0, 0); w A^3 = .1875 row f0.
    assert torch.allclose(compute_influence(N, w), torch.tensor([0.1875, 0.75, 0.5625, 0.4375, 0]))
    rows = A[[4, 1]]  # the logit row and f1's row only: f0's inputs not known yet
    assert torch.allclose(partial_influences(rows, P, torch.tensor([4, 1])),
                          torch.tensor([0.1875, 0.75, 0.5625, 0.25, 0]))


def test_threshold_and_scores_by_hand():
    assert find_threshold(torch.tensor([1.0, 3.0, 6.0]), 0.6) == 6.0  # 6/10 covers 60%
    assert find_threshold(torch.tensor([1.0, 3.0, 6.0]), 0.61) == 3.0
    s = graph_scores(A, P, n_features=2, n_errors=1, n_tokens=1)
    assert s.replacement == pytest.approx(0.4375 / (0.4375 + 0.5625))
    # Non-error share per row: f1 0.25, the others 1; weights influence + w = (.1875, .75, .5625, .4375, 1).
    assert s.completeness == pytest.approx((2.9375 - 0.75 * 0.75) / 2.9375)


def test_pruning_keeps_the_influential_and_connected():
    # Influences (.1875, .75, .5625, .4375, 0) of 1.9375: 80% needs f1, err0, tok0 -> f0 dropped.
    r = prune_graph(A, P, n_features=2, n_tokens=1, node_threshold=0.8, edge_threshold=1.0)
    assert r.node_mask.tolist() == [False, True, True, True, True]
    assert r.edge_mask.sum() == 3 and r.edge_mask[1, 2] and r.edge_mask[4, 1] and r.edge_mask[4, 3]
    assert r.cumulative_scores[3] == pytest.approx(1.75 / 1.9375)
    # Edge scores on the pruned graph: err0->f1 .75, f1->logit .75, tok0->logit .25: half keeps two.
    r = prune_graph(A, P, n_features=2, n_tokens=1, node_threshold=0.8, edge_threshold=0.5)
    assert r.edge_mask.sum() == 2 and not r.edge_mask[4, 3]
    # With f1's one input (err0) pruned away as a node, f1 has no incoming edge and goes too.
    r = prune_graph(A, P, n_features=2, n_tokens=1, node_threshold=0.3, edge_threshold=1.0)
    assert r.node_mask.tolist() == [False, False, False, True, True]
    with pytest.raises(ValueError, match="node_threshold"):
        prune_graph(A, P, 2, 1, node_threshold=1.5)
