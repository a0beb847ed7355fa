"""interp's attribution graph against circuit-tracer's, same model, transcoders, prompt and settings.

    make .venv-circuit-tracer
    python benchmarks/check_circuit_tracer.py --out /tmp/ct-check --archs relu     # writes a transcoder set
    python benchmarks/compare_circuit_tracer.py --transcoders /tmp/ct-check/relu/transcoders \
        --prompt "The capital of France is" --max-feature-nodes 64

1. Load the transcoder set with interp's importer (`import_transcoder_set`); build interp's graph.
2. Run circuit-tracer's own ``attribute`` in its venv (`circuit_tracer_attribute.py`) on the same
   token ids with the same settings (batch size, logits, max_feature_nodes).
3. Compare: logit tokens, active-latent counts, the visited latents (overlap), edge weights on edges
   between nodes both graphs hold (Pearson correlation, largest absolute difference, relative to
   the largest |weight|), replacement and completeness scores, and wall times on this CPU.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from interp.methods.circuits.attribution_graph import AttributionConfig, attribution_graph  # noqa: E402
from interp.methods.circuits.transcoder_set import import_transcoder_set  # noqa: E402
from interp.models import load_model  # noqa: E402


def _keys(active, selected, n_layers, n_pos, logit_tokens) -> list[tuple]:
    """One hashable key per node, in node order: ('f', l, p, i), ('e', l, p), ('t', p), ('l', token)."""
    feats = [("f", *active[s].tolist()) for s in selected.tolist()]
    errs = [("e", layer, p) for layer in range(n_layers) for p in range(n_pos)]
    return feats + errs + [("t", p) for p in range(n_pos)] + [("l", int(t)) for t in logit_tokens]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--transcoders", required=True)
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--model-dir", default=str(ROOT / "data/models/smollm2-135m"),
                   help="the same model as a local Hugging Face folder, for circuit-tracer")
    p.add_argument("--prompt", default="The capital of France is")
    p.add_argument("--max-feature-nodes", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--python", default=str(ROOT / ".venv-circuit-tracer/bin/python"))
    p.add_argument("--out", default=None, help="write the comparison JSON here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    adapter = load_model(args.model)
    tcs, _ = import_transcoder_set(args.transcoders)
    tokens = adapter.to_tokens(args.prompt)[0]
    config = AttributionConfig(max_feature_nodes=args.max_feature_nodes, batch_size=args.batch_size)
    start = time.perf_counter()
    g = attribution_graph(adapter, tcs, tokens, config)
    ours_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ct.pt"
        subprocess.run([args.python, str(ROOT / "benchmarks/circuit_tracer_attribute.py"),
                        args.model_dir,
                        args.transcoders, str(out), "--tokens", ",".join(map(str, tokens.tolist())),
                        "--max-feature-nodes", str(args.max_feature_nodes), "--batch-size", str(args.batch_size),
                        "--threads", str(args.threads)], check=True, timeout=3600)
        ct = torch.load(out, weights_only=False)
        if args.out:
            torch.save(ct, Path(args.out).with_suffix(".circuit_tracer.pt"))
    mine = _keys(g.active_features, g.selected_features, g.n_layers, g.n_pos, g.logit_tokens)
    theirs = _keys(ct["active_features"][:, [0, 1, 2]], ct["selected_features"], ct["n_layers"], g.n_pos,
                   ct["logit_tokens"])
    index_t = {k: i for i, k in enumerate(theirs)}
    shared = [(i, index_t[k]) for i, k in enumerate(mine) if k in index_t]
    a = torch.tensor([i for i, _ in shared])
    b = torch.tensor([j for _, j in shared])
    A2 = g.adjacency[a][:, a].double()
    B2 = ct["adjacency"][b][:, b].double()
    kinds = [mine[i][0] for i, _ in shared]
    by_kind = {}
    for tk in "fl":
        for sk in "fetl":
            rows = torch.tensor([k == tk for k in kinds])
            cols = torch.tensor([k == sk for k in kinds])
            x, y = A2[rows][:, cols].flatten(), B2[rows][:, cols].flatten()
            m = (x != 0) | (y != 0)
            if m.any():
                by_kind[f"{sk}->{tk}"] = {"n": int(m.sum()), "max_abs_diff": float((x[m] - y[m]).abs().max()),
                                          "max_abs_weight": float(y[m].abs().max())}
    A, B = A2.flatten(), B2.flatten()
    nz = (A != 0) | (B != 0)
    A, B = A[nz], B[nz]
    corr = float(torch.corrcoef(torch.stack([A, B]))[0, 1]) if len(A) > 1 else float("nan")
    feats_mine = {k for k in mine if k[0] == "f"}
    feats_theirs = {k for k in theirs if k[0] == "f"}
    report = {
        "prompt": args.prompt, "tokens": tokens.tolist(), "max_feature_nodes": args.max_feature_nodes,
        "logit_tokens": {"interp": g.logit_tokens, "circuit_tracer": [int(t) for t in ct["logit_tokens"]]},
        "active_latents": {"interp": len(g.active_features), "circuit_tracer": len(ct["active_features"])},
        "visited_latents_shared": len(feats_mine & feats_theirs), "visited_latents": len(feats_mine),
        "shared_nodes": len(shared), "edges_compared": int(nz.sum()),
        "edge_pearson": corr, "edge_max_abs_diff": float((A - B).abs().max()),
        "edge_max_abs_weight": float(B.abs().max()), "edges_by_kind": by_kind,
        "scores": {"interp": g.meta["scores"],
                   "circuit_tracer": {"replacement": ct["replacement"], "completeness": ct["completeness"]}},
        "seconds": {"interp": ours_s, "circuit_tracer": ct["seconds"], "ratio": ours_s / ct["seconds"]},
    }
    print(json.dumps(report, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
