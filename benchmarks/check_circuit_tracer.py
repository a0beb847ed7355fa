"""interp's attribution graphs and transcoder sets, checked with circuit-tracer's own code.

    make .venv-circuit-tracer                     # once: circuit-tracer 0.5.0 in a venv of its own
    python benchmarks/check_circuit_tracer.py --out /tmp/ct-check [--model smollm2-135m] [--d-sae 1024 --k 8]

1. Random transcoders at every layer of the model (TopK, ReLU with biases, JumpReLU: one graph
   and one transcoder-set check per activation function that circuit-tracer can load); graphs of
   a few prompts exported in circuit-tracer's format (`to_circuit_tracer`) into OUT/<arch>/graphs.
2. The transcoder set exported in circuit-tracer's layout (`export_transcoder_set`) with reference
   inputs (the model's ``ln2`` outputs on the prompts) and interp's activations for them.
3. `circuit_tracer_side.py` in ``.venv-circuit-tracer`` validates each graph file with circuit-tracer's
   pydantic models and loads the set with its loader, comparing activations and decoders.
4. A summary is printed and written to OUT/summary.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from interp.dictionaries import Dictionary  # noqa: E402
from interp.methods.circuits.attribution_graph import AttributionConfig, attribution_graph  # noqa: E402
from interp.methods.circuits.graph_files import to_circuit_tracer  # noqa: E402
from interp.methods.circuits.transcoder_set import export_transcoder_set  # noqa: E402
from interp.models import load_model  # noqa: E402

PROMPTS = ["The capital of France is", "When Mary and John went to the store, John gave a drink to"]


def _transcoders(adapter, arch: str, d_sae: int, k: int, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    d = adapter.info.d_model
    out = {}
    for layer in range(adapter.info.n_layers):
        tc = Dictionary(d, d_sae, d, kind="transcoder", arch=arch, k=k if arch == "topk" else None)
        tc.init_weights(g)
        with torch.no_grad():
            tc.b_dec.normal_(0, 0.1, generator=g)
            if arch != "topk":  # sparse enough to draw: most latents below zero
                tc.b_enc.fill_(-1.5)
            if arch == "jumprelu":
                tc.threshold.fill_(0.05)
        out[layer] = tc.eval()
    return out


def _export(adapter, arch: str, tcs: dict, out: Path, max_feature_nodes: int) -> list[dict]:
    from safetensors.torch import save_file

    (out / "graphs").mkdir(parents=True, exist_ok=True)
    made = []
    ref = {}
    for i, prompt in enumerate(PROMPTS):
        g = attribution_graph(adapter, tcs, prompt, AttributionConfig(max_feature_nodes=max_feature_nodes),
                              meta={"model": adapter.store_name})
        data = to_circuit_tracer(g, slug=f"{arch}-{i}")
        (out / "graphs" / f"{arch}-{i}.json").write_text(json.dumps(data))
        made.append({"prompt": prompt, "n_active": len(g.active_features), "n_features": g.n_features,
                     "nodes": len(data["nodes"]), "links": len(data["links"]), **g.meta["scores"],
                     "seconds": g.meta["seconds"]})
    sites = [adapter.sites(layer).mlp_in for layer in tcs]
    cache = adapter.run(PROMPTS[0], names=sites).cache
    for layer, tc in tcs.items():
        x = cache[adapter.sites(layer).mlp_in][0].float()
        ref[f"x_{layer}"], ref[f"z_{layer}"] = x, tc.encode(x).detach()
        ref[f"W_dec_{layer}"] = tc.W_dec.detach()
    export_transcoder_set(tcs, out / "transcoders", adapter.name, scan=f"interp-random-{arch}")
    save_file({k: v.contiguous() for k, v in ref.items()}, str(out / "reference.safetensors"))
    return made


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="folder for the files and the summary")
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--d-sae", type=int, default=1024)
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--max-feature-nodes", type=int, default=256)
    p.add_argument("--archs", default="topk,relu,jumprelu")
    p.add_argument("--python", default=str(ROOT / ".venv-circuit-tracer/bin/python"))
    args = p.parse_args()
    out = Path(args.out)
    adapter = load_model(args.model)
    summary = {"model": adapter.name, "archs": {}}
    for arch in args.archs.split(","):
        folder = out / arch
        tcs = _transcoders(adapter, arch, args.d_sae, args.k)
        graphs = _export(adapter, arch, tcs, folder, args.max_feature_nodes)
        entry = {"interp": graphs}
        if Path(args.python).exists():
            subprocess.run([args.python, str(ROOT / "benchmarks/circuit_tracer_side.py"), str(folder)], check=True,
                           timeout=900)
            entry["circuit_tracer"] = json.loads((folder / "circuit_tracer.json").read_text())
        else:
            entry["circuit_tracer"] = f"not run: {args.python} is missing (make .venv-circuit-tracer)"
        summary["archs"][arch] = entry
        print(json.dumps({arch: entry}, indent=1))
    (out / "summary.json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
