"""Loading a model by name into a `ModelAdapter`, with a converted-weights cache for aliases.

An alias's GGUF file is dequantised by ``transformers`` (with the ``gguf`` package) into a
``LlamaForCausalLM`` on first use, then saved as safetensors + tokenizer files under
``<data root>/models/<alias>/``; later loads read that folder (a few seconds instead of ~20 s).
The cache is written to a temporary folder and renamed into place, so an interrupted
conversion never leaves a half-written cache behind.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

import torch

from interp.models.adapter import ModelAdapter
from interp.models.registry import ALIASES, ModelSource, resolve
from interp.paths import models_dir

_CACHE_FILES = ("config.json", "model.safetensors", "tokenizer.json")


def _log(message: str) -> None:
    print(f"[interp] {message}", file=sys.stderr, flush=True)


def converted_dir(alias: str, home: str | os.PathLike | None = None) -> Path:
    """The converted cache folder of an alias (exists only after the first load)."""
    return models_dir(home) / alias


def _cache_complete(directory: Path) -> bool:
    return all((directory / f).exists() for f in _CACHE_FILES)


def _convert_alias(source: ModelSource, target: Path) -> None:
    """Dequantise the alias's GGUF into a safetensors cache at `target` (atomic)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = Path(source.location)
    _log(f"converting {gguf.name} to a safetensors cache (first load only, ~20-45 s)...")
    start = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # The dequantised weights are plain fp32; drop the GGUF quantiser so they can be saved.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if target.exists():  # a stale, incomplete cache from an older layout
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _log(f"converted in {time.perf_counter() - start:.1f} s -> {target}")


def _hub_reachable(timeout: float = 3.0) -> bool:
    """A quick TCP probe, so an offline machine fails in seconds rather than after retries."""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0"):
        return False
    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _check_hub_id(name: str) -> None:
    """Raise a clear error for a hub id that is neither in the local HF cache nor reachable."""
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(name, "config.json"), str):
        return
    if not _hub_reachable():
        raise ValueError(
            f"could not load model {name!r}: it is not in the local Hugging Face cache and the hub "
            f"is unreachable (offline?). Offline aliases: {', '.join(ALIASES)}; "
            "or pass a local Hugging Face model directory"
        )


def hf_directory(name: str, home: str | os.PathLike | None = None) -> str:
    """A path or hub id that ``from_pretrained`` can read for `name` (converting an alias)."""
    source = resolve(name)
    if source.kind == "hub":
        _check_hub_id(name)
    if source.kind != "alias":
        return source.location
    target = converted_dir(name, home)
    if not _cache_complete(target):
        _convert_alias(source, target)
    return str(target)


def load_tokenizer(name: str, home: str | os.PathLike | None = None):
    """The Hugging Face tokenizer of `name` (an alias, local directory or hub id)."""
    from transformers import AutoTokenizer

    location = hf_directory(name, home)
    try:
        return AutoTokenizer.from_pretrained(location)
    except OSError as exc:
        raise ValueError(_hub_error(name, exc)) from None


def _hub_error(name: str, exc: Exception) -> str:
    return (
        f"could not load model {name!r}: {str(exc).splitlines()[0]}. "
        f"Offline aliases: {', '.join(ALIASES)}; or pass a local Hugging Face model directory"
    )


def load_model(
    name: str,
    *,
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
    prepend_bos: bool | None = None,
    home: str | os.PathLike | None = None,
) -> ModelAdapter:
    """Load `name` and wrap it in a `ModelAdapter`.

    Args:
        name: an alias (see `interp.models.ALIASES`), a local HF model directory, or a hub id.
        device: torch device for the weights.
        dtype: weight dtype (float32 by default: the methods' tests compare to 1e-5).
        prepend_bos: BOS policy for tokenisation; None takes the model family's default
            (TransformerLens's ``default_prepend_bos``: True for GPT-2 and Llama, False for
            GPT-NeoX/Pythia).
        home: data root override (converted caches live under ``<home>/models``).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformer_lens.model_bridge import TransformerBridge

    location = hf_directory(name, home)
    try:
        tokenizer = AutoTokenizer.from_pretrained(location)
        hf_model = AutoModelForCausalLM.from_pretrained(location, dtype=dtype, attn_implementation="eager")
    except OSError as exc:
        raise ValueError(_hub_error(name, exc)) from None
    hf_model.eval()
    for param in hf_model.parameters():
        param.requires_grad_(False)
    # Passing hf_model (and a local path or alias as the name) keeps the bridge off the hub.
    bridge = TransformerBridge.boot_transformers(
        location if resolve(name).kind != "alias" else name,
        hf_model=hf_model,
        tokenizer=tokenizer,
        device=device,
        dtype=dtype,
    )
    bridge.eval()
    return ModelAdapter(name=name, bridge=bridge, prepend_bos=prepend_bos)
