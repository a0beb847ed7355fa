"""``interp dashboards``: feature dashboards (contexts, quantile samples, logit tables) of stored
dictionaries, into the store (resumable: a rerun computes only the dictionaries not yet done).

    interp dashboards --model smollm2-135m --dictionary smollm2-135m/L15-transcoder-topk-k16-x4-80k
    interp dashboards --model smollm2-135m --tokens 16384 --n-top 20        # every stored dictionary
    interp dashboards --model smollm2-135m --backend ray [--address HOST:PORT] [--device cuda]

One job unit per dictionary (`interp.jobs.dashboards`); flags map one to one onto
`DashboardsJobConfig` and `DashboardConfig`.
"""

from __future__ import annotations

from interp.cli.backends import add_job_arguments, job_options
from interp.cli.options import add_config_arguments, config_from_args


def register(subparsers) -> None:
    from interp.dictionaries.dashboards import DashboardConfig
    from interp.jobs.dashboards import DashboardsJobConfig

    p = subparsers.add_parser("dashboards", help="feature dashboards of stored dictionaries (resumable job)",
                              description=__doc__.split("\n\n", 1)[0])
    p.add_argument("--model", default="smollm2-135m", help="model alias, hub id or local directory")
    p.add_argument("--dictionary", nargs="+", default=None, metavar="NAME",
                   help="stored dictionary names (default: every dictionary of the model)")
    add_config_arguments(p, DashboardsJobConfig)
    # --n-tokens would read like --tokens (the corpus budget); these are the logit tables' rows.
    add_config_arguments(p, DashboardConfig, rename={"n_tokens": "--logit-tokens"})
    p.add_argument("--force", action="store_true", help="recompute dictionaries whose dashboards are stored")
    add_job_arguments(p, unit="dictionary")
    p.add_argument("--store", default=None, metavar="PATH",
                   help="store root (default: <data root>/store; see --home / INTERP_HOME)")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from interp.dictionaries.dashboards import DashboardConfig
    from interp.jobs.dashboards import DashboardsJobConfig, run_dashboards
    from interp.paths import store_dir
    from interp.store import Store

    jobs = job_options(args)
    config = config_from_args(DashboardsJobConfig, args)
    dashboard = config_from_args(DashboardConfig, args)
    store = Store(args.store if args.store else store_dir())
    s = run_dashboards(store, args.model, args.dictionary, config, dashboard, force=args.force, **jobs)
    print(f"{len(s.done)} dictionaries computed, {len(s.skipped)} already in the store; {s.n_latents:,} latents, "
          f"{s.n_examples:,} example rows over {s.n_tokens:,} held-out tokens")
    print(f"run {s.run_id} in {s.seconds:.1f} s")
    return 0
