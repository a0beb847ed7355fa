"""``interp store``: inspect and query the feature store.

    interp store info
    interp store query "SELECT kind, count(*) FROM features GROUP BY kind" --format json
    interp store check [--fix]
    interp store compact [--table features]
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings

_FORMATS = ("table", "json", "csv")


def register(subparsers) -> None:
    parser = subparsers.add_parser("store", help="inspect and query the feature store")
    sub = parser.add_subparsers(dest="store_command", metavar="STORE_COMMAND")
    parser.set_defaults(func=lambda args: (parser.print_help(), 0)[1])

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--store", default=None, metavar="PATH",
                        help="store root (default: <data root>/store; see --home / INTERP_HOME)")

    info = sub.add_parser("info", parents=[common], help="tables, row counts, models and recent runs")
    info.add_argument("--json", action="store_true", help="print the summary as JSON")
    info.set_defaults(func=_info)

    query = sub.add_parser("query", parents=[common], help="run one read-only SQL SELECT")
    query.add_argument("sql", help='e.g. "SELECT * FROM features LIMIT 10" (tables: see `store info`)')
    query.add_argument("--format", choices=_FORMATS, default="table", help="output format")
    query.add_argument("--limit", type=int, default=None, help="print at most this many rows")
    query.set_defaults(func=_query)

    check = sub.add_parser("check", parents=[common],
                           help="read every file; list corrupt files, leftovers and runs of killed processes")
    check.add_argument("--fix", action="store_true",
                       help="mark runs of killed processes stale, remove orphaned temp files, quarantine corrupt files")
    check.add_argument("--stale-after", type=float, default=None, metavar="HOURS",
                       help="runs of other hosts (or without a pid) still running after this long are stale "
                            "(default: 168)")
    check.set_defaults(func=_check)

    compact = sub.add_parser("compact", parents=[common],
                             help="merge each partition's files into one; drop old commit markers and orphaned temps")
    compact.add_argument("--table", default=None, help="only this table (default: all)")
    compact.set_defaults(func=_compact)


def _open(args):
    # Imported here so `interp --help` does not pay for duckdb/pyarrow.
    from interp.paths import store_dir
    from interp.store import Store

    _one_line_warnings()
    return Store(args.store if args.store else store_dir())


def _one_line_warnings() -> None:
    """Show store warnings (a quarantined file) as one line on stderr, not a source excerpt."""
    from interp.store import StoreWarning

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"interp: warning: {message}", file=file or sys.stderr)

    warnings.showwarning = show
    warnings.simplefilter("always", StoreWarning)


def _info(args) -> int:
    summary = _open(args).info()
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"store   {summary['root']} (schema version {summary['schema_version']})")
    print(f"models  {', '.join(summary['models']) or '-'}")
    print("tables")
    for name, t in summary["tables"].items():
        print(f"  {name:<20} {t['rows']:>10} rows  {t['files']:>6} files")
    print(f"runs    {summary['n_runs']} (most recent last)")
    for run in summary["recent_runs"]:
        print(f"  {run['run_id']}  {run['status'] or '-':<9} {run['command']}")
    if summary["tensors"]:
        print(f"tensors {', '.join(summary['tensors'])}")
    return 0


def _query(args) -> int:
    frame = _open(args).sql(args.sql)
    if args.limit is not None:
        frame = frame.head(args.limit)
    if args.format == "json":
        print(frame.to_json(orient="records", date_format="iso", default_handler=str))
    elif args.format == "csv":
        frame.to_csv(sys.stdout, index=False)
    else:
        import pandas as pd

        with pd.option_context("display.max_rows", 200, "display.max_columns", 50, "display.width", 200):
            print(frame.to_string(index=False) if len(frame) else f"(no rows) columns: {', '.join(frame.columns)}")
    return 0


def _check(args) -> int:
    from interp.store.health import RUN_STALE_S

    if args.stale_after is not None and not args.stale_after > 0:
        raise ValueError(f"--stale-after must be a positive number of hours, got {args.stale_after}")
    stale_s = RUN_STALE_S if args.stale_after is None else args.stale_after * 3600
    report = _open(args).check(fix=args.fix, stale_after_s=stale_s)
    for path, why in report.corrupt:
        print(f"CORRUPT      {path}: {why}")
    for path in report.uncommitted:
        print(f"uncommitted  {path} (crashed multi-partition write; ignored by readers)")
    orphans = set(report.orphaned)
    for path in report.temp_files:
        state = "orphaned: its writer is gone" if path in orphans else "in-progress write"
        print(f"temp         {path} ({state}; ignored by readers)")
    for run in report.stale_runs:
        print(f"stale run    {run.run_id} {run.command or ''} - still 'running' but {run.reason}")
    for path in report.quarantined:
        print(f"quarantined  {path} (corrupt; not served)")
    for line in report.fixed:
        print(f"fixed        {line}")
    todo = len(report.stale_runs) + len(report.orphaned)
    hint = "; `interp store check --fix` cleans up" if todo and not args.fix else ""
    state = "ok" if report.ok else f"{len(report.corrupt)} corrupt file(s)"
    if not report.ok:
        state += " (moved to the quarantine folder)" if args.fix else ": `--fix` moves them aside; re-run their jobs"
    print(f"checked {report.n_files} files: {state}; {len(report.stale_runs)} stale run(s), "
          f"{len(report.orphaned)} orphaned temp file(s){hint}")
    return 0 if report.ok else 1


def _compact(args) -> int:
    from interp.store import TABLES

    if args.table is not None and args.table not in TABLES:
        raise ValueError(f"unknown store table {args.table!r}; valid tables: {', '.join(TABLES)}")
    store = _open(args)
    before = sum(t["files"] for t in store.info()["tables"].values())
    removed = store.compact(args.table)
    after = sum(t["files"] for t in store.info()["tables"].values())
    print(f"compacted {store.root}: {before} -> {after} data files ({removed} files removed, "
          "including commit markers and orphaned temp files)")
    return 0
