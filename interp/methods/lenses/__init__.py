"""lenses family: read every layer's residual stream as a next-token prediction.

- `logit_lens`: the residual through the model's own final norm and unembedding
  (`lens_grid`: top tokens, p(final prediction) and KL to the output at every layer and position).
- `tuned_lens`: one affine translator per layer in front of it, trained on a corpus to minimise
  KL to the output (`train_tuned_lens`).
- `evaluation`: per-layer KL of both lenses on held-out tokens (`compare_lenses`).
- `store`: the only code that writes or reads a tuned lens in the store.
"""

from interp.methods.lenses.evaluation import LensComparison, compare_lenses
from interp.methods.lenses.logit_lens import (EMBED_ROW, FinalTarget, Head, LensConfig, LensGrid, LensRow, ResidualStack,
                                              kl_to_final, lens_grid, lens_rows, project, residual_stack)
from interp.methods.lenses.tuned_lens import TunedLens, TunedLensConfig, TunedLensTraining, train_tuned_lens

__all__ = ["EMBED_ROW", "FinalTarget", "Head", "LensComparison", "LensConfig", "LensGrid", "LensRow", "ResidualStack",
           "TunedLens", "TunedLensConfig", "TunedLensTraining", "compare_lenses", "kl_to_final", "lens_grid",
           "lens_rows", "project", "residual_stack", "train_tuned_lens"]
