"""``interp run``: the main job - build the feature store for a model, then serve the dashboard.

    interp run                                     # the embedded default, steps in this process
    interp run --no-serve --backend ray [--address HOST:PORT]   # one Ray task per step
"""

from __future__ import annotations


def _run(args) -> int:
    import os
    import time

    from interp.cli.backends import device_option, job_options
    from interp.models import load_model
    from interp.jobs.pipeline import Budget, default_steps, run_pipeline
    from interp.store import Store

    jobs = job_options(args)
    steps = default_steps()
    if args.steps:
        wanted = set(args.steps.split(","))
        unknown = wanted - {s.name for s in steps}
        if unknown:
            raise ValueError(f"unknown step(s) {sorted(unknown)}; valid: {', '.join(s.name for s in steps)}")
        steps = [s for s in steps if s.name in wanted]
    start = time.perf_counter()
    store = Store(args.store)
    # Locally the steps share this process's model; Ray workers load their own from the name
    # (the driver still loads it once to record it and name the store's rows).
    adapter = load_model(args.model, device=device_option(args)) if jobs["backend"] == "local" else args.model
    loaded = time.perf_counter() - start
    force = set(args.force.split(",")) if args.force else set()
    report = run_pipeline(store, adapter, steps, Budget(args.scale), force=force, **jobs)
    print(f"\nFeature store for {report.model}: {report.store_root}")
    for name, summary in report.done.items():
        print(f"  computed  {name:<14} {summary} ({report.seconds[name]:.0f} s)")
    for name in report.skipped:
        print(f"  reused    {name}")
    for name, error in report.failed.items():
        print(f"  FAILED    {name:<14} {error}")
    load = os.getloadavg()
    print(f"  step times: {', '.join(f'{n} {s:.0f} s' for n, s in report.seconds.items()) or 'none (all reused)'}; "
          f"model load {loaded:.0f} s; total {time.perf_counter() - start:.0f} s")
    print(f"  machine load average (1/5/15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    if args.no_serve:
        return 1 if report.failed else 0
    from interp.cli.app import serve

    return serve(str(store.root), port=args.port, host=args.host)


def register(subparsers) -> None:
    from interp.cli.backends import add_job_arguments

    parser = subparsers.add_parser("run", help="build the feature store for a model, then serve the dashboard")
    parser.add_argument("--model", default="smollm2-135m", help="alias, local HF directory or hub id")
    parser.add_argument("--store", default=None, help="store root (default: <data root>/store)")
    parser.add_argument("--steps", default=None, help="comma-separated subset of steps to run")
    parser.add_argument("--force", default=None, help="comma-separated steps to recompute, or 'all'")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every budget (e.g. 10 on a GPU)")
    parser.add_argument("--no-serve", action="store_true", help="build the store and exit")
    add_job_arguments(parser, unit="step")
    parser.add_argument("--port", type=int, default=8501)
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default: localhost only)")
    parser.set_defaults(func=_run)
