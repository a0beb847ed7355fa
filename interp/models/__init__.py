"""Model adapters: load any supported model by name behind one interface.

    >>> from interp.models import load_model
    >>> model = load_model("smollm2-135m")          # offline alias, cached after first load
    >>> model.run("The capital of France is", names=[model.sites(3).mlp_hidden])

See `adapter.py` for the interface, `sites.py` for hook names, `weights.py` for the weight
convention and `interventions.py` for clamps, steering and splices.
"""

from interp.models.adapter import ModelAdapter, ModelInfo, RunOutput, Tokenized
from interp.models.interventions import AddVector, ClampUnit, Intervention, ReplaceActivation
from interp.models.loading import converted_dir, hf_directory, load_model, load_tokenizer
from interp.models.registry import ALIASES, DEFAULT_MODEL, resolve, store_model_name
from interp.sites import LayerSites
from interp.models.weights import AttentionWeights, LayerWeights, MLPWeights, ModelWeights, NormWeights

__all__ = [
    "ALIASES", "DEFAULT_MODEL", "AddVector", "AttentionWeights", "ClampUnit", "Intervention", "LayerSites",
    "LayerWeights", "MLPWeights", "ModelAdapter", "ModelInfo", "ModelWeights", "NormWeights",
    "ReplaceActivation", "RunOutput", "Tokenized", "converted_dir", "hf_directory", "load_model",
    "load_tokenizer", "resolve", "store_model_name",
]
