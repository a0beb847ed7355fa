"""The local backend of `interp.jobs.neuron_map`: layers one after another in this process."""

from __future__ import annotations

from tqdm.auto import tqdm

from interp.jobs.neuron_map import map_layer, plan, vocab_strings
from interp.models.registry import store_model_name


def load(model):
    """A `ModelAdapter` for a name, or `model` itself if it is one already."""
    if isinstance(model, str):
        from interp.models import load_model

        return load_model(model)
    return model


def register_model(store, adapter, model: str, run_id: str) -> None:
    info = adapter.info
    store.write("models", [{
        "model": model, "architecture": info.to_dict(), "n_layers": info.n_layers, "d_model": info.d_model,
        "d_mlp": info.d_mlp, "d_vocab": info.d_vocab, "n_heads": info.n_heads, "n_ctx": info.n_ctx,
        "info": {"prepend_bos": adapter.prepend_bos, "norms_folded": False},
    }], run_id=run_id)


def run_local(store, models, config, run_id, summary, progress: bool, force: bool) -> None:
    for spec in models:
        adapter = load(spec)
        model = store_model_name(spec if isinstance(spec, str) else adapter.name)
        todo = plan(store, adapter.info, model, config, force)
        layers = config.layers if config.layers is not None else range(adapter.info.n_layers)
        summary.skipped[model] = [layer for layer in layers if layer not in todo]
        summary.mapped[model] = []
        if not todo:
            continue
        register_model(store, adapter, model, run_id)
        vocab = vocab_strings(adapter)
        for layer in tqdm(sorted(todo), desc=f"map-neurons {model}", unit="layer", disable=not progress):
            map_layer(store, adapter, model, layer, todo[layer], config, run_id, vocab)
            summary.mapped[model].append(layer)
