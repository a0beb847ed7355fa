"""Sparse dictionaries on model activations: transcoders and SAEs.

- `Dictionary` - the module (SAELens weight convention), `TrainConfig` / `train_dictionary`
  - one training loop for both kinds, `ActivationBatches` - the activation source,
- `evaluate_dictionary` - L0, FVU, spliced CE, CE recovered, KL, dead/dense latents,
- `feature_dashboards` - per-latent contexts, logit and de-embedding tables,
- `save_dictionary` / `load_dictionary` - SAELens's on-disk format in the store,
- `train_and_publish` / `run_sweep` - the end-to-end jobs behind ``interp train`` / ``interp sweep``.
"""

from interp.dictionaries.activations import ActivationBatches, in_memory_batches, model_batches, site_activations
from interp.dictionaries.dictionary import Dictionary, Encoded
from interp.dictionaries.training import TrainConfig, TrainResult, make_dictionary, train_dictionary

__all__ = ["ActivationBatches", "Dictionary", "Encoded", "TrainConfig", "TrainResult", "in_memory_batches",
           "make_dictionary", "model_batches", "site_activations", "train_dictionary"]
