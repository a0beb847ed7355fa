"""The main job's attribution graph: stored, and its top logit split exactly among node kinds."""

from __future__ import annotations

import pytest
import torch

from interp.methods.circuits.transcoders import random_transcoders


def _store_transcoders(model, store, layers):
    from interp.dictionaries.io import save_dictionary

    run = store.start_run("test", {})
    for layer, tc in random_transcoders(model, layers, 32, k=4, seed=3).items():
        name = f"{model.store_name}/L{layer}-tc"
        folder = save_dictionary(store, name, tc, {"hook_name": model.sites(layer).mlp_in})
        store.write("dictionaries", [{"name": name, "model": model.store_name, "site": model.sites(layer).mlp_in,
                                      "hook_out": model.sites(layer).mlp_out, "kind": "transcoder", "arch": "topk",
                                      "config": {}, "metrics": {}, "path": str(folder.relative_to(store.root))}],
                    run_id=run)
    store.finish_run(run, "done")


def test_demo_graph_is_stored_and_its_top_logit_splits_exactly(tiny_models, tmp_path):
    from interp.jobs.circuit import demo_attribution_graph
    from interp.methods.circuits.store import attribution_keys, load_attribution_graph
    from interp.store import Store

    model = tiny_models["llama"]
    store = Store(tmp_path / "store")
    _store_transcoders(model, store, [1])  # layer 0 has none: its MLP enters as error nodes
    s = demo_attribution_graph(model, store, "The cat sat on the mat. She said that he")
    assert attribution_keys(store) == [s.key]
    g = load_attribution_graph(store, s.key)
    assert g.n_features == s.n_features == len(g.active_features) > 0
    # The split adds up to the top logit's demeaned value: edges by source kind plus the constant.
    assert sum(s.top_split.values()) == pytest.approx(s.top_value, abs=1e-4)
    logits = model.logits("The cat sat on the mat. She said that he")[0, -1].double()
    top = int(logits.argmax())
    assert g.logit_tokens[0] == top and s.top_value == pytest.approx(float(logits[top] - logits.mean()), abs=1e-4)
    # Latent edges into the top logit, summed by hand from the stored adjacency.
    row = g.adjacency[g.n_nodes - g.n_logits].double()
    assert s.top_split["latent"] == pytest.approx(float(row[:g.n_features].sum()), abs=1e-9)
    # Error nodes [layer][position]: layer 0 (no transcoder) counts as "mlp", layer 1 as "error".
    errors = row[g.n_features:g.n_features + g.n_errors].view(2, g.n_pos).sum(1)
    assert (s.top_split["mlp"], s.top_split["error"]) == pytest.approx((float(errors[0]), float(errors[1])), abs=1e-9)
    for shares in (s.direct_shares, s.influence_shares):
        assert set(shares) == {"latent", "error", "mlp", "embedding"} and sum(shares.values()) == pytest.approx(1.0)
        assert all(0 <= v <= 1 for v in shares.values()) and shares["latent"] > 0
    # Only tokens and errors feed the replacement score; it and completeness lie in [0, 1].
    assert 0 <= s.replacement <= 1 and 0 <= s.completeness <= 1
    assert g.meta["stats"]["top_split"] == s.top_split


def test_graph_split_on_a_hand_built_graph():
    """One latent, one error node per (layer, pos), one position: shares worked by hand."""
    from types import SimpleNamespace

    from interp.jobs.circuit import graph_split

    # Nodes: latent 0, error 1 (1 layer x 1 pos, the layer has a transcoder), embedding 2, logit 3.
    A = torch.zeros(4, 4, dtype=torch.float64)
    A[0, 2] = 2.0  # embedding -> latent
    A[3, 0], A[3, 1], A[3, 2] = 3.0, -1.0, 4.0  # latent, error, embedding -> logit
    g = SimpleNamespace(meta={}, adjacency=A, n_features=1, n_errors=1, n_pos=1, n_logits=1, n_nodes=4,
                        node_bias=torch.tensor([0.0, 0.0, 0.0, 0.5], dtype=torch.float64),
                        logit_probabilities=torch.tensor([1.0], dtype=torch.float64))
    split, direct, influence = graph_split(g, with_transcoder={0})
    assert split == {"latent": 3.0, "error": -1.0, "mlp": 0.0, "embedding": 4.0, "constant": 0.5}
    assert direct == pytest.approx({"latent": 3 / 8, "error": 1 / 8, "mlp": 0.0, "embedding": 4 / 8})
    # Influence: row-normalised |A|: logit row (3/8, 1/8, 4/8); latent row (0, 0, 1): the embedding
    # gets 4/8 directly and 3/8 through the latent.
    assert influence == pytest.approx(_norm({"latent": 3 / 8, "error": 1 / 8, "mlp": 0.0, "embedding": 7 / 8}))
    # Without a transcoder at layer 0 the same error node is a whole MLP output.
    split, direct, _ = graph_split(g, with_transcoder=set())
    assert (split["mlp"], split["error"], direct["mlp"]) == (-1.0, 0.0, pytest.approx(1 / 8))


def _norm(d):
    total = sum(d.values())
    return {k: v / total for k, v in d.items()}
