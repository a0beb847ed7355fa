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
   are present). The config is checked first (`read_set_config`, no weights read), then each
   file's tensors and shapes; every refusal is one line naming the file.
3. Fit (`check_fits`): one transcoder per layer of the model, each d_model -> d_model
   (`check_layers` alone where only the layer count is known).

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
ACTIVATIONS = ("relu", "topk")
"""Values of ``activation`` read (JumpReLU sets have none: their thresholds are in the weights)."""


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


def read_set_config(directory) -> tuple[dict, list[Path]]:
    """(config, one weights file per layer) of the transcoder set at `directory`, checked; no weights read.

    Raises FileNotFoundError (no folder, no config, a missing weights file) or ValueError (a
    config that is not YAML, not a transcoder set, or reads and writes other hooks), each one line.
    """
    import yaml

    directory = Path(directory)
    path = directory / CONFIG if directory.is_dir() else directory
    if not path.is_file():
        raise FileNotFoundError(f"no {CONFIG} at {directory}: a circuit-tracer transcoder set is a folder with one")
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not YAML ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    if not isinstance(config, dict) or config.get("model_kind") != "transcoder_set":
        raise ValueError(f"{path}: model_kind {config.get('model_kind') if isinstance(config, dict) else None!r}; "
                         "only transcoder_set is read")
    if (config.get("feature_input_hook"), config.get("feature_output_hook")) != (INPUT_HOOK, OUTPUT_HOOK):
        raise ValueError(f"{path}: the transcoders read {config.get('feature_input_hook')!r} and write "
                         f"{config.get('feature_output_hook')!r}; interp's read {INPUT_HOOK!r} and write {OUTPUT_HOOK!r}")
    if (config.get("activation") or "relu") not in ACTIVATIONS:
        raise ValueError(f"{path}: activation {config.get('activation')!r} is not read; valid: {', '.join(ACTIVATIONS)} "
                         "(JumpReLU: no activation, thresholds in the weights)")
    listed = config.get("transcoders")
    if listed is not None and (not isinstance(listed, list) or not all(isinstance(f, str) for f in listed)):
        raise ValueError(f"{path}: transcoders must be a list of file paths, got {listed!r:.200}")
    beside = {int(p.stem[6:]): str(p) for p in path.parent.glob("layer_*.safetensors") if p.stem[6:].isdigit()}
    files = listed or [beside[layer] for layer in sorted(beside)]  # by layer number: layer_10 after layer_9
    if not files:
        raise ValueError(f"{path}: no transcoders listed and no layer_*.safetensors beside it")
    out = []
    for layer, file in enumerate(files):
        file = Path(file) if Path(file).is_absolute() else path.parent / file
        if not file.is_file():
            file = path.parent / f"layer_{layer}.safetensors"  # the folder was moved: look beside the config
        if not file.is_file():
            beside = "" if Path(files[layer]).name == file.name else f" (nor {file.name} beside the config)"
            raise FileNotFoundError(f"{path}: layer {layer}'s weights {files[layer]} are missing{beside}")
        out.append(file)
    return config, out


def _load_layer(file: Path, config: dict):
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from interp.dictionaries import Dictionary

    try:
        t = load_file(str(file))
    except (SafetensorError, OSError) as exc:
        raise ValueError(f"{file} is not a safetensors file ({exc})") from None
    missing = [n for n in ("W_enc", "W_dec", "b_enc", "b_dec") if n not in t]
    if missing or t["W_enc"].ndim != 2 or t["W_dec"].ndim != 2:
        raise ValueError(f"{file}: a transcoder needs 2-d W_enc and W_dec, b_enc and b_dec; "
                         f"{'missing ' + ', '.join(missing) if missing else 'W_enc/W_dec are not 2-d'}")
    arch = "jumprelu" if "activation_function.threshold" in t else config.get("activation") or "relu"
    d_sae, d_model = t["W_enc"].shape
    k = config.get("k") if arch == "topk" else None
    if arch == "topk" and not (isinstance(k, int) and 0 < k <= d_sae):
        raise ValueError(f"{file}: a topk set needs k in 1..{d_sae} in its {CONFIG}, got {k!r}")
    tc = Dictionary(d_model, d_sae, t["W_dec"].shape[1], kind="transcoder", arch=arch, k=k, skip="W_skip" in t)
    sources = {"W_enc": t["W_enc"].T, "activation_function.threshold": t.get("activation_function.threshold"),
               **{n: t[n] for n in ("W_dec", "b_enc", "b_dec", "W_skip") if n in t}}
    with torch.no_grad():
        for name, value in sources.items():
            param = getattr(tc, "threshold" if name.startswith("activation") else name, None)
            if value is None or param is None:
                continue
            if tuple(value.shape) != tuple(param.shape):
                shape = tuple(value.T.shape) if name == "W_enc" else tuple(value.shape)
                want = tuple(param.T.shape) if name == "W_enc" else tuple(param.shape)
                raise ValueError(f"{file}: {name} has shape {shape}; with W_enc {(d_sae, d_model)} it must be {want}")
            param.copy_(value)
    return tc.eval()


def import_transcoder_set(directory) -> tuple[dict[int, object], dict]:
    """({layer: Dictionary}, config) from a transcoder set in the layout above (one-line errors, see `read_set_config`)."""
    config, files = read_set_config(directory)
    return {layer: _load_layer(file, config) for layer, file in enumerate(files)}, config


def check_layers(layers, n_layers: int, model: str, source: str = "the transcoder set") -> None:
    """Refuse (ValueError) a set whose layers are not exactly 0..n_layers-1 of `model`."""
    layers = sorted(layers)
    if layers != list(range(n_layers)):
        have = f"{len(layers)} layer{'s' if len(layers) != 1 else ''} ({layers[0]}..{layers[-1]})" if layers else "no layers"
        raise ValueError(f"{source} has transcoders for {have}; {model} has {n_layers} layers, one transcoder each")


def check_fits(transcoders: Mapping[int, object], adapter, source: str = "the transcoder set") -> None:
    """Refuse (ValueError) transcoders that are not one per layer of `adapter`'s model, each d_model -> d_model."""
    d = adapter.info.d_model
    check_layers(transcoders, adapter.info.n_layers, adapter.name, source)
    for layer in sorted(transcoders):
        tc = transcoders[layer]
        if (tc.d_in, tc.d_out) != (d, d):
            raise ValueError(f"{source}: layer {layer}'s transcoder maps {tc.d_in} -> {tc.d_out} dims; "
                             f"{adapter.name} has d_model {d}")
