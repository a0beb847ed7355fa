"""Meta-structure on decoders whose answer is known: rows built from a few planted directions
against random directions, and a hand-built meta-dictionary scored exactly."""

from __future__ import annotations

import pytest
import torch

from interp.dictionaries import Dictionary
from interp.methods.dictionary_evals.meta import (MetaStructureConfig, meta_structure, meta_width,
                                                  score_meta_dictionary, unit_rows)


def _planted(n_rows: int, d: int, n_dirs: int, per_row: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows (n_rows, d), directions (n_dirs, d)): each row a positive combination (coefficients in
    [0.5, 1.5)) of `per_row` of `n_dirs` orthonormal directions, at a random scale (the eval must
    ignore decoder norms)."""
    g = torch.Generator().manual_seed(seed)
    dirs = torch.linalg.qr(torch.randn(d, d, generator=g)).Q[:n_dirs]  # orthonormal rows
    rows = torch.zeros(n_rows, d)
    for i in range(n_rows):
        pick = torch.randperm(n_dirs, generator=g)[:per_row]
        rows[i] = (torch.rand(per_row, generator=g) + 0.5) @ dirs[pick]
    return rows * (torch.rand(n_rows, 1, generator=g) * 3 + 0.1), dirs


def test_score_of_a_hand_built_meta_dictionary_is_exact():
    """Meta-latents = the planted directions (encoder = their transpose, no bias, a threshold of
    1e-4 that only rounding noise stays under; every true coefficient is >= 0.5 / (1.5 sqrt 2)): on
    unit rows that are positive combinations of orthonormal directions, relu(r @ D.T) gives back
    exactly the coefficients, so the reconstruction is exact (explained variance 1), each row
    uses its 2 directions (L0 = 2), and 16 of the 32 meta-latents (the planted ones) fire."""
    rows, dirs = _planted(200, 24, 16, 2)
    rows = unit_rows(rows)
    meta = Dictionary(24, 32, 24, kind="sae", arch="jumprelu")
    with torch.no_grad():
        for p in meta.parameters():
            p.zero_()
        meta.W_dec[:16] = dirs
        meta.W_enc[:, :16] = dirs.T
        meta.threshold.fill_(1e-4)
    scores = score_meta_dictionary(meta.eval(), rows)
    assert scores.explained_variance == pytest.approx(1.0, abs=1e-5)
    assert scores.l0 == 2.0
    assert scores.used_fraction == 0.5


def test_planted_meta_directions_are_explained_and_random_rows_are_not():
    """512 rows from 32 planted directions, 2 each; the meta-dictionary has 128 latents and k=4,
    so an exact description exists. Trained, it explains almost all of the rows' variance, and
    as the rows span 32 dimensions it needs at least 32 meta-latents to do so. The random
    baseline of the same shape (64-d Gaussian directions) has no shared parts: 4 of 128
    meta-latents fit much less of it."""
    rows, _ = _planted(512, 64, 32, 2)
    config = MetaStructureConfig(width_fraction=0.25, k=4, epochs=25, batch_size=128, lr=1e-2)
    result = meta_structure(rows, config)
    assert (result.n_rows, result.d, result.width, result.k) == (512, 64, 128, 4)
    assert result.steps == 25 * 512 // 128
    assert result.scores.explained_variance > 0.99
    assert result.scores.used_fraction * result.width >= 32
    assert 2 <= result.scores.l0 <= 6  # the BatchTopK average k, up to the learned threshold
    assert result.baseline.explained_variance < 0.75
    assert result.scores.explained_variance - result.baseline.explained_variance > 0.25
    assert set(result.to_dict()) >= {"explained_variance", "l0", "used_fraction", "baseline_explained_variance"}


def test_rows_are_unit_normalised_and_widths_are_multiples_of_d():
    W = torch.tensor([[3.0, 4.0], [0.0, 0.0], [0.0, -2.0]])
    torch.testing.assert_close(unit_rows(W), torch.tensor([[0.6, 0.8], [0.0, -1.0]]))
    assert meta_width(4608, 576, 0.25) == 1152 and meta_width(4608, 576, 0.125) == 576
    assert meta_width(1152, 576, 0.125) == 576  # never below d
    with pytest.raises(ValueError, match="width_fraction"):
        MetaStructureConfig(width_fraction=0)
    with pytest.raises(ValueError, match="k must be a positive int"):
        MetaStructureConfig(k=0)
    with pytest.raises(ValueError, match="exceeds the meta width"):
        meta_structure(torch.randn(8, 2), MetaStructureConfig(k=4, baseline=False))
