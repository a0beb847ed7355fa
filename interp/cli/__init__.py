"""The ``interp`` command line.

Each module in this package that defines ``register(subparsers)`` adds its subcommands;
modules are discovered, so adding a command never edits this file. A registered command
sets ``func`` (taking the parsed ``argparse.Namespace`` and returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every discovered subcommand."""
    parser = argparse.ArgumentParser(
        prog="interp",
        description="interp - a mechanistic-interpretability workbench for transformer LMs",
    )
    parser.add_argument("--home", default=None, help="data root (default: $INTERP_HOME or ./data)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):  # __main__ runs the CLI when imported
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "register"):
            module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``interp`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    if args.home:
        import os

        os.environ["INTERP_HOME"] = args.home
    try:
        return int(args.func(args) or 0)
    except (ValueError, KeyError, FileNotFoundError) as exc:
        # Errors raised by interp itself carry an actionable message; show it without a traceback.
        message = exc.args[0] if exc.args else repr(exc)
        print(f"interp: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
