"""The store's tables: one pyarrow schema, replace key and partitioning per table.

Every table row also carries two hidden bookkeeping columns, added by the store:
``_write_id`` (the time-ordered id of the write that produced it, see
`files.new_write_id`) and ``_row`` (its position within that write). Readers never see them.

"Latest wins": rows are grouped by the table's ``key`` columns; within each group only the
rows of the most recent write survive. So re-running a job that rewrites, say, the top
tokens of a feature replaces all of that feature's previous top-token rows for the same
direction and variant, even if the new run wrote fewer ranks. See README.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

SCHEMA_VERSION = 1
"""Bumped whenever a stored table's layout changes incompatibly."""

WRITE_ID = "_write_id"
ROW = "_row"
HIDDEN = (WRITE_ID, ROW)

JSON = pa.string()  # JSON documents are stored as UTF-8 text; dict/list values are dumped on write
TIMESTAMP = pa.timestamp("us", tz="UTC")

IDENTITY = [
    pa.field("model", pa.string(), nullable=False),
    pa.field("site", pa.string(), nullable=False),
    pa.field("kind", pa.string(), nullable=False),
    pa.field("index", pa.int64(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
]
IDENTITY_COLS = ("model", "site", "kind", "index", "source")
RUN_ID = pa.field("run_id", pa.string(), nullable=False)


@dataclass(frozen=True)
class TableSpec:
    """How one table is stored."""

    name: str
    schema: pa.Schema
    """User-visible columns (without the hidden bookkeeping columns)."""
    key: tuple[str, ...]
    """Replace key: a later write replaces every earlier row with the same key values."""
    partition: tuple[str, ...] = ()
    """Columns that name the hive-style directories; always a subset of `key`."""
    order: tuple[str, ...] = ()
    """Sort order of `Store.read` results; a leading ``-`` sorts that column descending."""
    json_cols: tuple[str, ...] = ()
    extensible: bool = False
    """Whether writes may add extra columns (merged across files with union_by_name)."""
    doc: str = ""

    def __post_init__(self) -> None:
        names = set(self.schema.names)
        for col in (*self.key, *self.partition, *(o.lstrip("-") for o in self.order), *self.json_cols):
            if col not in names:
                raise ValueError(f"table {self.name}: column {col!r} is not in its schema")
        if not set(self.partition) <= set(self.key):
            # Pruning directories by a partition filter is only correct before latest-wins
            # resolution if no replace group spans two partitions.
            raise ValueError(f"table {self.name}: partition columns must be part of the key")

    @property
    def required(self) -> tuple[str, ...]:
        """Columns a write must provide (non-nullable ones; `run_id` is filled by the store)."""
        return tuple(f.name for f in self.schema if not f.nullable and f.name not in ("run_id", "source"))

    def empty(self) -> pa.Table:
        """A zero-row table with the full schema, hidden columns included."""
        return full_schema(self.schema).empty_table()


def full_schema(schema: pa.Schema) -> pa.Schema:
    """`schema` plus the hidden bookkeeping columns."""
    return schema.append(pa.field(WRITE_ID, pa.string(), nullable=False)).append(
        pa.field(ROW, pa.int64(), nullable=False)
    )


def _s(*fields: pa.Field) -> pa.Schema:
    return pa.schema(list(fields))


_F = pa.field
_TABLES = [
    TableSpec(
        "models",
        _s(_F("model", pa.string(), False), _F("architecture", JSON), _F("n_layers", pa.int32()),
           _F("d_model", pa.int32()), _F("d_mlp", pa.int32()), _F("d_vocab", pa.int32()),
           _F("n_heads", pa.int32()), _F("n_ctx", pa.int32()), _F("info", JSON), RUN_ID),
        key=("model",), order=("model",), json_cols=("architecture", "info"),
        doc="one row per model: architecture json and the shapes methods need",
    ),
    TableSpec(
        "runs",
        _s(_F("run_id", pa.string(), False), _F("command", pa.string()), _F("config", JSON),
           _F("corpus", JSON), _F("seed", pa.int64()), _F("packages", JSON),
           _F("git_revision", pa.string()), _F("host", pa.string()), _F("started_at", TIMESTAMP),
           _F("finished_at", TIMESTAMP), _F("status", pa.string()), _F("pid", pa.int64()),
           _F("error", pa.string())),
        key=("run_id",), order=("started_at", "run_id"), json_cols=("config", "corpus", "packages"),
        doc="provenance of every write; written only by Store.run / start_run / finish_run. "
            "host and pid name the process that started the run; error holds why a failed run failed",
    ),
    TableSpec(
        "dictionaries",
        _s(_F("name", pa.string(), False), _F("model", pa.string(), False), _F("site", pa.string()),
           _F("hook_out", pa.string()), _F("kind", pa.string(), False), _F("arch", pa.string()),
           _F("config", JSON), _F("metrics", JSON), _F("path", pa.string()), RUN_ID),
        key=("model", "kind", "name"), partition=("model", "kind"), order=("model", "name"),
        json_cols=("config", "metrics"),
        doc="SAEs and transcoders; path is relative to the store root (see dictionary_dir)",
    ),
    TableSpec(
        "features",
        _s(*IDENTITY, _F("label", pa.string()), _F("density", pa.float64()),
           _F("specialisation", pa.float64()), _F("logit_z", pa.float64()), _F("complexity", pa.float64()),
           _F("max_act", pa.float64()), _F("metrics", JSON), RUN_ID),
        key=IDENTITY_COLS, partition=("model", "kind"), order=("site", "source", "index"),
        json_cols=("metrics",), extensible=True,
        doc="one row per feature: label and summary statistics (extra numeric columns allowed)",
    ),
    TableSpec(
        "feature_tokens",
        _s(*IDENTITY, _F("direction", pa.string(), False), _F("variant", pa.string(), False),
           _F("end", pa.string(), False), _F("rank", pa.int32(), False), _F("token_id", pa.int64()),
           _F("token_str", pa.string()), _F("logit", pa.float64()), _F("prob", pa.float64()), RUN_ID),
        key=(*IDENTITY_COLS, "direction", "variant"), partition=("model", "kind"),
        order=("site", "source", "index", "direction", "variant", "-end", "rank"),  # top first
        doc="top/bottom vocabulary tokens of a feature's directions (up, gate, down, decoder, deembed)",
    ),
    TableSpec(
        "activation_examples",
        _s(*IDENTITY, _F("group", pa.string(), False), _F("example_rank", pa.int32(), False),
           _F("tokens", pa.list_(pa.string())), _F("token_ids", pa.list_(pa.int64())),
           _F("acts", pa.list_(pa.float32())), _F("max_act", pa.float64()), _F("max_pos", pa.int32()),
           RUN_ID),
        key=(*IDENTITY_COLS, "group"), partition=("model", "kind"),
        order=("site", "source", "index", "group", "example_rank"),
        doc="dataset examples per feature; group is 'top' or 'quantile_<k>'",
    ),
    TableSpec(
        "attributions",
        _s(_F("model", pa.string(), False), _F("prompt", pa.string(), False),
           _F("method", pa.string(), False), _F("target", pa.string(), False),
           _F("tokens", pa.list_(pa.string())), _F("scores", pa.list_(pa.float64())),
           _F("extra", JSON), _F("converged", pa.bool_()), _F("converged_probes", pa.int32()), RUN_ID),
        key=("model", "method", "prompt", "target"), partition=("model",),
        order=("method", "prompt", "target"), json_cols=("extra",),
        doc="per-token attribution scores of a prompt towards a target; converged (null for methods "
            "without a stopping rule): whether any ReAGent probe met its stopping condition, "
            "converged_probes how many did (scores of a non-converged run average all probes)",
    ),
    TableSpec(
        "complexity",
        _s(*IDENTITY, _F("K", pa.float64()), _F("first_decodable_layer", pa.int32()),
           _F("curve", pa.list_(pa.float64())), _F("importance", pa.float64()), RUN_ID),
        key=IDENTITY_COLS, partition=("model", "kind"), order=("site", "source", "index"),
        doc="V-information complexity K = 1 - mean_l I_V(h_l -> z) of a feature, its first "
            "decodable layer, the per-layer I_V curve and its importance for the output",
    ),
    TableSpec(
        "feature_labels",
        _s(*IDENTITY, _F("origin", pa.string(), False), _F("label", pa.string()), _F("output_label", pa.string()),
           _F("input_label", pa.string()), _F("author", pa.string()), _F("created_at", TIMESTAMP), RUN_ID),
        key=(*IDENTITY_COLS, "origin"), partition=("model", "kind"), order=("site", "source", "index", "origin"),
        doc="readable feature labels: origin 'auto' (`interp label`: output, input and combined label) "
            "or 'user' (an edit, with author and time; it wins over the automatic label when read)",
    ),
    TableSpec(
        "feature_lists",
        _s(_F("list", pa.string(), False), *IDENTITY, _F("note", pa.string()), _F("removed", pa.bool_()),
           _F("author", pa.string()), _F("created_at", TIMESTAMP), RUN_ID),
        key=("list", *IDENTITY_COLS), order=("list", "created_at"),
        doc="named lists of features with a note each; removing writes a row with removed=true",
    ),
    TableSpec(
        "results",
        _s(RUN_ID, _F("name", pa.string(), False), _F("key", pa.string(), False), _F("payload", JSON)),
        key=("name", "key"), order=("name", "key"), json_cols=("payload",),
        doc="generic method-level results (benchmarks, reports, figure data) as json",
    ),
]

TABLES: dict[str, TableSpec] = {spec.name: spec for spec in _TABLES}


def table_spec(name: str) -> TableSpec:
    """The spec of table `name`; a clear error listing valid tables otherwise."""
    try:
        return TABLES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown store table {name!r}; valid tables: {', '.join(TABLES)}") from None
