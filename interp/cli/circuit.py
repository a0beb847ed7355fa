"""``interp circuit``: transcoder circuits of a prompt, written to the store; JSON export/import.

    interp circuit --model smollm2-135m --prompt "The capital of France is" --target 'logit:" Paris"'
    interp circuit --prompt "..." --target 'logitdiff:" she"," he"' --dicts tc-l3,tc-l8 --hops 3 --share 0.8
    interp circuit --prompt "..." --target latent:tc-l8:123@-1
    interp circuit --prompt "The capital of France is"      # explains the model's top next token
    interp circuit graph --prompt "The capital of France is" --max-feature-nodes 2000 --max-memory 4
    interp circuit graph --prompt "The capital of France is" --device cuda
    interp circuit export graph-0123abcd4567 --format circuit-tracer -o graph.json
    interp circuit import graph.json
    interp circuit connections --dicts tc-l3,tc-l8 --k 10
    interp circuit graph --prompt "The capital of France is" --transcoders DIR
    interp circuit import-transcoders DIR --model smollm2-135m [--name PREFIX] [--replace]
    interp circuit export-transcoders DIR --model smollm2-135m [--dicts NAMES]

``build`` runs the greedy path search from one target (`interp.methods.circuits.graph`);
``graph`` builds circuit-tracer's attribution graph of the next-token logits
(`interp.methods.circuits.attribution_graph`): without --target, the salient top tokens.
``export --format circuit-tracer`` writes the graph file circuit-tracer's frontend and
Neuronpedia open; ``--format interp`` interp's own; ``import`` reads any of them.

Transcoders come from the store (`--dicts`, default: every stored transcoder of the model,
one per layer); ``--dicts random:D_SAE[:K]`` puts random transcoders at all layers (their
latents mean nothing; for smoke tests). ``--transcoders DIR`` takes them from a circuit-tracer
transcoder set on disk instead; ``import-transcoders`` stores such a set as dictionaries and
``export-transcoders`` writes stored ones as a set (`interp.cli.circuit_transcoders`). The
graph JSON schema is documented in `interp.methods.circuits.graph`.
"""

from __future__ import annotations

from interp.cli.circuit_transcoders import check_dicts, open_store, selected_transcoders

import json
import sys
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser("circuit", help="transcoder circuit of a prompt (graph to the store); export/import JSON",
                              description=__doc__.split("\n\n", 1)[0])
    from interp.cli.backends import add_device_argument
    from interp.cli.circuit_transcoders import add_arguments as add_transcoder_set_arguments
    from interp.cli.options import add_config_arguments
    from interp.methods.circuits.attribution_graph import AttributionConfig

    p.add_argument("action", nargs="?", default="build", choices=[
        "build", "graph", "export", "import", "connections", "import-transcoders", "export-transcoders"],
                   help="build (default) | graph | export KEY | import FILE | connections | "
                        "import-transcoders DIR | export-transcoders DIR")
    p.add_argument("item", nargs="?", default=None,
                   help="graph key (export), JSON file (import), transcoder-set folder (import-/export-transcoders)")
    p.add_argument("--model", default="smollm2-135m", help="model alias, hub id or local directory")
    p.add_argument("--prompt", default=None, help="the prompt (BOS is prepended as the model does)")
    p.add_argument("--target", default=None, metavar="SPEC",
                   help='latent:DICT:IDX[@POS] | logit:" Paris"[@POS] | logitdiff:" she"," he"[@POS]')
    p.add_argument("--dicts", default=None, help="comma-separated store transcoders, or random:D_SAE[:K]")
    add_transcoder_set_arguments(p)
    p.add_argument("--hops", type=int, default=3, help="longest path (edges) expanded from the target")
    p.add_argument("--top-k", type=int, default=8, help="contributors kept per expanded node")
    p.add_argument("--share", type=float, default=0.8, help="prune to the fewest nodes covering this |influence| share")
    p.add_argument("--k", type=int, default=10, help="connections: top-k per latent")
    p.add_argument("--validate", type=int, default=0, metavar="N", help="also ablate the top N contributors and report")
    add_config_arguments(p, AttributionConfig, skip=("dtype",), rename={"max_memory_gb": "--max-memory"},
                         dest_prefix="ag_")
    p.add_argument("--format", default="interp", choices=["interp", "circuit-tracer"],
                   help="export: the graph file format (circuit-tracer: its frontend and Neuronpedia)")
    p.add_argument("--slug", default=None, help="export --format circuit-tracer: the graph's slug (default: its key)")
    p.add_argument("-o", "--output", default=None, help="write the graph JSON here (build/graph/export)")
    p.add_argument("--html", default=None, help="write the graph figure as HTML here")
    p.add_argument("--store", default=None, metavar="PATH", help="store root (default: <data root>/store)")
    p.add_argument("--no-store", action="store_true", help="compute and print only")
    add_device_argument(p, "the model and the transcoders (build, graph, connections)")
    p.set_defaults(func=_run)


