"""Table files on disk: turning user rows into Arrow, the partition layout, latest-wins SQL.

Layout of one table (see README.md)::

    tables/<table>/model=<url-quoted model>/kind=<kind>/part-<write_id>[-m|-c].parquet

A plain ``part-<write_id>.parquet`` is a complete single-partition write. A write that
spans several partitions names its files ``-m`` ("multi") and becomes visible only once
``commits/<write_id>`` exists, so it is all-or-nothing too. ``-c`` files come from
`compact` and hold rows of many earlier writes, keeping their original ``_write_id``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from interp.features import FeatureId, FeatureKind
from interp.store.files import (StoreError, atomic_write, atomic_write_bytes, encode_partition_value, is_temp_name,
                                validate_name)
from interp.store.schema import HIDDEN, ROW, WRITE_ID, TableSpec, full_schema

COMMITS_DIR = "commits"
TABLES_DIR = "tables"
_ENDS = {"top", "bottom"}


# ----------------------------------------------------------------------------- conversion
def to_arrow(spec: TableSpec, data, run_id: str) -> pa.Table:
    """Validate `data` (DataFrame, Arrow table, records or dict of columns) against `spec`."""
    columns = _columns(data)
    bad = [c for c in columns if c.startswith("_") or (not spec.extensible and c not in spec.schema.names)]
    if bad:
        valid = ", ".join(spec.schema.names)
        raise StoreError(f"table {spec.name!r} has no column(s) {bad}; valid columns: {valid}")
    missing = [c for c in spec.required if c not in columns]
    if missing:
        raise StoreError(f"table {spec.name!r} needs column(s) {missing}; required: {list(spec.required)}")
    n = len(next(iter(columns.values()))) if columns else 0
    arrays, fields = [], []
    for field in spec.schema:
        if field.name == "run_id":
            arrays.append(_run_id_column(columns.get("run_id"), run_id, n))
        elif field.name in columns:
            arrays.append(_array(spec, field, columns[field.name]))
        elif field.name == "source":
            arrays.append(constant("", n))
        else:
            arrays.append(pa.nulls(n, field.type))
        field = field.with_type(arrays[-1].type)  # a string field may hold a dictionary of strings
        fields.append(field.with_nullable(True) if field.name == "source" else field)
    for name in columns:
        if name not in spec.schema.names:  # extra columns of an extensible table
            arrays.append(_array(spec, pa.field(name, pa.null()), columns[name]))
            fields.append(pa.field(name, arrays[-1].type))
    table = pa.Table.from_arrays(arrays, schema=pa.schema(fields))
    if "source" in table.column_names and table["source"].null_count:
        table = table.set_column(table.schema.get_field_index("source"), spec.schema.field("source"),
                                 pc.fill_null(table["source"], ""))
    for field in spec.schema:
        if not field.nullable and table[field.name].null_count:
            raise StoreError(f"table {spec.name!r}: column {field.name!r} has missing values; it is required")
    _check_values(spec, table)
    return table


def _columns(data) -> dict[str, object]:
    if isinstance(data, pa.Table):
        return {name: data[name] for name in data.column_names}
    if isinstance(data, pd.DataFrame):
        frame = data
    elif isinstance(data, Mapping) or isinstance(data, Iterable):
        frame = pd.DataFrame(list(data) if not isinstance(data, Mapping) else data)
    else:
        raise StoreError(f"cannot write {type(data).__name__}; pass a DataFrame, Arrow table or list of dicts")
    if len(set(frame.columns)) != len(frame.columns):
        raise StoreError(f"duplicate column names in {list(frame.columns)}")
    return {str(name): frame[name] for name in frame.columns}


def _array(spec: TableSpec, field: pa.Field, values) -> pa.Array:
    try:
        if isinstance(values, (pa.Array, pa.ChunkedArray)):
            if pa.types.is_dictionary(values.type) and values.type.value_type == field.type:
                arr = values  # kept as it is: Parquet writes it without hashing every value
            else:
                arr = values if field.type == pa.null() else values.cast(field.type)
            return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
        if field.name in spec.json_cols:
            values = [_json(v) for v in values]
        typ = None if field.type == pa.null() else field.type
        return pa.array(values, type=typ, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError) as exc:
        raise StoreError(f"table {spec.name!r}: column {field.name!r} does not fit type {field.type}: {exc}") from None


def _json(value) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def _run_id_column(given, run_id: str, n: int) -> pa.Array:
    validate_name(run_id, "run_id")
    if given is not None:
        others = {v for v in pc.unique(pa.array(given, pa.string(), from_pandas=True)).to_pylist() if v is not None}
        if others - {run_id}:
            raise StoreError(f"rows carry run_id {sorted(others)} but the write is for run_id {run_id!r}")
    return constant(run_id, n)


def _check_values(spec: TableSpec, table: pa.Table) -> None:
    names = table.column_names
    if "model" in names:
        for model in pc.unique(table["model"]).to_pylist():
            validate_name(model, "model name", allow_slash=True)
    if "kind" in names:
        for kind in pc.unique(table["kind"]).to_pylist():
            FeatureKind.parse(kind)
    if "site" in names and "index" in names and table.num_rows:
        key = ["model", "site", "kind"]
        if all(_single_valued(table[c]) for c in key):  # one feature group
            combos = table.select(key).slice(0, 1)
        else:
            combos = _decoded(table.select(key)).group_by(key).aggregate([])
        for rec in combos.to_pylist():
            FeatureId(rec["model"], rec["site"], rec["kind"], 0)  # validates the hook name
        if pc.min(table["index"]).as_py() < 0:
            raise StoreError(f"table {spec.name!r}: feature index must be >= 0")
    if "end" in names:
        ends = set(pc.unique(table["end"]).to_pylist()) - _ENDS
        if ends:
            raise StoreError(f"table {spec.name!r}: end must be 'top' or 'bottom', got {sorted(ends)}")


# ----------------------------------------------------------------------------- files
def table_dir(root: Path, spec: TableSpec) -> Path:
    return root / TABLES_DIR / spec.name


def write_files(root: Path, spec: TableSpec, table: pa.Table, write_id: str) -> list[Path]:
    """Write `table` as one new file per partition; all-or-nothing for readers."""
    write_column = constant(write_id, table.num_rows)
    table = table.append_column(pa.field(WRITE_ID, write_column.type, False), write_column)
    table = table.append_column(pa.field(ROW, pa.int64(), False), pa.array(np.arange(table.num_rows, dtype=np.int64)))
    groups = _split(table, spec.partition)
    suffix = "-m" if len(groups) > 1 else ""
    paths = []
    for values, part in groups:
        directory = table_dir(root, spec).joinpath(
            *(f"{col}={encode_partition_value(v)}" for col, v in zip(spec.partition, values))
        )
        path = directory / f"part-{write_id}{suffix}.parquet"
        paths.append(atomic_write(path, lambda tmp, part=part: _write_parquet(part, tmp, spec)))
    if suffix:  # the commit marker makes every part visible at once
        atomic_write_bytes(root / COMMITS_DIR / write_id, b"")
    return paths


def _write_parquet(table: pa.Table, path: Path, spec: TableSpec) -> None:
    # Dictionary-encode the string columns only: for floats and ids a dictionary costs time
    # and space (half the write time and +50% bytes on a neuron map's token rows). Statistics
    # only where reads filter (key, partition and hidden columns: equality filters are pushed
    # down to them); for values such as logits or token strings they cost a sixth of a write.
    # No Arrow schema blob: dictionary columns read back as the plain strings they stand for.
    # The row numbers (0, 1, 2, ...) are delta-encoded: a few hundred bytes, a third of the time.
    strings = [f.name for f in table.schema if _is_string(f.type)]
    filtered = set(spec.key) | set(spec.partition) | set(HIDDEN)
    pq.write_table(table, path, compression="zstd", use_dictionary=strings, store_schema=False,
                   write_statistics=[c for c in table.column_names if c in filtered],
                   column_encoding={ROW: "DELTA_BINARY_PACKED"})


def _is_string(typ: pa.DataType) -> bool:
    if pa.types.is_dictionary(typ):
        typ = typ.value_type
    return pa.types.is_string(typ) or pa.types.is_large_string(typ)


def _split(table: pa.Table, cols: tuple[str, ...]) -> list[tuple[tuple, pa.Table]]:
    """(partition values, rows) per partition, in order of first appearance."""
    if not cols:
        return [((), table)]
    if all(_single_valued(table[c]) for c in cols):  # the usual case: one partition
        return [(tuple(table[c][0].as_py() for c in cols), table)]
    keyed = _decoded(table.select(list(cols))).append_column("_i", pa.array(np.arange(table.num_rows, dtype=np.int64)))
    groups = keyed.group_by(list(cols), use_threads=False).aggregate([("_i", "list")])
    keys = zip(*(groups[c].to_pylist() for c in cols))
    return [(key, table.take(idx.values)) for key, idx in zip(keys, groups["_i_list"])]


def _single_valued(column: pa.ChunkedArray) -> bool:
    """Whether a column holds one value (nulls count as a value)."""
    if pa.types.is_dictionary(column.type):
        column = pc.unique(column).cast(column.type.value_type)  # the distinct values the indices use
    return pc.count_distinct(column, mode="all").as_py() == 1


def _decoded(table: pa.Table) -> pa.Table:
    """`table` with dictionary columns as plain columns of their values (for grouping)."""
    for i, field in enumerate(table.schema):
        if pa.types.is_dictionary(field.type):
            table = table.set_column(i, field.with_type(field.type.value_type), table[i].cast(field.type.value_type))
    return table


def constant(value: str, n: int) -> pa.DictionaryArray:
    """A string column holding `value` n times, as a one-entry dictionary: built without a
    Python list, and written to Parquet without hashing n strings (a write's constant columns
    took half of its encoding time as plain strings)."""
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int8)), pa.array([value], pa.string()))


def list_files(root: Path, spec: TableSpec, where: Mapping | None = None) -> list[Path]:
    """Final, committed data files of a table, pruned by equality filters on partitions.

    The commit markers are listed *before* the data files: a marker is written only after
    all parts of its write have their final names, so every part of a write whose marker
    this listing saw is found by the glob that follows (listing the files first would let
    a reader see one part of a write, then its marker, and miss the other part).
    """
    committed = committed_ids(root)
    where = where or {}
    pattern = []
    for col in spec.partition:
        value = where.get(col)
        scalar = value is not None and not isinstance(value, (list, tuple, set))
        pattern.append(f"{col}={encode_partition_value(_plain(value))}" if scalar else f"{col}=*")
    files = sorted(table_dir(root, spec).glob("/".join([*pattern, "part-*.parquet"])))
    return [f for f in files if not f.name.endswith("-m.parquet") or write_id_of(f) in committed]


def committed_ids(root: Path) -> set[str]:
    """Write ids that have a commit marker (not the temp files of markers being written)."""
    try:
        return {name for name in os.listdir(root / COMMITS_DIR) if not is_temp_name(name)}
    except FileNotFoundError:
        return set()


def uncommitted_files(root: Path, spec: TableSpec) -> list[Path]:
    committed = committed_ids(root)
    return [f for f in table_dir(root, spec).rglob("part-*-m.parquet") if write_id_of(f) not in committed]


def write_id_of(path: Path) -> str:
    # part-<20 digits>-<32 hex>[-m|-c].parquet
    return path.name[len("part-"):].removesuffix(".parquet").removesuffix("-m").removesuffix("-c")


def _plain(value):
    return value.value if isinstance(value, FeatureKind) else value


# ----------------------------------------------------------------------------- SQL
def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def source_sql(spec: TableSpec, files: list[Path], relations: list[str] | None = None) -> str:
    """A relation over the table's files; `_empty_<table>` must be registered (full schema).

    `relations`: names of relations already holding the files' rows (used instead of
    ``read_parquet``, by the read-only SQL connection, which may not open files itself).
    """
    empty = f"_empty_{spec.name}"
    if relations is not None:
        return "(" + " UNION ALL BY NAME ".join(f"SELECT * FROM {r}" for r in [empty, *relations]) + ")"
    if not files:
        return empty
    paths = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
    # hive_partitioning=false: the files carry model/kind themselves, and hive type
    # inference would turn a model named "1234" into an integer.
    return (f"(SELECT * FROM {empty} UNION ALL BY NAME SELECT * FROM read_parquet([{paths}], "
            f"union_by_name=true, hive_partitioning=false))")


def latest_sql(spec: TableSpec, files: list[Path], where: Mapping | None = None,
               columns: list[str] | None = None, latest: bool = True, hidden: bool = False,
               relations: list[str] | None = None) -> tuple[str, list]:
    """SQL (and parameters) for the latest-wins rows of a table, filtered and ordered."""
    where = {k: _plain(v) for k, v in (where or {}).items()}
    key_where = {k: v for k, v in where.items() if k in spec.key or not latest}
    rest_where = {k: v for k, v in where.items() if k not in key_where}
    inner_clause, params = _where(key_where)
    sql = f"SELECT * FROM {source_sql(spec, files, relations)} {inner_clause}"
    if latest:
        keys = ", ".join(quote_ident(k) for k in spec.key)
        sql += f" QUALIFY {WRITE_ID} = max({WRITE_ID}) OVER (PARTITION BY {keys})"
        if any(f.name.endswith("-c.parquet") for f in files):
            # A reader racing `compact` may see a compacted file and its inputs.
            sql += f" AND row_number() OVER (PARTITION BY {WRITE_ID}, {ROW}) = 1"
    outer_clause, outer_params = _where(rest_where)
    select = ", ".join(quote_ident(c) for c in columns) if columns else (
        "*" if hidden else f"* EXCLUDE ({', '.join(HIDDEN)})")
    order = ", ".join(quote_ident(c.lstrip("-")) + (" DESC" if c.startswith("-") else "")
                      for c in spec.order if not columns or c.lstrip("-") in columns)
    sql = f"SELECT {select} FROM ({sql}) {outer_clause}" + (f" ORDER BY {order}" if order else "")
    return sql, params + outer_params


def _where(filters: Mapping) -> tuple[str, list]:
    parts, params = [], []
    for col, value in filters.items():
        if value is None:
            parts.append(f"{quote_ident(col)} IS NULL")
        elif isinstance(value, (list, tuple, set)):
            values = [_plain(v) for v in value]
            parts.append(f"{quote_ident(col)} IN ({', '.join(['?'] * len(values))})" if values else "FALSE")
            params.extend(values)
        else:
            parts.append(f"{quote_ident(col)} = ?")
            params.append(value)
    return ("WHERE " + " AND ".join(parts) if parts else ""), params


def register_empty(con, spec: TableSpec) -> None:
    con.register(f"_empty_{spec.name}", full_schema(spec.schema).empty_table())
