"""Complexity on real forward passes: activation collection, importance, the job and the CLI."""

from __future__ import annotations

import pytest
import torch

from interp.methods.complexity.importance import rank_correlation


def test_rank_correlation_by_hand():
    rc = rank_correlation(torch.tensor([1.0, 2.0, 3.0, float("nan"), 4.0]), torch.tensor([10.0, 8.0, 9.0, 1.0, 2.0]))
    # ranks (1,2,3,4) vs (4,2,3,1): d^2 = 9+0+0+9 = 18, rho = 1 - 6*18/(4*15) = -0.8
    assert rc.rho == pytest.approx(-0.8) and rc.n == 4


@pytest.mark.parametrize("arch, kind", [("topk", "transcoder"), ("jumprelu", "sae"), ("relu", "sae")])
def test_encoder_readout_matches_the_dictionary(arch, kind):
    from interp.dictionaries import Dictionary
    from interp.methods.complexity.activations import Readout

    d = Dictionary(8, 24, 8, kind=kind, arch=arch, k=5 if arch == "topk" else None)
    d.init_weights(torch.Generator().manual_seed(0))
    with torch.no_grad():
        d.b_dec.normal_(0, 0.5)
        d.b_enc.normal_(0, 0.3)
        if arch == "jumprelu":
            d.threshold.fill_(0.2)
    p = {k: v.detach() for k, v in d.named_parameters()}
    r = Readout(W=p["W_enc"], b=p["b_enc"], b_in=p["b_dec"] if d.apply_b_dec_to_input else None, activation=arch,
                threshold=p.get("threshold"), top_k=d.k, select=torch.tensor([1, 7, 20]))
    x = torch.randn(50, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = d.encode(x)[:, [1, 7, 20]]
    torch.testing.assert_close(r(x), want)