def _build(args) -> int:
    from interp.methods.circuits.attribution import attribute, trace
    from interp.methods.circuits.graph import GraphConfig, build_graph
    from interp.methods.circuits.store import save_graph
    from interp.methods.circuits.targets import parse_target
    from interp.models import load_model

    _check_prompt(args)
    config = GraphConfig(hops=args.hops, top_k=args.top_k, share=args.share)
    store = None if args.no_store else open_store(args)
    check_dicts(args, store if store is not None else open_store(args))  # before the model loads
    adapter = load_model(args.model, device=args.device)
    transcoders, names = selected_transcoders(args, adapter, store if store is not None else open_store(args))
    transcoders = _on_device(transcoders, adapter)
    target = parse_target(adapter, args.target, {v: k for k, v in names.items()}) if args.target else None
    tr = trace(adapter, transcoders, args.prompt)
    if target is None:  # the model's top next token
        top = int(tr.logits[-1].argmax())
        args.target = f"logit:#{top}"
        target = parse_target(adapter, args.target)
        print(f"target: the top next token {adapter.decode([top])!r} (#{top})")
    meta = {"model": adapter.store_name, "prompt": args.prompt, "target": {"spec": args.target},
            "dictionaries": {str(k): v for k, v in sorted(names.items())}}
    graph = build_graph(adapter, tr, target, config, meta)
    _print(graph)
    if args.validate:
        from interp.methods.circuits.validation import ablation_check

        check = ablation_check(adapter, tr, target, attribute(adapter, transcoders, None, target, tr=tr), args.validate)
        graph.meta["stats"].update(ablation_pearson=check.pearson, ablation_slope=check.slope, ablation_n=len(check.frame))
        print(f"ablation of the top {len(check.frame)} contributors: pearson {check.pearson:.3f}, slope {check.slope:.3f}")
    if store is not None:
        with store.run(f"interp circuit --model {args.model} --prompt {args.prompt!r} --target {args.target!r}",
                       {**meta, "config": graph.meta["config"]}, seed=0) as run:
            key = save_graph(store, graph, run)
        print(f"stored as {key} (run {run})")
    _outputs(args, graph)
    return 0


def _check_prompt(args) -> None:
    if not args.prompt:
        raise ValueError(f"interp circuit {args.action} needs --prompt (or an action: export, import, connections)")
    if not args.prompt.strip():
        raise ValueError(f"--prompt {args.prompt!r} is empty: give the text whose circuit is traced")


