"""Training checkpoints kept in the store as safetensors bundles (no pickle)."""

from __future__ import annotations

import torch


class StoreCheckpoint:
    """Save/load one training checkpoint under tensor bundle ``checkpoints/<name>``."""

    def __init__(self, store, name: str) -> None:
        self.store = store
        self.bundle = f"checkpoints/{name}"

    def save(self, tensors: dict, meta: dict) -> None:
        self.store.save_tensors(self.bundle, tensors, meta)

    def load(self):
        """(tensors, meta), or None when no checkpoint was saved yet."""
        try:
            return self.store.load_tensors(self.bundle), self.store.tensor_metadata(self.bundle)
        except FileNotFoundError:
            return None


def save_training(checkpoint, model, opt, state, config) -> None:
    """Weights, Adam moments, firing counters, step and history of a run (`TrainState`)."""
    tensors = {f"param.{n}": p.detach() for n, p in model.named_parameters()}
    names = {p: n for n, p in model.named_parameters()}
    for p, s in opt.state.items():
        for key, value in s.items():
            tensors[f"adam.{names[p]}.{key}"] = torch.as_tensor(value).reshape(-1) if key == "step" else value
    tensors["tokens_since_fired"] = state.tokens_since_fired
    if state.resampled is not None:
        tensors["resampled"] = state.resampled
    meta = {"config": config.to_dict(), "step": state.step, "scale": state.scale, "history": state.history,
            "x_scale": state.x_scale, "y_scale": state.y_scale, "skipped_batches": state.skipped_batches,
            "first_bad_batch": state.first_bad_batch, "threshold": state.threshold}
    checkpoint.save(tensors, meta)


def restore_training(checkpoint, model, opt, state,
                     config) -> bool:
    """Load a checkpoint of the same `config` into model, opt and state; False when there is none."""
    found = checkpoint.load()
    if found is None:
        return False
    tensors, meta = found
    if meta.get("config") != config.to_dict():
        return False  # a checkpoint of another configuration: start afresh (it will be overwritten)
    params = dict(model.named_parameters())
    with torch.no_grad():
        for n, p in params.items():
            p.copy_(tensors[f"param.{n}"])
    for n, p in params.items():
        moments = {key: tensors[f"adam.{n}.{key}"].to(p.device) for key in ("exp_avg", "exp_avg_sq", "step")
                   if f"adam.{n}.{key}" in tensors}  # (fused Adam keeps its state on the parameter's device)
        if moments:
            moments["step"] = moments["step"].reshape(())
            opt.state[p] = moments
    state.step, state.scale, state.history = int(meta["step"]), float(meta["scale"]), list(meta["history"])
    state.x_scale, state.y_scale = float(meta["x_scale"]), float(meta["y_scale"])
    state.skipped_batches, state.first_bad_batch = int(meta.get("skipped_batches", 0)), meta.get("first_bad_batch")
    state.threshold = float(meta.get("threshold", 0.0))
    state.tokens_since_fired = tensors["tokens_since_fired"].clone().to(state.tokens_since_fired.device)
    if "resampled" in tensors:
        state.resampled = tensors["resampled"].clone().to(state.tokens_since_fired.device)
    return True
