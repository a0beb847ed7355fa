"""Cost of a transcoder circuit graph vs one forward+backward pass of the model.

A 32-token prompt, transcoders at every layer (stored ones with ``--dicts``, else random
TopK ones of the same size: the cost does not depend on what the latents mean), target = the
logit of the model's top next token. Times, side by side in one run (median of --repeats):

- forward+backward: one forward with autograd on, backward from the target logit;
- trace: the single forward pass that freezes caches and encodes every transcoder;
- graph: greedy path search (`build_graph`, default hops/top_k) on the trace;
- attribution: the full direct decomposition of the target (`attribute` on the trace);
- plain forward / forward caching the trace's hooks: how much of the trace is hook setup
  (the bridge rebuilds its hook table once per hooked name).

    .venv/bin/python benchmarks/bench_circuits.py [--model smollm2-135m] [--d-sae 4608] [--k 32]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from interp.methods.circuits.attribution import LogitTarget, attribute, trace  # noqa: E402
from interp.methods.circuits.graph import GraphConfig, build_graph  # noqa: E402
from interp.methods.circuits.transcoders import load_transcoders, random_transcoders  # noqa: E402
from interp.models import load_model  # noqa: E402

PROMPT = ("When Mary and John went to the store, John gave a drink to Mary. The war lasted from the year "
          "1732 to the year 17")


def _time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--dicts", default=None, help="comma-separated store transcoders (default: random at all layers)")
    ap.add_argument("--d-sae", type=int, default=4608)
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    adapter = load_model(args.model)
    if args.dicts:
        from interp.store import Store

        transcoders, _ = load_transcoders(Store(), args.dicts.split(","), adapter)
    else:
        transcoders = random_transcoders(adapter, range(adapter.info.n_layers), args.d_sae, args.k)
    tokens = adapter.to_tokens(PROMPT)[:, : args.tokens]
    print(f"{adapter.name}: {tokens.shape[1]} tokens, transcoders at {len(transcoders)} layers, "
          f"device {adapter.device}, {torch.get_num_threads()} threads")
    top = int(adapter.logits(tokens)[0, -1].argmax())
    target = LogitTarget(top)

    def fwd_bwd():
        logits = adapter.logits(tokens, keep_grad=True)
        logits[0, -1, top].backward()

    tr = trace(adapter, transcoders, tokens[0])
    fwd_bwd()  # warm up both paths once
    t_fb = _time(fwd_bwd, args.repeats)
    t_trace = _time(lambda: trace(adapter, transcoders, tokens[0]), args.repeats)
    config = GraphConfig()
    t_graph = _time(lambda: build_graph(adapter, tr, target, config), args.repeats)
    t_attr = _time(lambda: attribute(adapter, transcoders, None, target, tr=tr), args.repeats)
    names = [adapter.embed_site, adapter.final_resid_site, adapter.final_normalized_site]
    for layer in range(adapter.info.n_layers):
        s = adapter.sites(layer)
        names += [s.resid_pre, s.attn_in, s.attn_pattern, s.mlp_in, s.mlp_out]
    t_plain = _time(lambda: adapter.run(tokens), args.repeats)
    t_hooked = _time(lambda: adapter.run(tokens, names=names), args.repeats)
    graph = build_graph(adapter, tr, target, config)
    s = graph.meta["stats"]
    print(f"graph: {s['n_nodes_full']} nodes / {s['n_edges_full']} edges before pruning, "
          f"{len(graph.nodes)} kept (hops {config.hops}, top_k {config.top_k}, share {config.share})")
    print(f"forward+backward      {t_fb:8.3f} s   1.00x")
    print(f"trace (1 forward)     {t_trace:8.3f} s   {t_trace / t_fb:5.2f}x")
    print(f"graph search          {t_graph:8.3f} s   {t_graph / t_fb:5.2f}x")
    print(f"full attribution      {t_attr:8.3f} s   {t_attr / t_fb:5.2f}x")
    print(f"  plain forward       {t_plain:8.3f} s   {t_plain / t_fb:5.2f}x")
    print(f"  forward, {len(names)} hooks {t_hooked:8.3f} s   {t_hooked / t_fb:5.2f}x")
    print(f"trace + graph         {t_trace + t_graph:8.3f} s   {(t_trace + t_graph) / t_fb:5.2f}x forward+backward")


if __name__ == "__main__":
    main()