def _graph(args) -> int:
    from interp.cli.options import config_from_args
    from interp.methods.circuits.attribution_graph import AttributionConfig, attribution_graph
    from interp.methods.circuits.store import save_attribution_graph
    from interp.methods.circuits.targets import parse_target
    from interp.models import load_model

    _check_prompt(args)
    config = config_from_args(AttributionConfig, args, dest_prefix="ag_")
    store = None if args.no_store else open_store(args)
    check_dicts(args, store if store is not None else open_store(args))  # before the model loads
    adapter = load_model(args.model, device=args.device)
    transcoders, names = selected_transcoders(args, adapter, store if store is not None else open_store(args))
    transcoders = _on_device(transcoders, adapter)
    targets = None
    if args.target:
        targets = [parse_target(adapter, spec, {v: k for k, v in names.items()}) for spec in _split_targets(args.target)]
    meta = {"model": adapter.store_name, "dictionaries": {str(k): v for k, v in sorted(names.items())}}
    graph = attribution_graph(adapter, transcoders, args.prompt, config, targets, meta,
                              on_estimate=lambda c: print(f"estimate: {c.describe()}", flush=True))
    s = graph.meta["scores"]
    print(f"{graph.n_features} latent nodes of {len(graph.active_features)} active, {graph.n_logits} logit nodes "
          f"({', '.join(repr(t) for t in graph.logit_strings[:5])}); replacement score {s['replacement']:.3f}, "
          f"completeness {s['completeness']:.3f}; {graph.meta['seconds']:.1f} s")
    if store is not None:
        with store.run(f"interp circuit graph --model {args.model} --prompt {args.prompt!r}",
                       {**meta, "prompt": args.prompt, "config": graph.meta["config"]}, seed=0) as run:
            key = save_attribution_graph(store, graph, run)
        print(f"stored as {key} (run {run})")
    if args.output:
        _write_json(args.output, _export_json(graph, args))
    return 0


def _split_targets(spec: str) -> list[str]:
    """Several targets separated by ';' (a ';' inside quotes is text)."""
    parts, cur, quote = [], "", None
    for ch in spec:
        if ch in "\"'" and quote in (None, ch):
            quote = None if quote else ch
        if ch == ";" and quote is None:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return [p.strip() for p in parts + [cur] if p.strip()]


def _export_json(graph, args) -> dict:
    from interp.methods.circuits.attribution_graph import AttributionGraph
    from interp.methods.circuits.graph_files import to_circuit_tracer, to_interp

    if not isinstance(graph, AttributionGraph):
        if args.format == "circuit-tracer":
            raise ValueError("a path-search circuit (interp circuit build) has no circuit-tracer form; build an "
                             "attribution graph with interp circuit graph, or export with --format interp")
        return graph.to_json()
    if args.format == "circuit-tracer":
        return to_circuit_tracer(graph, slug=args.slug)
    return to_interp(graph)


def _write_json(path, data) -> None:
    Path(path).write_text(json.dumps(data, indent=1))
    print(f"graph JSON written to {path}")


def _print(graph) -> None:
    s = graph.meta["stats"]
    t = graph.meta["target"]
    print(f"target {t['label']} = {t['value']:.4f}; {len(graph.nodes)} nodes, {len(graph.edges)} edges "
          f"(of {s['n_nodes_full']} / {s['n_edges_full']}), covering {s['covered_share']:.1%} of |influence|")
    print(f"error share: direct {s['direct_error_share']:.1%}, in the kept graph {s['error_share']:.1%}")
    for n in sorted(graph.nodes, key=lambda n: -abs(n.influence))[:12]:
        print(f"  {n.label:<28} {n.type:<9} influence {n.influence:+.4f}")


def _outputs(args, graph) -> None:
    if args.output:
        Path(args.output).write_text(json.dumps(graph.to_json(), indent=1))
        print(f"graph JSON written to {args.output}")
    if args.html:
        from interp.viz.circuits import circuit_figure

        circuit_figure(graph).write_html(args.html, include_plotlyjs="cdn")
        print(f"figure written to {args.html}")


