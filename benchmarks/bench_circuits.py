"""Cost of transcoder circuit graphs on SmolLM2 vs one forward+backward pass of the model.

Transcoders at every layer: stored ones with ``--dicts`` (one per layer), else random TopK
ones of ``--d-sae`` latents and ``--k`` active per token (the cost does not depend on what the
latents mean; `interp.methods.circuits.transcoders.random_transcoders`).

Attribution graph (default; `interp.methods.circuits.attribution_graph`, circuit-tracer's
algorithm). For each ``--sizes`` N a prompt of exactly N positions (BOS + the first N - 1
tokens of the first IMDB review long enough, `interp.corpus`), each size in its own
subprocess so that the sizes' memory does not mix. Per size:

- graph: seconds of `attribution_graph` with ``--max-feature-nodes`` (trace, logit and latent
  rows, scores), next to `estimate_cost`'s prediction (printed before the graph runs);
- forward+backward: one forward with autograd on and a backward from the top logit (into every
  parameter), timed in the same process before and after the graph (the mean of the two
  medians of ``--repeats``); the ratio graph / that, in wall-clock seconds and in CPU seconds
  (``time.process_time``, which the other processes of a shared machine do not inflate);
- peak memory: the growth of the process's peak resident set (Linux VmHWM, reset through
  /proc/self/clear_refs just before the graph; ``ru_maxrss`` where that reset is refused)
  over its resident set before the graph, measured after the model, the transcoders and a
  warm-up graph are loaded, the parameters' gradients freed and glibc's freed heap pages
  returned (``malloc_trim``, so that memory freed earlier cannot hide the graph's). It counts everything torch allocates on the CPU (tracemalloc
  would not see torch's allocations), next to `estimate_cost`'s memory, which covers only the
  edge rows, the adjacency and one backward batch (not the trace);
- nodes and edges (non-zero adjacency entries) before and after pruning at the graph's
  thresholds (`interp.methods.circuits.influence.prune_graph`, node 0.8 / edge 0.98 by
  default), the seconds of the pruning, the replacement and completeness scores.

The table goes to stdout; with ``--store PATH`` the rows also go to that store's ``results``
(name ``bench_circuits``).

Greedy path search (``--greedy``; `interp.methods.circuits.graph.build_graph`): one prompt of
``--tokens`` tokens, target the logit of the model's top next token; times of the
forward+backward, the trace, the path search, the full direct attribution, and a plain
forward vs one caching the trace's hooks (how much of the trace is hook setup).

    .venv/bin/python benchmarks/bench_circuits.py [--sizes 16 32 64] [--max-feature-nodes 256] \\
        [--d-sae 4608] [--k 32] [--dicts NAMES] [--threads 1] [--store PATH]
    .venv/bin/python benchmarks/bench_circuits.py --greedy [--tokens 32] [--repeats 3]
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from interp.methods.circuits.attribution import LogitTarget, attribute, trace  # noqa: E402
from interp.methods.circuits.attribution_graph import AttributionConfig, attribution_graph  # noqa: E402
from interp.methods.circuits.graph import GraphConfig, build_graph  # noqa: E402
from interp.methods.circuits.influence import prune_graph  # noqa: E402
from interp.methods.circuits.transcoders import load_transcoders, random_transcoders  # noqa: E402
from interp.models import load_model  # noqa: E402

PROMPT = ("When Mary and John went to the store, John gave a drink to Mary. The war lasted from the year "
          "1732 to the year 17")
RESULT = "RESULT "
"""Prefix of the one stdout line a size's subprocess reports on."""


def _time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _times(fn, repeats: int) -> tuple[float, float]:
    """Medians of (wall-clock, CPU) seconds of `fn`: CPU time is what a shared, loaded machine does not inflate."""
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def _transcoders(args, adapter):
    if args.dicts:
        from interp.store import Store

        return load_transcoders(Store(args.dict_store) if args.dict_store else Store(), args.dicts.split(","),
                                adapter)[0]
    return random_transcoders(adapter, range(adapter.info.n_layers), args.d_sae, args.k)


