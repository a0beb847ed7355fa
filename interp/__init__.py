"""interp: a mechanistic-interpretability workbench for transformer language models.

Layers, bottom to top:
- `interp.models`  - the model adapter (the only code that touches TransformerLens/transformers).
- `interp.corpus`  - offline token streams and labelled probe sets.
- `interp.store`   - the feature store (the only door to data on disk).
- `interp.methods` - one module per method; each takes an adapter and tensors.
- `interp.viz`     - plotly figure builders shared by notebooks and the app.
"""

from interp.features import FeatureId, FeatureKind

__all__ = ["FeatureId", "FeatureKind", "__version__"]
__version__ = "0.1.0"
