"""``interp store``: inspect and query the feature store.

    interp store info
    interp store query "SELECT kind, count(*) FROM features GROUP BY kind" --format json
    interp store check
"""

from __future__ import annotations

import argparse
import json
import sys

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

    check = sub.add_parser("check", parents=[common], help="read every file; list corrupt ones")
    check.set_defaults(func=_check)


def _open(args):
    # Imported here so `interp --help` does not pay for duckdb/pyarrow.
    from interp.paths import store_dir
    from interp.store import Store

    return Store(args.store if args.store else store_dir())


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
    report = _open(args).check()
    for path, why in report.corrupt:
        print(f"CORRUPT      {path}: {why}")
    for path in report.uncommitted:
        print(f"uncommitted  {path} (crashed multi-partition write; ignored by readers)")
    for path in report.temp_files:
        print(f"temp         {path} (in-progress or crashed write; ignored by readers)")
    state = "ok" if report.ok else f"{len(report.corrupt)} corrupt file(s): delete them and re-run their jobs"
    print(f"checked {report.n_files} files: {state}")
    return 0 if report.ok else 1
