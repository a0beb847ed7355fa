"""Influence, pruning and scores of an attribution graph (circuit-tracer's definitions).

Ameisen et al. (2025), "Circuit Tracing: Revealing Computational Graphs in Language Models",
as implemented in circuit-tracer (``circuit_tracer/graph.py``). The adjacency ``A`` has one
row per target node and one column per source node (``A[t, s]`` = direct effect of s on t);
``w`` puts each logit node's probability on its row and zero elsewhere.

1. Normalise: ``|A|`` with each row divided by its sum (rows without inputs stay zero).
2. Influence of every node on the logits: ``w (A + A^2 + ...)``. The graph is acyclic (a
   node only reads nodes of earlier layers), so the series ends after at most n_layers + 2
   terms; it is summed term by term until a term is exactly zero.
3. Node pruning: keep the most influential nodes whose influence covers `node_threshold` of
   the total (token and logit nodes are always kept); zero the other rows and columns.
4. Edge pruning: score each edge ``A_norm[t, s] * (influence[t] + w[t])`` on the node-pruned
   graph and keep the edges covering `edge_threshold` of the total score. Then drop, until
   nothing changes, feature and error nodes without an outgoing edge and feature nodes without
   an incoming one.
5. Scores: the replacement score is the share of the influence of token and error nodes that
   token nodes hold (``tok / (tok + err)``); the completeness score is the mean over nodes,
   weighted by ``influence + w``, of the share of each node's normalised input that does not
   come from error nodes.

The functions mirror circuit-tracer's so that an exported graph prunes the same way there.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class PruneResult(NamedTuple):
    """What `prune_graph` keeps."""

    node_mask: torch.Tensor
    """(n_nodes,) bool: nodes kept."""
    edge_mask: torch.Tensor
    """(n_nodes, n_nodes) bool: edges kept, [target, source]."""
    cumulative_scores: torch.Tensor
    """(n_nodes,) each node's cumulative share of influence in descending order (the
    ``influence`` circuit-tracer writes into its graph files)."""


class GraphScores(NamedTuple):
    replacement: float
    """Share of token-to-logit influence that does not pass through error nodes."""
    completeness: float
    """Influence-weighted share of node inputs that do not come from error nodes."""


def normalize_matrix(matrix: torch.Tensor) -> torch.Tensor:
    """Step 1: ``|A|`` with rows summing to one (rows without inputs stay zero)."""
    a = matrix.abs()
    return a / a.sum(dim=1, keepdim=True).clamp(min=1e-10)


def compute_influence(A: torch.Tensor, logit_weights: torch.Tensor, max_iter: int = 1000) -> torch.Tensor:
    """Step 2: ``w (A + A^2 + ...)`` for an acyclic (nilpotent) normalised adjacency."""
    current = logit_weights @ A
    influence = current.clone()
    for _ in range(max_iter):
        if not current.any():
            return influence
        current = current @ A
        influence += current
    raise RuntimeError(f"influence did not converge in {max_iter} steps: the adjacency has a cycle")


def partial_influences(rows: torch.Tensor, logit_p: torch.Tensor, row_nodes: torch.Tensor,
                       max_iter: int = 128) -> torch.Tensor:
    """Influence on the logits through the rows computed so far (the visiting order of features).

    rows: (n_rows, n_nodes) edges into the nodes `row_nodes` (n_rows,), logit rows included;
    logit_p: (n_logits,) the weights of the last n_logits node columns.
    """
    A = normalize_matrix(rows)
    influences = torch.zeros(rows.shape[1], dtype=rows.dtype)
    prod = torch.zeros(rows.shape[1], dtype=rows.dtype)
    prod[-len(logit_p):] = logit_p
    for _ in range(max_iter):
        prod = prod[row_nodes] @ A
        if not prod.any():
            return influences
        influences += prod
    raise RuntimeError(f"partial influence did not converge in {max_iter} steps")


def find_threshold(scores: torch.Tensor, threshold: float) -> torch.Tensor:
    """The smallest score among the top scores that together cover `threshold` of the total."""
    s = torch.sort(scores, descending=True).values
    cumulative = torch.cumsum(s, dim=0) / torch.sum(s)
    index = min(int(torch.searchsorted(cumulative, threshold).item()), len(cumulative) - 1)
    return s[index]


def _logit_weights(adjacency: torch.Tensor, logit_p: torch.Tensor) -> torch.Tensor:
    w = torch.zeros(adjacency.shape[0], dtype=adjacency.dtype)
    w[-len(logit_p):] = logit_p.to(adjacency.dtype)
    return w


def prune_graph(adjacency: torch.Tensor, logit_p: torch.Tensor, n_features: int, n_tokens: int,
                node_threshold: float = 0.8, edge_threshold: float = 0.98) -> PruneResult:
    """Steps 3-4 on a graph ordered [features, errors, tokens, logits]."""
    for name, t in (("node_threshold", node_threshold), ("edge_threshold", edge_threshold)):
        if not 0.0 <= t <= 1.0:
            raise ValueError(f"{name} {t!r} is out of range: valid 0.0..1.0")
    n_logits = len(logit_p)
    w = _logit_weights(adjacency, logit_p)
    node_influence = compute_influence(normalize_matrix(adjacency), w)
    node_mask = node_influence >= find_threshold(node_influence, node_threshold)
    node_mask[-n_logits - n_tokens:] = True
    pruned = adjacency.clone()
    pruned[~node_mask] = 0
    pruned[:, ~node_mask] = 0
    A = normalize_matrix(pruned)
    edge_scores = A * (compute_influence(A, w) + w)[:, None]
    edge_mask = edge_scores >= find_threshold(edge_scores.flatten(), edge_threshold)
    inner = slice(0, adjacency.shape[0] - n_logits - n_tokens)  # features and errors
    old = None
    while old is None or not torch.equal(node_mask, old):
        old = node_mask.clone()
        edge_mask[~node_mask] = False
        edge_mask[:, ~node_mask] = False
        node_mask[inner] &= edge_mask[:, inner].any(0)  # an outgoing edge
        node_mask[:n_features] &= edge_mask[:n_features].any(1)  # an incoming edge
    edge_mask[~node_mask] = False
    edge_mask[:, ~node_mask] = False
    order = torch.sort(node_influence, descending=True)
    cumulative = torch.zeros_like(node_influence)
    cumulative[order.indices] = torch.cumsum(order.values, 0) / torch.sum(order.values)
    return PruneResult(node_mask, edge_mask, cumulative)


def graph_scores(adjacency: torch.Tensor, logit_p: torch.Tensor, n_features: int, n_errors: int,
                 n_tokens: int) -> GraphScores:
    """Step 5 on a graph ordered [features, errors, tokens, logits]."""
    w = _logit_weights(adjacency, logit_p)
    A = normalize_matrix(adjacency)
    influence = compute_influence(A, w)
    err = slice(n_features, n_features + n_errors)
    tok = slice(n_features + n_errors, n_features + n_errors + n_tokens)
    token_inf, error_inf = influence[tok].sum(), influence[err].sum()
    replacement = token_inf / (token_inf + error_inf)
    output_influence = influence + w
    completeness = ((1 - A[:, err].sum(-1)) * output_influence).sum() / output_influence.sum()
    return GraphScores(float(replacement), float(completeness))
