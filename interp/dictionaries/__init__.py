"""Sparse dictionaries on model activations: transcoders and SAEs.

- `Dictionary` - the module (SAELens weight convention: W_enc (d_in, d_sae), W_dec (d_sae, d_out),
  b_enc, b_dec, threshold, W_skip); `TrainConfig` / `train_dictionary` - one training loop
  for both kinds (relu, topk, jumprelu, and batchtopk / matryoshka_batchtopk, which train with
  BatchTopK - `interp.dictionaries.batchtopk` - and are saved as JumpReLU with the learned
  threshold); `ActivationBatches` / `site_activations` - the activation source;
- `evaluate_dictionary` / `baseline` - L0, FVU, spliced CE, CE recovered, KL, dead/dense latents;
- `feature_dashboards` - per-latent contexts, quantile samples, logit and de-embedding tables;
- `save_dictionary` / `load_dictionary` - SAELens's on-disk format in the store;

The jobs that train, evaluate and publish dictionaries from a model by name (``interp train``,
``interp sweep``, the main job's transcoders) live in `interp.jobs.dictionaries`.
The evaluation, dashboard and io names load lazily (io imports SAELens).
"""

from interp.dictionaries.activations import ActivationBatches, in_memory_batches, model_batches, site_activations
from interp.dictionaries.dictionary import Dictionary, Encoded
from interp.dictionaries.initialisation import make_dictionary
from interp.dictionaries.train_config import TrainConfig
from interp.dictionaries.training import TrainResult, train_dictionary

_LAZY = {
    "evaluate_dictionary": "evaluation", "baseline": "evaluation", "DictionaryMetrics": "evaluation",
    "EvalConfig": "evaluation", "fvu": "evaluation",
    "feature_dashboards": "dashboards", "write_dashboards": "dashboards", "DashboardConfig": "dashboards",
    "save_dictionary": "io", "load_dictionary": "io", "to_sae_lens": "io", "from_sae_lens": "io",
}

__all__ = ["ActivationBatches", "Dictionary", "Encoded", "TrainConfig", "TrainResult", "in_memory_batches",
           "make_dictionary", "model_batches", "site_activations", "train_dictionary", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"interp.dictionaries.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'interp.dictionaries' has no attribute {name!r}")
