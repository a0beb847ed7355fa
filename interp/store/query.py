"""Read-only SQL over the store.

`readonly_connection` opens an in-memory DuckDB database and creates one view per table
(``features``: latest-wins rows; ``features_all``: every stored version, with the hidden
``_write_id``/``_row`` columns). Then it locks the connection down twice over:

1. only a single SELECT (which includes WITH, DESCRIBE and SHOW) or EXPLAIN statement is
   accepted, checked with DuckDB's own parser (`extract_statements`), so COPY, CREATE,
   INSERT, ATTACH, DROP, SET, PRAGMA... are refused with a clear message;
2. external access is switched off and only the store's data files may be read, and the
   configuration is locked, so even a SELECT cannot read or write other files.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from interp.store.files import StoreError
from interp.store.maintenance import corrupt_among, read_error
from interp.store.schema import TABLES
from interp.store.tables import latest_sql, list_files, register_empty

_ALLOWED = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}


def readonly_connection(root: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory connection with a view per table that can read only the store's files."""
    con = duckdb.connect(":memory:")
    all_files: list[Path] = []
    for spec in TABLES.values():
        register_empty(con, spec)
        files = list_files(root, spec)
        all_files.extend(files)
        latest, params = latest_sql(spec, files)
        raw, _ = latest_sql(spec, files, latest=False, hidden=True)
        assert not params  # no filters, so the view text is self-contained
        try:  # creating a view reads the files' footers
            con.execute(f"CREATE VIEW {spec.name} AS {latest}")
            con.execute(f"CREATE VIEW {spec.name}_all AS {raw}")
        except duckdb.Error as exc:
            con.close()
            raise read_error(files, exc) from None
    con.execute("SET allowed_paths = ?", [[str(f) for f in all_files]])
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def check_readonly(query: str) -> None:
    """Raise `StoreError` unless `query` is exactly one SELECT/EXPLAIN statement."""
    if not isinstance(query, str) or not query.strip():
        raise StoreError("empty query; write a SELECT, e.g. SELECT * FROM features LIMIT 10")
    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as exc:
        raise StoreError(f"cannot parse query: {exc}") from None
    if len(statements) != 1:
        raise StoreError(f"store queries take exactly one statement, got {len(statements)}")
    kind = statements[0].type
    if kind not in _ALLOWED:
        name = getattr(kind, "name", str(kind))
        raise StoreError(
            f"the store is read-only: {name} statements are not allowed; only SELECT "
            f"(with WITH, DESCRIBE, SHOW) and EXPLAIN. Write data with Store.write()."
        )


def run_query(root: Path, query: str) -> pd.DataFrame:
    """Run one read-only query over the store and return a DataFrame."""
    check_readonly(query)
    con = readonly_connection(root)
    try:
        return con.execute(query).df()
    except duckdb.Error as exc:
        bad = corrupt_among([Path(p) for p in con.execute("SELECT current_setting('allowed_paths')").fetchone()[0]])
        if bad:
            raise read_error([p for p, _ in bad], exc) from None
        tables = ", ".join(TABLES)
        raise StoreError(f"query failed: {exc}\n(tables: {tables}; each also as <table>_all)") from None
    finally:
        con.close()
