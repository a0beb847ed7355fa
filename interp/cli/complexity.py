"""``interp complexity``: V-information complexity of features, stored with provenance.

    interp complexity --model smollm2-135m --features neurons:layers=2,8,15 --tokens 40000
    interp complexity --features "neurons:3:0-99" --tokens 20000 --no-flow
    interp complexity --features dict:tc-l8 --importance-windows 0
    interp complexity --features "store:kind='neuron' AND site='blocks.4.mlp.hook_post'"
    interp complexity --features neurons:layers=0-29 --shard-size 1536 --backend ray [--address HOST:PORT]

QUERY forms (join several with ';'): neurons:layers=3,5 | neurons:3:0-99 | dict:NAME[:0-99] |
store:WHERE (SQL condition on the features table) | direction:SITE:FILE. See
`interp.methods.complexity.selection`.
"""

from __future__ import annotations

import json
from pathlib import Path

from interp.cli.backends import add_job_arguments, job_options
from interp.cli.options import add_config_arguments, config_from_args


def register(subparsers) -> None:
    from interp.jobs.complexity import RunConfig

    p = subparsers.add_parser("complexity", help="V-information complexity of features (K, curves, importance)",
                              description=__doc__.split("\n\n", 1)[0])
    p.add_argument("--model", default="smollm2-135m", help="model alias, hub id or local directory")
    p.add_argument("--features", required=True, metavar="QUERY",
                   help="neurons:layers=3,5 | neurons:3:0-99 | dict:NAME[:0-99] | store:WHERE | direction:SITE:FILE")
    add_config_arguments(p, RunConfig, only=("n_tokens", "corpus", "ctx_len", "importance_windows", "flow", "seed"),
                         rename={"n_tokens": "--tokens"})  # flow: --flow / --no-flow
    p.add_argument("--positions", type=int, default=RunConfig.positions_per_window,
                   help=f"positions sampled per window (0: all; default {RunConfig.positions_per_window})")
    p.add_argument("--alphas", default=None, help="comma-separated ridge strengths per token (default 1e-5..1)")
    p.add_argument("--store", default=None, metavar="PATH", help="store root (default: <data root>/store)")
    p.add_argument("--no-store", action="store_true", help="compute and print only")
    p.add_argument("--html", default=None, metavar="DIR", help="also write the figures as HTML files here")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--shard-size", type=int, default=None, metavar="N",
                   help="features per unit of work (neurons:/dict: queries; default: one unit); each shard "
                        "collects its activations once, and a rerun computes only the missing shards")
    add_job_arguments(p, unit="feature shard")
    p.set_defaults(func=_run)


def _config(args):
    from interp.methods.complexity.vinfo import ComplexityConfig
    from interp.jobs.complexity import RunConfig

    alphas = tuple(float(a) for a in args.alphas.split(",")) if args.alphas else ComplexityConfig.alphas
    cfg = ComplexityConfig(alphas=alphas, seed=args.seed)
    return config_from_args(RunConfig, args, positions_per_window=args.positions or None, complexity=cfg)


def _print(summary: dict, run_id: str | None) -> None:
    print(f"features {summary['n_features']} ({summary['n_constant']} constant), samples {summary['n_samples']}, "
          f"timings {summary['timings']}")
    print("K quantiles " + " ".join(f"{q}:{v:.3f}" for q, v in summary["K_quantiles"].items()))
    for site, s in summary["per_site"].items():
        print(f"  {site:<28} n={s['n']:<6} K mean {s['K_mean']:.3f} median {s['K_median']:.3f} "
              f"first decodable layer (median) {s['first_layer_median']:.1f}")
    if "rank_correlation" in summary:
        rc = summary["rank_correlation"]
        print(f"Spearman rho(K, importance) = {rc['rho']:.3f} (p={rc['pvalue']:.2g}, n={rc['n']})")
    for name in ("simplest", "most_complex"):
        print(name.replace("_", " "))
        for ex in summary[name]:
            print(f"  {ex['site']}[{ex['index']}] K={ex['K']:.3f} first={ex['first_decodable_layer']} "
                  f"top tokens {ex['top_tokens']}")
    if run_id:
        print(f"stored as run {run_id}")


def _run(args) -> int:
    from interp.jobs.complexity import run_complexity
    from interp.paths import store_dir
    from interp.store import Store

    config = _config(args)
    store = None if args.no_store else Store(args.store if args.store else store_dir())
    command = f"interp complexity --model {args.model} --features {args.features} --tokens {args.n_tokens}"
    jobs = job_options(args)
    if store is None and jobs["backend"] != "local":
        raise ValueError(f"--backend {jobs['backend']} writes each shard into the store: drop --no-store")
    run = run_complexity(args.model, args.features, config, store=store, progress=True, command=command,
                         shard_size=args.shard_size, **jobs)
    if args.json:
        print(json.dumps({**run.summary, "run_id": run.run_id}, indent=2))
    else:
        _print(run.summary, run.run_id)
    if args.html:
        from interp.viz.complexity import all_figures

        out = Path(args.html)
        out.mkdir(parents=True, exist_ok=True)
        for name, fig in all_figures(run).items():
            fig.write_html(out / f"complexity_{name}.html", include_plotlyjs="cdn")
        print(f"figures written to {out}")
    return 0
