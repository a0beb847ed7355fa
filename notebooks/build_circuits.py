"""Write notebooks/circuits.ipynb (run: ``.venv/bin/python notebooks/build_circuits.py [--execute]``).

A worked transcoder circuit on SmolLM2: indirect-object identification ("When Mary and John
went to the store, John gave a drink to" -> " Mary", not " John"). It uses the store's
transcoders (``smollm2-135m/quick/L*``: TopK, k=16, 4x, trained briefly; if none are stored
it trains three small ones first) and writes its graph to the store named by ``$INTERP_STORE`` (default: the data root's).
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

CELLS = [
    "# Transcoder circuits: indirect-object identification in SmolLM2\n\n"
    "Dunefsky, Chlenski & Nanda (2024) show that transcoders (sparse, wide replacements of MLP "
    "sublayers) make circuits through MLPs readable from the weights: a latent's effect on a later "
    "latent is its *activation* (input-dependent) times a *connection weight* "
    "`W_dec[i] . W_enc[:, j]` (input-invariant). Attention heads enter through their OV circuits "
    "with the pattern frozen, and every transcoder's error term stays in the picture.\n\n"
    "Behaviour: `When Mary and John went to the store, John gave a drink to` -> ` Mary` "
    "(the indirect object), not ` John`. Target: the logit difference ` Mary` - ` John`.",
    """\
import os
import torch
torch.set_num_threads(2)

from interp.models import load_model
from interp.store import Store

model = load_model("smollm2-135m")
store = Store(os.environ.get("INTERP_STORE"))  # default: the data root's store
model""",
    "## Transcoders\nTopK transcoders read from the store (`smollm2-135m/quick/...`: k=16, 4x, trained "
    "briefly: 64k training tokens over 8k distinct IMDB tokens). Layers without one keep their MLP as one opaque `mlp` node. "
    "Quick transcoders leave large error terms: the graph shows exactly how large. Better ones "
    "(`interp train --kind transcoder ...`) shrink them; nothing else changes.",
    """\
from interp.methods.circuits.transcoders import load_transcoders

PREFIX = "smollm2-135m/quick/"
NAMES = [n for n in store.read("dictionaries", columns=["name"])["name"] if n.startswith(PREFIX)]
if not NAMES:  # none stored yet: train three small ones (a few minutes on a CPU)
    from interp.jobs.dictionaries import DataConfig, train_and_publish
    from interp.dictionaries.training import TrainConfig
    train = TrainConfig(kind="transcoder", arch="topk", k=16, expansion=4, train_tokens=64_000, lr=2e-3,
                        dead_after_tokens=20_000)
    data = DataConfig(activation_tokens=8_000, eval_tokens=256, dashboard_tokens=0)
    for layer in (0, 1, 2):
        NAMES.append(train_and_publish(model, store, train, layer, data=data, progress=False,
                                       name=f"{PREFIX}L{layer}-transcoder-topk-k16-x4").name)
transcoders, names = load_transcoders(store, NAMES, model)
metrics = store.read("dictionaries", where={"name": NAMES}, columns=["name", "metrics"])
import json, pandas as pd
pd.DataFrame([{"name": r.name.split("/")[-1], **{k: json.loads(r.metrics).get(k) for k in ("fvu", "l0", "ce_recovered")}}
              for r in metrics.itertuples()]).sort_values("name", key=lambda s: s.str.extract(r"L(\\d+)")[0].astype(int)).head(30)""",
    "## The behaviour\nThe model strongly prefers the indirect object.",
    """\
from interp.methods.circuits.targets import parse_target