def _review_tokens(adapter, n: int) -> torch.Tensor:
    """(n,) BOS + the first n - 1 tokens of the first IMDB review that has that many."""
    from interp.corpus import load_documents

    for doc in load_documents("imdb"):
        tokens = adapter.to_tokens(doc.text)[0]
        if len(tokens) >= n:
            return tokens[:n]
    raise ValueError(f"no IMDB review has {n} tokens")


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _start_peak() -> tuple[int, bool]:
    """(resident KiB now, whether the peak was reset to it); without a reset, ru_maxrss so far.

    glibc keeps freed heap pages resident and hands them out again, which would hide that much
    of the graph's memory from the resident set; malloc_trim(0) first returns them to the system.
    """
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return _status_kib("VmRSS"), True
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, False


def _peak_kib(reset: bool) -> int:
    return _status_kib("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _one_size(args) -> dict:
    """One prompt length, in this process (see the module docstring)."""
    n = args.child
    adapter = load_model(args.model)
    transcoders = _transcoders(args, adapter)
    tokens = _review_tokens(adapter, n)
    config = AttributionConfig(max_feature_nodes=args.max_feature_nodes)
    top = int(adapter.logits(tokens[None])[0, -1].argmax())

    def fwd_bwd():
        logits = adapter.logits(tokens[None], keep_grad=True)
        logits[0, -1, top].backward()

    # Warm-up: the adapter materialises weights on first access and the code paths get hot.
    attribution_graph(adapter, transcoders, tokens[:4], AttributionConfig(max_feature_nodes=8))
    fwd_bwd()
    fb_before = _times(fwd_bwd, args.repeats)
    adapter.bridge.zero_grad(set_to_none=True)  # the parameters' gradients are freed before the graph's peak
    before, reset = _start_peak()
    estimates, graph = [], None

    def build():
        nonlocal graph
        graph = attribution_graph(adapter, transcoders, tokens, config, on_estimate=estimates.append)

    t_graph, cpu_graph = _times(build, 1)
    peak = _peak_kib(reset) - before
    start = time.perf_counter()
    pr = prune_graph(graph.adjacency, graph.logit_probabilities, graph.n_features, graph.n_pos,
                     config.node_threshold, config.edge_threshold)
    t_prune = time.perf_counter() - start
    fb_after = _times(fwd_bwd, args.repeats)
    # The medians before and after the graph, averaged: both see the same background load.
    t_fb, cpu_fb = (fb_before[0] + fb_after[0]) / 2, (fb_before[1] + fb_after[1]) / 2
    est = estimates[0]
    return {"tokens": n, "n_active": est.n_active, "feature_nodes": graph.n_features, "logit_nodes": graph.n_logits,
            "graph_s": t_graph, "fwd_bwd_s": t_fb, "fwd_bwd_before_s": fb_before[0], "fwd_bwd_after_s": fb_after[0],
            "ratio": t_graph / t_fb, "graph_cpu_s": cpu_graph, "fwd_bwd_cpu_s": cpu_fb, "cpu_ratio": cpu_graph / cpu_fb, "estimate_s": est.seconds,
            "peak_mib": peak / 1024, "rss_before_mib": before / 1024, "estimate_mib": est.memory_gb * 1024, "peak_reset": reset,
            "nodes": graph.n_nodes, "edges": int((graph.adjacency != 0).sum()),
            "nodes_kept": int(pr.node_mask.sum()), "edges_kept": int(pr.edge_mask.sum()), "prune_s": t_prune,
            **graph.meta["scores"], "prompt": graph.prompt, "threads": torch.get_num_threads(),
            "transcoders": len(transcoders)}


_COLUMNS = [("tokens", "{}"), ("n_active", "{}"), ("feature_nodes", "{}"), ("graph_s", "{:.1f}"),
            ("fwd_bwd_s", "{:.3f}"), ("ratio", "{:.1f}"),
            ("graph_cpu_s", "{:.1f}"), ("fwd_bwd_cpu_s", "{:.3f}"), ("cpu_ratio", "{:.1f}"), ("estimate_s", "{:.1f}"), ("peak_mib", "{:.0f}"),
            ("estimate_mib", "{:.0f}"), ("nodes", "{}"), ("nodes_kept", "{}"), ("edges", "{}"), ("edges_kept", "{}"),
            ("prune_s", "{:.2f}"), ("replacement", "{:.3f}"), ("completeness", "{:.3f}")]
_HEADER = ("tokens", "active", "feats", "graph s", "f+b s", "ratio", "graph cpu", "f+b cpu", "cpu ratio", "est s", "peak MiB", "est MiB", "nodes",
           "kept n", "edges", "kept e", "prune s", "repl", "compl")


def _table(rows: list[dict]) -> str:
    cells = [[fmt.format(r[k]) for k, fmt in _COLUMNS] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(_HEADER)]
    return "\n".join("  ".join(x.rjust(w) for x, w in zip(line, widths)) for line in [list(_HEADER), *cells])


def _child_argv(args, n: int) -> list[str]:
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", str(n), "--model", args.model,
            "--d-sae", str(args.d_sae), "--k", str(args.k), "--max-feature-nodes", str(args.max_feature_nodes),
            "--repeats", str(args.repeats), "--threads", str(args.threads)]
    if args.dicts:
        argv += ["--dicts", args.dicts] + (["--dict-store", args.dict_store] if args.dict_store else [])
    return argv


