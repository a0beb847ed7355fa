"""``interp faithfulness``: the faithfulness benchmark of ReAGent against its baselines.

    interp faithfulness --model smollm2-135m --n 100 --tag default
    interp faithfulness --model smollm2-135m --n 110 --backend ray --address HOST:PORT
    interp faithfulness --prompts analogies --ratio 0.1 --steps 5000 --probes 5 --n 30 --tag paper-analogies

Per-prompt records go to the store as prompt shards finish, so an interrupted benchmark run
again with the same --tag computes only the missing prompts; the summary (per-method means
with bootstrap intervals, ReAGent minus each method per prompt, a figure) is written at the
end. Flags map one to one onto `interp.jobs.faithfulness_benchmark.BenchmarkConfig`.
"""

from __future__ import annotations

from interp.cli.backends import add_job_arguments, job_options
from interp.cli.options import add_config_arguments, config_from_args


def register(subparsers) -> None:
    from interp.jobs.faithfulness_benchmark import BenchmarkConfig

    p = subparsers.add_parser("faithfulness", help="faithfulness benchmark: ReAGent vs baselines (Soft-NS/Soft-NC)",
                              description=__doc__.split("\n\n", 1)[0])
    p.add_argument("--model", default="smollm2-135m", help="model alias, hub id or local directory")
    add_config_arguments(p, BenchmarkConfig, choices={"prompts": ("imdb", "analogies"),
                                                      "convention": ("reagent", "interp")},
                         types={"methods": lambda text: tuple(m.strip() for m in text.split(",") if m.strip())})
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--store", default=None, metavar="PATH", help="store root (default: <data root>/store)")
    add_job_arguments(p, unit="prompt shard")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from interp.jobs.faithfulness_benchmark import BenchmarkConfig, run_benchmark
    from interp.paths import store_dir
    from interp.store import Store

    config = config_from_args(BenchmarkConfig, args)
    jobs = job_options(args)
    table, paired = run_benchmark(Store(args.store or store_dir()), args.model, config, **jobs)
    if args.format == "json":
        print(table.to_json(orient="records"))
        return 0
    print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    print("\nReAGent minus each method, per prompt (95% bootstrap interval):")
    print(paired.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    return 0
