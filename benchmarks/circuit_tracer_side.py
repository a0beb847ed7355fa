"""circuit-tracer's side of `check_circuit_tracer.py`: runs in its own venv (make .venv-circuit-tracer).

circuit-tracer 0.5.0 pins transformers<=4.57.3 and TransformerLens<3, which interp's environment
cannot share; this script imports neither interp nor anything of interp's. Usage:

    .venv-circuit-tracer/bin/python benchmarks/circuit_tracer_side.py DIR

DIR (written by check_circuit_tracer.py): ``graphs/*.json`` (graph files), ``transcoders/``
(a transcoder set: config.yaml + layer_*.safetensors) and ``reference.safetensors`` (inputs
``x_{layer}`` and interp's activations ``z_{layer}`` for them). Writes ``DIR/circuit_tracer.json``:

1. every graph file validated with circuit-tracer's own pydantic ``Model`` (frontend/graph_models.py),
   and dumped back: the node and link counts, and whether the dump equals the file;
2. the transcoder set loaded with circuit-tracer's own loader (``utils.hf_utils.load_transcoders``
   on the config, as from the hub); per layer the largest difference between its ``encode`` and
   interp's activations on the reference inputs, and between its decoder and interp's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file


def check_graphs(folder: Path) -> list[dict]:
    from circuit_tracer.frontend.graph_models import Model

    out = []
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text())
        try:
            model = Model.model_validate(data)
        except Exception as exc:  # noqa: BLE001 - the report names any validation failure
            out.append({"file": path.name, "valid": False, "error": str(exc)[:2000]})
            continue
        dumped = json.loads(model.model_dump_json())
        # Its Metadata model keeps only its own fields: the file's extra metadata (generation and
        # pruning settings, scores) is dropped by design, so those are compared apart.
        extra = sorted(set(data["metadata"]) - set(dumped["metadata"]))
        same = dumped == {**data, "metadata": {k: v for k, v in data["metadata"].items() if k not in extra}}
        out.append({"file": path.name, "valid": True, "nodes": len(model.nodes), "links": len(model.links),
                    "dump_equals_file_but_extra_metadata": same, "extra_metadata": extra})
    return out


def check_transcoders(folder: Path, reference: Path) -> dict:
    from circuit_tracer.utils.hf_utils import load_transcoders

    config = yaml.safe_load((folder / "config.yaml").read_text())
    tset = load_transcoders(config, device=torch.device("cpu"), dtype=torch.float32, lazy_encoder=False,
                            lazy_decoder=False)
    ref = load_file(str(reference))
    layers = []
    for layer in range(len(tset)):
        tc = tset[layer]
        x, z = ref[f"x_{layer}"], ref[f"z_{layer}"]
        with torch.no_grad():
            mine = tc.encode(x)
        layers.append({"layer": layer, "max_abs_activation_diff": float((mine - z).abs().max()),
                       "same_active_set": bool(torch.equal(mine != 0, z != 0)),
                       "max_abs_decoder_diff": float((tc.W_dec - ref[f"W_dec_{layer}"]).abs().max())})
    return {"loaded": True, "n_layers": len(tset), "feature_input_hook": tset.feature_input_hook,
            "feature_output_hook": tset.feature_output_hook, "type": type(tset).__name__, "layers": layers}


def main(folder: str) -> None:
    root = Path(folder)
    report = {"graphs": check_graphs(root / "graphs")}
    try:
        report["transcoders"] = check_transcoders(root / "transcoders", root / "reference.safetensors")
    except Exception as exc:  # noqa: BLE001
        report["transcoders"] = {"loaded": False, "error": f"{type(exc).__name__}: {exc}"[:2000]}
    import circuit_tracer  # noqa: F401
    from importlib.metadata import version

    report["versions"] = {p: version(p) for p in ("circuit-tracer", "transformers", "transformer-lens", "torch")}
    (root / "circuit_tracer.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main(sys.argv[1])
