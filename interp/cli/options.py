"""Command-line options built from config dataclasses: each default has one source.

1. `config_fields` reads a config dataclass: each field's name, type, default and help
   (the string literal written under the field, as the configs document their fields).
2. `add_config_arguments` adds one ``--option`` per field (``top_k`` -> ``--top-k``, or a
   name from `rename`), typed from the annotation: int/float/str, bool as a
   ``--flag/--no-flag`` pair, ``tuple[...]`` as a comma-separated list; `types` overrides
   the parser of a field (e.g. ``layers`` -> ``parse_layers``). The argparse default is
   the dataclass default, so ``--help`` shows it and nothing else repeats it.
3. `config_from_args` builds the config back from the parsed namespace (fields that were
   skipped keep their defaults unless given in `extra`).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import textwrap
import typing
from typing import Any, Callable, NamedTuple


class ConfigField(NamedTuple):
    """One documented field of a config dataclass."""

    name: str
    type: Any
    default: Any
    help: str


def _field_docs(cls) -> dict[str, str]:
    """The string literal written under each annotated field of `cls` (and its bases)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__[:-1]):
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, nxt in zip(body, body[1:]):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                    and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                    and isinstance(nxt.value.value, str)):
                docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def config_fields(cls) -> list[ConfigField]:
    """Name, resolved type, default and help of every init field of dataclass `cls`."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    hints = typing.get_type_hints(cls)
    docs = _field_docs(cls)
    out = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        help_text = f.metadata.get("help") or docs.get(f.name, "")
        out.append(ConfigField(f.name, hints.get(f.name, str), default, help_text))
    return out


def _strip_optional(tp):
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, getattr(__import__("types"), "UnionType", typing.Union)) \
            and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0] if len(rest) == 1 else tp
    return tp


def _csv_of(item_type: Callable) -> Callable[[str], tuple]:
    def parse(text: str) -> tuple:
        parts = [p.strip() for p in text.split(",") if p.strip()]
        try:
            return tuple(item_type(p) for p in parts)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a comma-separated list of {item_type.__name__}") from None
    parse.__name__ = f"list of {item_type.__name__}"
    return parse


def _parser_for(tp) -> Callable | None:
    """The argparse ``type=`` for annotation `tp` (None for bool, handled as a flag)."""
    tp = _strip_optional(tp)
    if tp is bool:
        return None
    if typing.get_origin(tp) in (tuple, list):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        return _csv_of(args[0] if args else str)
    if tp in (int, float, str):
        return tp
    return str


def option_name(field: str, rename: dict[str, str] | None = None, prefix: str = "") -> str:
    """``top_k`` -> ``--top-k`` (or ``--<prefix>top-k``, or the name `rename` gives)."""
    if rename and field in rename:
        return rename[field]
    return "--" + prefix + field.replace("_", "-")


def add_config_arguments(parser, cls, *, prefix: str = "", skip: tuple[str, ...] = (),
                         only: tuple[str, ...] | None = None, rename: dict[str, str] | None = None,
                         types: dict[str, Callable] | None = None, choices: dict[str, tuple] | None = None,
                         defaults: dict[str, Any] | None = None, dest_prefix: str = "") -> list[str]:
    """Add an option per field of `cls` to `parser`; returns the fields added.

    `rename`: field -> option string (e.g. ``{"n_controls": "--controls"}``); `types`: field ->
    argparse type; `choices`: field -> allowed values; `defaults`: field -> a CLI default that
    differs from the config's (say why in the caller); `dest_prefix`: prefix of the namespace
    attribute (to keep two configs' same-named fields apart).
    """
    added = []
    for f in config_fields(cls):
        if f.name in skip or (only is not None and f.name not in only):
            continue
        default = (defaults or {}).get(f.name, f.default)
        kwargs: dict[str, Any] = {"dest": dest_prefix + f.name, "default": default}
        shown = ",".join(map(str, default)) if isinstance(default, (tuple, list)) else default
        kwargs["help"] = f"{f.help} (default: {shown})" if f.help else f"default: {shown}"
        kwargs["help"] = kwargs["help"].replace("%", "%%")
        if _strip_optional(f.type) is bool and not (types and f.name in types):
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = (types or {}).get(f.name) or _parser_for(f.type)
            if choices and f.name in choices:
                kwargs["choices"] = choices[f.name]
            kwargs["metavar"] = f.name.upper()
        parser.add_argument(option_name(f.name, rename, prefix), **kwargs)
        added.append(f.name)
    return added


def config_from_args(cls, args: argparse.Namespace, *, dest_prefix: str = "", **extra):
    """Build `cls` from the options `add_config_arguments` added (plus `extra` fields)."""
    values = {}
    for f in config_fields(cls):
        dest = dest_prefix + f.name
        if f.name in extra:
            values[f.name] = extra[f.name]
        elif hasattr(args, dest):
            values[f.name] = getattr(args, dest)
    return cls(**values)
