"""The feature store: DuckDB over Parquet, tensors in safetensors, all under one root.

See README.md in this folder for the layout, the tables and the replace semantics.
"""

from interp.store.files import StoreError
from interp.store.maintenance import CheckReport
from interp.store.reading import StoreWarning
from interp.store.schema import SCHEMA_VERSION, TABLES, TableSpec
from interp.store.store import Store

__all__ = ["Store", "StoreError", "SCHEMA_VERSION", "TABLES", "TableSpec", "CheckReport", "StoreWarning"]