def _attribution_section(args) -> None:
    rows = []
    for n in args.sizes:
        out = subprocess.run(_child_argv(args, n), capture_output=True, text=True)
        lines = [line for line in out.stdout.splitlines() if line.startswith(RESULT)]
        if out.returncode != 0 or not lines:
            sys.exit(f"size {n} failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
        rows.append(json.loads(lines[-1][len(RESULT):]))
        print(f"{n} tokens done: graph {rows[-1]['graph_s']:.1f} s", flush=True)
    r0 = rows[0]
    what = f"stored transcoders {args.dicts}" if args.dicts else f"random TopK transcoders d_sae {args.d_sae}, k {args.k}"
    print(f"\n{args.model}: {what} at {r0['transcoders']} layers; max_feature_nodes {args.max_feature_nodes}, "
          f"{r0['threads']} threads; prompts: first IMDB review with enough tokens, cut to N (BOS included)")
    print(f"peak MiB: growth of the peak RSS during the graph ({'VmHWM reset' if r0['peak_reset'] else 'ru_maxrss'}); "
          "est: estimate_cost (edge rows + adjacency + one batch); ratio = graph s / (forward+backward) s, "
          "wall-clock; cpu ratio the same in CPU seconds")
    print(_table(rows))
    load = os.getloadavg()
    print(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} ({os.cpu_count()} cores)")
    if args.store:
        from interp.store import Store

        store = Store(args.store)
        config = {k: getattr(args, k) for k in ("model", "sizes", "max_feature_nodes", "d_sae", "k", "dicts", "threads")}
        with store.run("bench_circuits", config, seed=0) as run:
            store.write("results", [{"name": "bench_circuits", "key": f"{args.model}/attribution-graph",
                                     "payload": {"rows": rows, "config": config, "load": list(load)}}], run_id=run)
        print(f"stored in {store.root} (results bench_circuits, run {run})")


def _greedy_section(args) -> None:
    adapter = load_model(args.model)
    transcoders = _transcoders(args, adapter)
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--dicts", default=None, help="comma-separated store transcoders, one per layer "
                                                  "(default: random at all layers)")
    ap.add_argument("--dict-store", default=None, help="store root the --dicts are read from (default: the data root's)")
    ap.add_argument("--d-sae", type=int, default=4608, help="random transcoders: latents per layer")
    ap.add_argument("--k", type=int, default=32, help="random transcoders: TopK active latents per token")
    ap.add_argument("--sizes", type=int, nargs="+", default=[16, 32, 64], help="prompt lengths (BOS included)")
    ap.add_argument("--max-feature-nodes", type=int, default=256, help="latent rows of each attribution graph")
    ap.add_argument("--repeats", type=int, default=3, help="forward+backward timings (median)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--store", default=None, metavar="PATH", help="also write the rows to this store's results")
    ap.add_argument("--greedy", action="store_true", help="the greedy path search section instead")
    ap.add_argument("--tokens", type=int, default=32, help="--greedy: prompt length")
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)  # one size, in a subprocess
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.greedy:
        _greedy_section(args)
    elif args.child is not None:
        print(RESULT + json.dumps(_one_size(args)), flush=True)
    else:
        _attribution_section(args)


if __name__ == "__main__":
    main()
