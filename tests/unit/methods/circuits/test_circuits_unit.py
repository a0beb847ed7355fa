"""Transcoder circuits: exact attribution sums, connections, graph bookkeeping, JSON, CLI."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from interp.methods.circuits.connections import connections, top_connections


def test_connections_by_hand():
    """C = P W_dec_up W_enc_down / scale; LayerNorm's centring removes a constant direction."""
    up, down = torch.nn.Module(), torch.nn.Module()
    up.W_dec = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 1.0]])  # (d_sae_up=2, d=3)
    down.W_enc = torch.tensor([[2.0, 0.0], [0.0, 1.0], [0.0, 1.0]])  # (d=3, d_sae_down=2)
    assert torch.equal(connections(up, down, "rms"), torch.tensor([[2.0, 0.0], [2.0, 2.0]]))
    assert torch.allclose(connections(up, down, "rms", scale=2.0), torch.tensor([[1.0, 0.0], [1.0, 1.0]]))
    # Centred rows: [2/3, -1/3, -1/3] and [0, 0, 0].
    assert torch.allclose(connections(up, down, "layer"), torch.tensor([[4 / 3, -2 / 3], [0.0, 0.0]]), atol=1e-6)
    with pytest.raises(ValueError, match="norm"):
        connections(up, down, "batch")


def test_top_connections_match_brute_force():
    g = torch.Generator().manual_seed(0)
    up, down = torch.nn.Module(), torch.nn.Module()
    up.W_dec = torch.randn(50, 8, generator=g)
    down.W_enc = torch.randn(8, 30, generator=g)
    table = top_connections(up, down, k=5, chunk=7)  # blocks smaller than d_up
    C = up.W_dec @ down.W_enc
    for j in (0, 17, 29):
        assert set(table.upstream(j)["index"]) == set(C[:, j].abs().topk(5).indices.tolist())
    for i in (0, 33, 49):
        assert set(table.downstream(i)["index"]) == set(C[i].abs().topk(5).indices.tolist())
        assert np.allclose(sorted(table.downstream(i)["weight"]), sorted(C[i][C[i].abs().topk(5).indices].tolist()))
    with pytest.raises(ValueError, match="out of range"):
        table.upstream(30)