def _export(args) -> int:
    from interp.methods.circuits.store import ATTRIBUTION_NAME, load_attribution_graph, load_graph, stored_graph_keys

    store = open_store(args)
    if not args.item:
        raise ValueError(f"interp circuit export needs a graph KEY; stored: {', '.join(stored_graph_keys(store)) or 'none'}")
    if not store.read("results", where={"name": ATTRIBUTION_NAME, "key": args.item}, columns=["key"]).empty:
        graph = load_attribution_graph(store, args.item)
        if args.html:
            raise ValueError("--html draws path-search circuits (interp circuit build); not attribution graphs")
    else:
        try:
            graph = load_graph(store, args.item)
        except KeyError:
            raise KeyError(f"no graph {args.item!r} in store {store.root}; stored: "
                           f"{', '.join(stored_graph_keys(store)) or 'none'}") from None
    data = _export_json(graph, args)
    if args.html:
        _outputs(argparse_copy(args, output=None), graph)
    if args.output:
        _write_json(args.output, data)
    elif not args.html:
        json.dump(data, sys.stdout, indent=1)
        print()
    return 0


def argparse_copy(args, **changes):
    import argparse

    return argparse.Namespace(**{**vars(args), **changes})


def _import(args) -> int:
    from interp.methods.circuits.attribution_graph import AttributionGraph
    from interp.methods.circuits.graph_files import read_graph_file
    from interp.methods.circuits.store import graph_safe_key, save_attribution_graph, save_graph

    if not args.item or not Path(args.item).is_file():
        raise FileNotFoundError(f"interp circuit import needs a graph JSON file, got {args.item!r}")
    try:
        graph = read_graph_file(Path(args.item).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:  # json.JSONDecodeError is a ValueError
        raise ValueError(f"{args.item}: {exc}") from None
    store = open_store(args)
    if isinstance(graph, AttributionGraph):
        with store.run(f"interp circuit import {args.item}", {"file": str(args.item)}) as run:
            key = save_attribution_graph(store, graph, run)
        n_edges = graph.kept_edges.shape[1] if graph.kept_edges is not None else int((graph.adjacency != 0).sum())
        print(f"imported {int(graph.kept_nodes.sum()) if graph.kept_nodes is not None else graph.n_nodes} nodes, "
              f"{n_edges} edges as {key}")
        return 0
    graph_safe_key(graph)  # refused before a run is opened
    with store.run(f"interp circuit import {args.item}", {"file": str(args.item)}) as run:
        key = save_graph(store, graph, run)
    print(f"imported {len(graph.nodes)} nodes, {len(graph.edges)} edges as {key}")
    return 0


def _connections(args) -> int:
    from interp.methods.circuits.connections import top_connections
    from interp.methods.circuits.store import save_connections
    from interp.methods.circuits.transcoders import load_transcoders
    from interp.models import load_model

    store = open_store(args)
    names = [n for n in (args.dicts or "").split(",") if n]
    if len(names) < 2:
        raise ValueError("interp circuit connections needs --dicts with two or more store transcoders")
    adapter = load_model(args.model, device=args.device)
    transcoders, labels = load_transcoders(store, names, adapter)
    transcoders = _on_device(transcoders, adapter)
    layers = sorted(transcoders)
    with store.run(f"interp circuit connections --dicts {args.dicts}", {"k": args.k, "dicts": names}) as run:
        for up, down in zip(layers, layers[1:]):
            table = top_connections(transcoders[up], transcoders[down], args.k, adapter.info.norm)
            save_connections(store, labels[up], labels[down], table, run)
            print(f"{labels[up]} -> {labels[down]}: top-{args.k} connections stored")
    return 0


def _on_device(transcoders: dict, adapter) -> dict:
    """The transcoders where the model runs (they load on the CPU; the trace multiplies them with its activations)."""
    return {layer: tc.to(adapter.device) for layer, tc in transcoders.items()}


_RUNS_THE_MODEL = ("build", "graph", "connections")
"""The actions --device applies to (import-/export-transcoders read only the model's shape, on the CPU)."""


def _run(args) -> int:
    from interp.cli.backends import device_option
    from interp.cli.circuit_transcoders import export_transcoders, import_transcoders

    if args.action in _RUNS_THE_MODEL:
        args.device = device_option(args)  # refused before any work
    return {"build": _build, "graph": _graph, "export": _export, "import": _import, "connections": _connections,
            "import-transcoders": import_transcoders, "export-transcoders": export_transcoders}[args.action](args)
