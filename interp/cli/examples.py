"""``interp examples``: corpus top-k and quantile examples and activation histograms for every
MLP neuron (and every stored dictionary latent and ObsProp vector) of a model, into the store (resumable).

    interp examples --model smollm2-135m [--tokens 8192] [--layers 0,5-7] [--no-dictionaries] [--no-obsprop]
    interp examples --model smollm2-135m --n-top 20 --n-bins 60 --force
    interp examples --model smollm2-135m --layers-per-unit 10 --backend ray [--address HOST:PORT]
"""

from __future__ import annotations

from interp.cli.backends import add_job_arguments, job_options
from interp.cli.options import add_config_arguments, config_from_args


def register(subparsers) -> None:
    from interp.jobs.examples import ExamplesJobConfig
    from interp.jobs.neuron_map import parse_layers
    from interp.methods.examples.stats import ExampleConfig

    p = subparsers.add_parser("examples", help="corpus examples and activation histograms for every feature",
                              description=__doc__.split("\n\n", 1)[0])
    p.add_argument("--model", required=True, help="model alias, hub id or local folder")
    add_config_arguments(p, ExamplesJobConfig, types={"layers": parse_layers})
    add_config_arguments(p, ExampleConfig)
    p.add_argument("--force", action="store_true", help="recompute units already in the store")
    add_job_arguments(p, unit="model pass over a group of layers")
    p.add_argument("--store", default=None, metavar="PATH",
                   help="store root (default: <data root>/store; see --home / INTERP_HOME)")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from interp.jobs.examples import ExamplesJobConfig, collect_examples
    from interp.methods.examples.stats import ExampleConfig
    from interp.paths import store_dir
    from interp.store import Store

    jobs = job_options(args)
    config = config_from_args(ExamplesJobConfig, args)
    examples = config_from_args(ExampleConfig, args)
    store = Store(args.store if args.store else store_dir())
    s = collect_examples(store, args.model, config, examples, force=args.force, **jobs)
    print(f"{len(s.done)} units computed, {len(s.skipped)} already in the store; {s.n_examples:,} example rows over "
          f"{s.n_tokens:,} tokens in {s.passes} model pass(es)")
    print(f"run {s.run_id} in {s.seconds:.1f} s (forward {s.forward_seconds:.1f} s)")
    return 0
