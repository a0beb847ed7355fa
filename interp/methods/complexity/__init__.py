"""complexity family: how much computation a feature needs (V-information, Fel et al.).

Entry points:

- `feature_groups` (`.selection`) - features chosen by a query string.
- `collect_activations` (`.activations`) - residual streams and feature values at sampled
  positions; `CollectConfig`, `FeatureActivations`, `FeatureGroup`.
- `feature_complexity` (`.vinfo`) - ridge V-information curves, K, first decodable layer;
  `ComplexityConfig`, `ComplexityResult`.
- `feature_importance`, `rank_correlation`, `layer_flow` (`.importance`); `ImportanceConfig`,
  `Importance`, `RankCorrelation`, `LayerFlow`.
- `save_complexity`, `read_complexity`, `feature_complexity_row`, `complexity_sql` (`.store`;
  which stored copy wins is stated there).

Names load lazily, so reading stored complexity (`.store`) does not import torch.
"""

_LAZY = {
    "feature_groups": "selection",
    "collect_activations": "activations", "CollectConfig": "activations", "FeatureActivations": "activations",
    "FeatureGroup": "activations",
    "feature_complexity": "vinfo", "ComplexityConfig": "vinfo", "ComplexityResult": "vinfo",
    "feature_importance": "importance", "rank_correlation": "importance", "layer_flow": "importance",
    "ImportanceConfig": "importance", "Importance": "importance", "RankCorrelation": "importance",
    "LayerFlow": "importance",
    "save_complexity": "store", "read_complexity": "store", "complexity_sql": "store",
}
_RENAMED = {"feature_complexity_row": ("store", "feature_complexity")}

__all__ = [*_LAZY, *_RENAMED]


def __getattr__(name: str):
    import importlib

    if name in _LAZY:
        return getattr(importlib.import_module(f"interp.methods.complexity.{_LAZY[name]}"), name)
    if name in _RENAMED:
        module, attr = _RENAMED[name]
        return getattr(importlib.import_module(f"interp.methods.complexity.{module}"), attr)
    raise AttributeError(f"module 'interp.methods.complexity' has no attribute {name!r}")