prompt = "When Mary and John went to the store, John gave a drink to"
probs = model.logits(prompt)[0, -1].softmax(-1)
target = parse_target(model, 'logitdiff:" Mary"," John"')
print(f"p(' Mary') = {probs[target.token]:.3f}, p(' John') = {probs[target.other]:.3f}")
print(list(enumerate(model.to_str_tokens(prompt))))  # positions, as the graph labels them""",
    "## Exact direct attribution\nOne forward pass of the *unmodified* model (transcoders only read). "
    "Every component's direct contribution to the logit difference: latents (activation x weight), "
    "heads per source position, embeddings, transcoder errors and biases. They add up to the "
    "actual value.",
    """\
from interp.methods.circuits.attribution import attribute, trace

tr = trace(model, transcoders, prompt)
attr = attribute(model, transcoders, prompt, target, tr=tr)
print(f"{attr.target}: actual {attr.value:.4f}, sum of contributions + bias {attr.total:.4f} "
      f"(residual {attr.residual:.1e})")
print(f"share of |contributions|: heads {attr.share('head'):.1%}, latents {attr.share('latent'):.1%}, "
      f"transcoder errors {attr.share('error'):.1%}, MLPs without a transcoder {attr.share('mlp'):.1%}")
attr.frame.head(15)[["label", "kind", "contribution"]]""",
    "## The circuit\nGreedy path search from the target (3 hops, 8 contributors per node), pruned to the "
    "fewest nodes covering 80% of the total influence. Edge weights are in logit-difference units; "
    "a node's influence is everything it passes to the target along the graph.",
    """\
from interp.methods.circuits.graph import GraphConfig, build_graph
from interp.viz.circuits import circuit_figure

meta = {"model": model.name, "prompt": prompt, "target": {"spec": 'logitdiff:" Mary"," John"'},
        "dictionaries": {str(k): v for k, v in names.items()}}
graph = build_graph(model, tr, target, GraphConfig(hops=3, top_k=8, share=0.8), meta)
s = graph.meta["stats"]
print(f"{len(graph.nodes)} nodes / {len(graph.edges)} edges kept of {s['n_nodes_full']} / {s['n_edges_full']}; "
      f"covered {s['covered_share']:.0%} of |influence|")
print(f"unexplained share (transcoder errors + MLPs without one): {s['direct_error_share']:.1%} of the direct "
      f"contributions, {s['error_share']:.1%} of the kept graph's influence")
circuit_figure(graph)""",
    """\
pd.DataFrame([{"node": n.label, "type": n.type, "influence": n.influence, "activation": n.activation,
               "unexpanded rest": n.rest, "error in": n.error_in}
              for n in sorted(graph.nodes, key=lambda n: -abs(n.influence))]).head(20)""",
    "## Does ablation agree?\nRemove each of the top 20 direct contributors from the real forward pass "
    "and measure the change of the logit difference. The direct attribution ignores what later layers "
    "and the norms do in response, so agreement is approximate.",
    """\
from interp.methods.circuits.validation import ablation_check

check = ablation_check(model, tr, target, attr, top_n=20)
print(f"pearson {check.pearson:.3f}, slope {check.slope:.3f} over {len(check.frame)} contributors")
check.frame""",
    "## Input-invariant connections\nFor the strongest latent in the attribution, its top upstream latents in "
    "the nearest earlier transcoder by connection weight `C[i, j] = W_dec[i] . W_enc[:, j]` (RMSNorm: no "
    "centring; the norm's scale is left out, scale = 1), beside the same pairs' attribution on this prompt "
    "(activation x weight x this prompt's 1/sigma).",
    """\
from interp.methods.circuits.connections import top_connections

frame = attr.frame
# the strongest latent in the direct attribution that has a transcoder below it
latents = frame[(frame["kind"] == "latent") & (frame["layer"] > min(transcoders))]
if len(latents):
    row = latents.iloc[0]
    layer, pos, index = int(row["layer"]), int(row["source"]), int(row["index"])
    up_layer = max(l for l in transcoders if l < layer)
    table = top_connections(transcoders[up_layer], transcoders[layer], k=10, norm=model.info.norm)
    up = table.upstream(index)
    lt = tr.layers[up_layer]
    z = {int(i): float(v) for i, v in zip(lt.active_idx[pos], lt.active_val[pos])}
    c = float(tr.layers[layer].ln2_scale[pos])
    up["activation_here"] = [z.get(i, 0.0) for i in up["index"]]
    up["attribution_here"] = up["weight"] * up["activation_here"] * c
    print(f"upstream of {row['label']} in the layer-{up_layer} transcoder")
    display(up)""",
    "## Store and export\nThe graph goes to the store (results table, name `circuit`, plus a tensor "
    "bundle) and exports as JSON (schema `interp.circuit/1`, documented in "
    "`interp.methods.circuits.graph`) for other tools: `interp circuit export KEY -o graph.json`.",
    """\
from interp.methods.circuits.graph import CircuitGraph
from interp.methods.circuits.store import save_graph

run = store.start_run("notebook circuits", {"prompt": prompt, "target": meta["target"]}, seed=0)
key = save_graph(store, graph, run)
store.finish_run(run, "done")
payload = graph.to_json()
assert CircuitGraph.from_json(payload).to_json() == payload
key, sorted(payload), payload["nodes"][1]""",
]


def build(execute: bool = False) -> Path:
    nb = new_notebook(cells=[new_markdown_cell(c) if c.startswith("#") else new_code_cell(c) for c in CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = HERE / "circuits.ipynb"
    if execute:
        from nbclient import NotebookClient

        NotebookClient(nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}).execute()
    nbformat.write(nb, path)
    return path


if __name__ == "__main__":
    print(build(execute="--execute" in sys.argv))
