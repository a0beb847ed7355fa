"""Per-layer transcoders in circuit-tracer's local transcoder-set layout, both ways.

The layout (what ``circuit_tracer.utils.hf_utils.load_transcoders`` reads from a config and
its cache writes)::

    DIR/config.yaml          model_kind: transcoder_set, model_name, scan,
                             feature_input_hook: ln2.hook_normalized, feature_output_hook: hook_mlp_out,
                             activation: relu | topk (absent for JumpReLU: thresholds are in the
                             weights), k (TopK), transcoders: [DIR/layer_0.safetensors, ...]
    DIR/layer_{i}.safetensors  W_enc (d_sae, d_model), W_dec (d_sae, d_model), b_enc (d_sae,),
                             b_dec (d_model,), optional W_skip (d_model, d_model) and
                             activation_function.threshold (d_sae,)

1. Export (`export_transcoder_set`): one transcoder per layer 0..n-1 (circuit-tracer needs
   every layer), interp's ``W_enc`` (d_model, d_sae) transposed to circuit-tracer's
   (d_sae, d_model); the rest keeps its shape (both follow SAELens's ``W_dec``, ``W_skip``).
   The paths under ``transcoders`` are absolute, as circuit-tracer opens them as given.
2. Import (`import_transcoder_set`): the same files back into `interp.dictionaries.Dictionary`
   transcoders (``arch`` from ``activation``: relu, topk with its k, jumprelu when thresholds
   are present).

The hook names are TransformerLens's, relative to a block, which is where interp's transcoders
read (``blocks.L.ln2.hook_normalized``: the ln2 output before its gain) and write
(``blocks.L.hook_mlp_out``). One difference in meaning: circuit-tracer's TopK keeps the k
largest pre-activations whatever their sign, interp's zeroes negative ones among them. The
circuit-tracer release on PyPI (0.5.0) ignores ``activation`` and ``k`` and reads a TopK set as
ReLU; TopK sets load as TopK only with its later loader.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch

CONFIG = "config.yaml"
INPUT_HOOK = "ln2.hook_normalized"
OUTPUT_HOOK = "hook_mlp_out"


def _arch(tc) -> tuple[str, int | None]:
    arch = getattr(tc, "arch", None)
    if arch is None:  # SAELens classes
        name = type(tc).__name__.lower()
        arch = "jumprelu" if "jumprelu" in name else "topk" if "topk" in name else "relu"
    return arch, getattr(tc, "k", None) if arch == "topk" else None


def export_transcoder_set(transcoders: Mapping[int, object], directory, model_name: str, scan: str | None = None) -> Path:
    """Write `transcoders` (layer -> transcoder, every layer 0..n-1) in the layout above; returns the config path."""
    import yaml
    from safetensors.torch import save_file

    layers = sorted(transcoders)
    if layers != list(range(len(layers))) or not layers:
        raise ValueError(f"circuit-tracer needs a transcoder at every layer 0..n-1; have layers {layers}")
    archs = {_arch(transcoders[layer]) for layer in layers}
    if len(archs) != 1:
        raise ValueError(f"circuit-tracer's transcoder set has one activation function; these have {sorted(archs)}")
    (arch, k), = archs
    if getattr(transcoders[0], "apply_b_dec_to_input", False):
        raise ValueError("a transcoder subtracting b_dec from its input cannot be written for circuit-tracer")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for layer in layers:
        tc = transcoders[layer]
        tensors = {"W_enc": tc.W_enc.detach().T, "W_dec": tc.W_dec.detach(), "b_enc": tc.b_enc.detach(),
                   "b_dec": tc.b_dec.detach()}
        if getattr(tc, "W_skip", None) is not None:
            tensors["W_skip"] = tc.W_skip.detach()
        if arch == "jumprelu":
            tensors["activation_function.threshold"] = tc.threshold.detach()
        path = directory / f"layer_{layer}.safetensors"
        save_file({n: t.float().contiguous().cpu() for n, t in tensors.items()}, str(path))
        paths.append(str(path.resolve()))
    config = {"model_kind": "transcoder_set", "model_name": model_name, "scan": scan or f"{model_name}/interp",
              "feature_input_hook": INPUT_HOOK, "feature_output_hook": OUTPUT_HOOK, "transcoders": paths}
    if arch != "jumprelu":
        config["activation"] = arch
    if k is not None:
        config["k"] = int(k)
    out = directory / CONFIG
    out.write_text(yaml.safe_dump(config, sort_keys=False))
    return out


def import_transcoder_set(directory) -> tuple[dict[int, object], dict]:
    """({layer: Dictionary}, config) from a transcoder set in the layout above."""
    import yaml
    from safetensors.torch import load_file

    from interp.dictionaries import Dictionary

    directory = Path(directory)
    path = directory / CONFIG if directory.is_dir() else directory
    if not path.is_file():
        raise FileNotFoundError(f"no {CONFIG} at {directory}: a circuit-tracer transcoder set is a folder with one")
    config = yaml.safe_load(path.read_text())
    if not isinstance(config, dict) or config.get("model_kind") != "transcoder_set":
        raise ValueError(f"{path}: model_kind {config.get('model_kind') if isinstance(config, dict) else None!r}; "
                         "only transcoder_set is read")
    if (config.get("feature_input_hook"), config.get("feature_output_hook")) != (INPUT_HOOK, OUTPUT_HOOK):
        raise ValueError(f"{path}: the transcoders read {config.get('feature_input_hook')!r} and write "
                         f"{config.get('feature_output_hook')!r}; interp's read {INPUT_HOOK!r} and write {OUTPUT_HOOK!r}")
    files = config.get("transcoders") or sorted(str(p) for p in path.parent.glob("layer_*.safetensors"))
    out = {}
    for layer, file in enumerate(files):
        file = Path(file) if Path(file).is_absolute() else path.parent / file
        if not file.is_file():
            file = path.parent / f"layer_{layer}.safetensors"  # the folder was moved: look beside the config
        t = load_file(str(file))
        arch = "jumprelu" if "activation_function.threshold" in t else config.get("activation") or "relu"
        d_sae, d_model = t["W_enc"].shape
        tc = Dictionary(d_model, d_sae, t["b_dec"].shape[0], kind="transcoder", arch=arch,
                        k=config.get("k") if arch == "topk" else None, skip="W_skip" in t)
        with torch.no_grad():
            tc.W_enc.copy_(t["W_enc"].T)
            for name in ("W_dec", "b_enc", "b_dec", "W_skip"):
                if name in t:
                    getattr(tc, name).copy_(t[name])
            if arch == "jumprelu":
                tc.threshold.copy_(t["activation_function.threshold"])
        out[layer] = tc.eval()
    return out, config
