"""Read-only SQL over the store.

A query may read the store's tables and nothing else: it can neither modify a file nor
touch one outside the store's data. Two independent locks enforce this:

1. a statement whitelist, checked with DuckDB's own parser and tokenizer: exactly one
   statement, which is a SELECT (including WITH, VALUES, FROM-first, DESCRIBE, SHOW,
   SUMMARIZE) or a plain ``EXPLAIN <select>``. COPY, ATTACH, INSTALL, LOAD, SET, PRAGMA,
   CALL, EXPORT, DDL, DML, several statements and ``EXPLAIN ANALYZE`` (which runs its
   inner statement) are refused with one line;
2. the engine itself cannot open files: the tables are views over Arrow datasets that
   pyarrow reads (registered before the lock-down), and then DuckDB's
   ``enable_external_access`` is switched off with no allowed paths or directories, no
   temp directory (no spilling to disk), no extension auto-loading, and the configuration
   is locked. So ``read_csv``, ``read_text``, ``glob``, ``read_parquet``, ``COPY``,
   ``ATTACH`` or ``INSTALL`` fail with a permission error even if a statement slipped past
   step 1, whatever path they name - the store's own files included.

Views: ``features`` (latest-wins rows) and ``features_all`` (every stored version, with the
hidden ``_write_id``/``_row`` columns), and so on for each table. Files that vanish while a
query runs (a concurrent compact) are re-listed and the query retried; a corrupt file is
quarantined and the query answered from the rest (see `reading`).
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from interp.store.files import StoreError
from interp.store.reading import read_retrying
from interp.store.schema import TABLES
from interp.store.tables import latest_sql, list_files, register_empty, table_dir

_LOCKDOWN = (
    "SET autoinstall_known_extensions = false",
    "SET autoload_known_extensions = false",
    "SET allowed_paths = []",
    "SET allowed_directories = []",
    "SET enable_external_access = false",
    "SET lock_configuration = true",
)
_USER_ERRORS = (duckdb.ParserException, duckdb.BinderException, duckdb.CatalogException,
                duckdb.PermissionException, duckdb.ConversionException, duckdb.OutOfRangeException,
                duckdb.InvalidTypeException, duckdb.NotImplementedException)
_STREAM_RE = re.compile(r"stream registered as '(_files_[A-Za-z_]+_\d+)'")
_ALLOWED_HELP = "allowed: one SELECT (WITH, VALUES, DESCRIBE, SHOW, SUMMARIZE) or EXPLAIN of a SELECT"


def check_readonly(query: str) -> None:
    """Raise `StoreError` unless `query` is exactly one SELECT or plain EXPLAIN of one."""
    if not isinstance(query, str) or not query.strip():
        raise StoreError("empty query; write a SELECT, e.g. SELECT * FROM features LIMIT 10")
    statements = _parse(query)
    if len(statements) != 1:
        raise StoreError(f"store queries take exactly one statement, got {len(statements)}; {_ALLOWED_HELP}")
    try:
        kind = statements[0].type
    except ValueError:  # a statement type this duckdb's Python enum does not name
        kind = query.split()[0].upper()
    if kind == duckdb.StatementType.SELECT:
        return
    if kind == duckdb.StatementType.EXPLAIN:
        inner = _explained(query)
        if inner is not None and [s.type for s in _parse(inner, quiet=True)] == [duckdb.StatementType.SELECT]:
            return
        raise StoreError(f"the store is read-only: only plain EXPLAIN of a SELECT is allowed "
                         f"(not EXPLAIN ANALYZE, options or other statements); {_ALLOWED_HELP}")
    name = getattr(kind, "name", str(kind))
    raise StoreError(f"the store is read-only: {name} statements are not allowed; {_ALLOWED_HELP}. "
                     "Write data with Store.write()")


def _parse(query: str, quiet: bool = False) -> list:
    try:
        return duckdb.extract_statements(query)
    except duckdb.Error as exc:
        if quiet:
            return []
        raise StoreError(f"cannot parse query: {str(exc).splitlines()[0]}") from None


def _explained(query: str) -> str | None:
    """The statement after a leading EXPLAIN keyword; None for EXPLAIN ANALYZE / options."""
    tokens = [(pos, typ) for pos, typ in duckdb.tokenize(query) if typ != duckdb.token_type.comment]
    if len(tokens) < 2 or query[tokens[0][0]:tokens[0][0] + 7].upper() != "EXPLAIN":
        return None
    inner = query[tokens[1][0]:]
    if re.match(r"(ANALY[SZ]E)\b", inner, re.IGNORECASE):
        return None
    return inner


def readonly_connection(root: Path, files: list[Path] | None = None
                        ) -> tuple[duckdb.DuckDBPyConnection, dict[str, list[Path]]]:
    """A locked-down in-memory connection with a view per table (see the module docstring).

    `files`: the data files to serve (default: every committed file). Also returns the
    files behind each registered Arrow dataset, by relation name.
    """
    con = duckdb.connect(":memory:", config={"temp_directory": ""})
    groups: dict[str, list[Path]] = {}
    try:
        for spec in TABLES.values():
            register_empty(con, spec)
            base = table_dir(root, spec)
            mine = list_files(root, spec) if files is None else [f for f in files if base in f.parents]
            relations = []
            for i, (schema, group) in enumerate(_by_schema(mine)):
                name = f"_files_{spec.name}_{i}"
                con.register(name, ds.dataset([str(f) for f in group], schema=schema, format="parquet"))
                relations.append(name)
                groups[name] = group
            latest, _ = latest_sql(spec, mine, relations=relations)
            raw, _ = latest_sql(spec, mine, latest=False, hidden=True, relations=relations)
            con.execute(f"CREATE VIEW {spec.name} AS {latest}")
            con.execute(f"CREATE VIEW {spec.name}_all AS {raw}")
        for statement in _LOCKDOWN:
            con.execute(statement)
    except BaseException:
        con.close()
        raise
    return con, groups


def _by_schema(files: list[Path]) -> list[tuple[object, list[Path]]]:
    """Files grouped by their Arrow schema (one dataset each; DuckDB unions them by name)."""
    groups: dict[object, list[Path]] = {}
    for path in files:
        groups.setdefault(pq.read_schema(path).remove_metadata(), []).append(path)
    return list(groups.items())


def run_query(root: Path, query: str) -> pd.DataFrame:
    """Run one read-only query over the store and return a DataFrame."""
    check_readonly(query)
    groups: dict[str, list[Path]] = {}

    def all_files() -> list[Path]:
        return [f for spec in TABLES.values() for f in list_files(root, spec)]

    def attempt(files: list[Path]) -> pd.DataFrame:
        con, found = readonly_connection(root, files)
        groups.clear()
        groups.update(found)
        try:
            return con.execute(query).df()
        except _USER_ERRORS as exc:
            raise _query_error(exc) from None
        finally:
            con.close()

    def suspects(exc: Exception, files: list[Path]) -> list[Path]:
        named = _STREAM_RE.findall(str(exc))
        return [f for name in named for f in groups.get(name, [])] or [f for f in files if str(f) in str(exc)]

    return read_retrying(root, all_files, attempt, suspects=suspects, on_error=_query_error)


def _query_error(exc: Exception) -> StoreError:
    tables = ", ".join(TABLES)
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return StoreError(f"query failed: {first} (tables: {tables}; each also as <table>_all)")
