"""The ``interp`` command line.

Each module in this package that defines ``register(subparsers)`` adds its subcommands;
modules are discovered, so adding a command never edits this file. A registered command
sets ``func`` (taking the parsed ``argparse.Namespace`` and returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every discovered subcommand."""
    parser = argparse.ArgumentParser(
        prog="interp",
        description="interp - a mechanistic-interpretability workbench for transformer LMs",
    )
    parser.add_argument("--home", default=None, metavar="PATH",
                        help="data root (default: $INTERP_HOME or ./data); every subcommand honours it")
    parser.add_argument("--store", dest="root_store", default=None, metavar="PATH",
                        help="store root for every subcommand (default: <data root>/store); "
                             "a subcommand's own --store wins")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name in _NOT_COMMANDS:  # __main__ runs the CLI when imported
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "register"):
            module.register(subparsers)
    return parser


_NOT_COMMANDS = ("options", "errors")


def _apply_roots(args: argparse.Namespace) -> None:
    """The shared --home/--store: checked, then honoured by every subcommand."""
    for flag, value in (("--home", args.home), ("--store", args.root_store)):
        if value is not None and not str(value).strip():
            raise ValueError(f"{flag} {value!r} is empty: give a directory path (or leave {flag} out)")
    if args.home:
        os.environ["INTERP_HOME"] = args.home
    if args.root_store and getattr(args, "store", None) is None:
        args.store = args.root_store


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``interp`` console script."""
    from interp.cli.errors import describe_os_error

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _apply_roots(args)
        if not getattr(args, "func", None):
            parser.print_help()
            return 0
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interp: interrupted (any open run is marked cancelled)", file=sys.stderr)
        return 130
    except OSError as exc:
        print(f"interp: error: {describe_os_error(exc)}", file=sys.stderr)
        return 2 if exc.errno is None else 1  # interp's own FileNotFoundError(message) is a usage error
    except (ValueError, KeyError) as exc:
        # Errors raised by interp itself carry an actionable message; show it without a traceback.
        message = exc.args[0] if exc.args else repr(exc)
        print(f"interp: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
