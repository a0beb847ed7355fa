"""A hand-built attribution graph (no model): 2 layers, 3 positions, 3 latents, one logit."""

from __future__ import annotations

import torch

MODEL = "smollm2-135m"
WORDS = ["<bos>", " cat", " sat"]
LOGIT = 42
# Node order: latents F0 (L0 pos1 #5), F1 (L0 pos2 #3), F2 (L1 pos2 #7); errors [layer][pos] 3..8;
# embeddings 9..11; the logit 12.
F0, F1, F2, ERR_L1_P2, EMB1, EMB2, OUT = 0, 1, 2, 8, 10, 11, 12
IDS = {F0: "0_5_1", F1: "0_3_2", F2: "1_7_2", ERR_L1_P2: "0_1_2", EMB1: "E_11_1", EMB2: "E_12_2",
       OUT: f"3_{LOGIT}_2"}
EDGES = {(F0, EMB1): 2.0, (F1, EMB2): 1.0, (F1, EMB1): 0.5, (F2, F0): 1.0, (F2, F1): -0.5,
         (OUT, F2): 3.0, (OUT, ERR_L1_P2): 0.5, (OUT, EMB2): 1.0}
"""(target, source) -> weight."""


def hand_graph():
    from interp.methods.circuits.attribution_graph import AttributionGraph

    n = 13
    adjacency = torch.zeros(n, n, dtype=torch.float64)
    for (t, s), w in EDGES.items():
        adjacency[t, s] = w
    return AttributionGraph(
        prompt="The cat sat", tokens=torch.tensor([1, 11, 12]), str_tokens=list(WORDS), n_layers=2, d_vocab=64,
        active_features=torch.tensor([[0, 1, 5], [0, 2, 3], [1, 2, 7]]),
        activation_values=torch.tensor([2.0, 1.0, 1.5], dtype=torch.float64), selected_features=torch.arange(3),
        adjacency=adjacency, logit_tokens=[LOGIT], logit_strings=[" mat"],
        logit_probabilities=torch.tensor([0.6], dtype=torch.float64), node_bias=torch.zeros(n, dtype=torch.float64),
        node_value=torch.full((n,), float("nan"), dtype=torch.float64),
        meta={"model": MODEL, "dictionaries": {"0": "tc-l0", "1": "tc-l1"},
              "config": {"node_threshold": 0.999, "edge_threshold": 0.999}})


def store_hand_graph(store, key: str = "graph-hand") -> str:
    from interp.methods.circuits.store import save_attribution_graph

    with store.run("interp circuit graph --prompt 'The cat sat'", {}) as run:
        return save_attribution_graph(store, hand_graph(), run, key=key)
