"""Named tensor bundles (safetensors) and dictionary folders under the store root.

Tensors never go through pickle: safetensors stores raw buffers plus a JSON header, so
loading a file from a shared or downloaded store cannot run code.
"""

from __future__ import annotations

import json
from pathlib import Path

from interp.store.files import StoreError, atomic_write, inside, validate_name

TENSORS_DIR = "tensors"
DICTIONARIES_DIR = "dictionaries"
_META_KEY = "interp"  # safetensors metadata is str -> str; ours is one JSON document under this key


def tensor_path(root: Path, name: str) -> Path:
    validate_name(name, "tensor bundle name", allow_slash=True)
    return inside(root, TENSORS_DIR, *name.split("/")[:-1], name.split("/")[-1] + ".safetensors")


def save_tensors(root: Path, name: str, tensors: dict, metadata: dict | None = None,
                 run_id: str | None = None) -> Path:
    """Atomically write `tensors` (name -> torch.Tensor) with JSON-able `metadata`."""
    from safetensors.torch import save_file

    if not isinstance(tensors, dict) or not tensors:
        raise StoreError(f"save_tensors({name!r}) needs a non-empty dict of name -> tensor")
    meta = dict(metadata or {})
    if run_id is not None:
        meta["run_id"] = validate_name(run_id, "run_id")
    try:
        header = {_META_KEY: json.dumps(meta, sort_keys=True)}
    except TypeError as exc:
        raise StoreError(f"tensor metadata for {name!r} must be JSON-serialisable: {exc}") from None
    # safetensors refuses non-contiguous tensors and shared storage; make each a plain copy.
    tensors = {str(k): v.detach().contiguous().cpu().clone() for k, v in tensors.items()}
    path = tensor_path(root, name)
    return atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=header))


def load_tensors(root: Path, name: str, device: str = "cpu") -> dict:
    """The tensors saved under `name`."""
    from safetensors.torch import load_file

    path = _existing(root, name)
    try:
        return load_file(str(path), device=device)
    except Exception as exc:  # safetensors raises its own error types for bad files
        raise StoreError(f"corrupt tensor file {path}: {exc}; delete it and re-run the job") from None


def tensor_metadata(root: Path, name: str) -> dict:
    """The metadata saved with `name` (without loading the tensors)."""
    from safetensors import safe_open

    path = _existing(root, name)
    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
    except Exception as exc:
        raise StoreError(f"corrupt tensor file {path}: {exc}; delete it and re-run the job") from None
    return json.loads(header.get(_META_KEY, "{}"))


def list_tensors(root: Path) -> list[str]:
    base = root / TENSORS_DIR
    return sorted(str(p.relative_to(base).with_suffix("")) for p in base.rglob("*.safetensors")
                  if not p.name.startswith("."))


def dictionary_dir(root: Path, name: str) -> Path:
    """Where the SAELens-format folder of dictionary `name` lives (may not exist yet)."""
    validate_name(name, "dictionary name", allow_slash=True)
    return inside(root, DICTIONARIES_DIR, *name.split("/"))


def _existing(root: Path, name: str) -> Path:
    path = tensor_path(root, name)
    if not path.is_file():
        known = ", ".join(list_tensors(root)[:20]) or "none"
        raise FileNotFoundError(f"no tensor bundle {name!r} in store {root}; stored bundles: {known}")
    return path
