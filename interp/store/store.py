"""`Store`: the one door to interp's data on disk.

    store = Store()                                    # root: interp.paths.store_dir()
    with store.run("interp neurons", {"k": 20}, corpus={"name": "pile", "n": 1000}, seed=0) as run:
        store.write("features", frame, run_id=run)     # latest write per feature wins
    store.get_run(run)["status"]                       # done; failed (with the error) if the body raised
    store.features(model="smollm2-135m", kind="neuron")
    store.sql("SELECT kind, count(*) FROM features GROUP BY kind")

Tables, layout and the replace semantics are described in README.md and `schema.py`.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path

import duckdb
import pandas as pd

from interp.features import FeatureId
from interp.paths import store_dir
from interp.store import runs as provenance
from interp.store import tensors as tensor_io
from interp.store.files import StoreError, atomic_dir, atomic_write_bytes, new_write_id, validate_name
from interp.store.health import RUN_STALE_S, fix_leftovers, stale_runs
from interp.store.maintenance import CheckReport, check, compact
from interp.store.reading import StoreWarning, data_problem, quarantine, read_retrying
from interp.store.query import run_query
from interp.store.schema import SCHEMA_VERSION, TABLES, table_spec
from interp.store.tables import latest_sql, list_files, register_empty, to_arrow, write_files

VERSION_FILE = "STORE_VERSION"


class Store:
    """A feature store rooted at one directory (see the module docstring)."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root).expanduser().resolve() if root is not None else store_dir()
        self.root.mkdir(parents=True, exist_ok=True)
        self._check_version()

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    def _check_version(self) -> None:
        path = self.root / VERSION_FILE
        if not path.exists():
            # Concurrent creators write identical content; the rename makes it atomic.
            atomic_write_bytes(path, json.dumps({"schema_version": SCHEMA_VERSION}).encode())
            return
        try:
            found = json.loads(path.read_text())["schema_version"]
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"{path} is not a valid store version file ({exc}); "
                             f"expected {{\"schema_version\": {SCHEMA_VERSION}}}") from None
        if found != SCHEMA_VERSION:
            raise StoreError(
                f"store {self.root} has schema version {found}, but this interp reads version "
                f"{SCHEMA_VERSION}; use an interp release matching version {found}, or point "
                f"--store / INTERP_HOME at a new directory and re-run the jobs to rebuild it"
            )

    # ------------------------------------------------------------------ writing
    def write(self, table: str, data, *, run_id: str) -> str:
        """Append rows to `table` for run `run_id`; returns the write id.

        `data`: a DataFrame, Arrow table, list of dicts or dict of columns. Rows replace
        earlier rows with the same key (see `TABLES[table].key`) when read. The write is
        atomic: readers see all of it or none of it.
        """
        spec = table_spec(table)
        if spec.name == "runs":
            raise StoreError("the runs table is written by Store.run / start_run / finish_run only")
        arrow = to_arrow(spec, data, run_id)
        write_id = new_write_id()
        if arrow.num_rows:
            write_files(self.root, spec, arrow, write_id)
        return write_id

    @contextlib.contextmanager
    def run(self, command: str, config: Mapping | None = None, *, corpus: Mapping | None = None,
            seed: int | None = None) -> Iterator[str]:
        """Open a run for the body of a ``with`` block; yields its run id.

        The run is marked ``done`` when the body returns, ``failed`` (with the error text) when
        it raises, and ``cancelled`` on KeyboardInterrupt (or another BaseException such as
        SystemExit); the exception is re-raised. Only a killed process leaves ``running``
        behind, and its row names the host and pid that started it.
        """
        run_id = self.start_run(command, config, corpus=corpus, seed=seed)
        try:
            yield run_id
        except Exception as exc:
            self.finish_run(run_id, "failed", error=_error_text(exc))
            raise
        except BaseException as exc:
            self.finish_run(run_id, "cancelled", error=_error_text(exc))
            raise
        self.finish_run(run_id, "done")

    def start_run(self, command: str, config: Mapping | None = None, *, corpus: Mapping | None = None,
                  seed: int | None = None) -> str:
        """Record the start of a job with its provenance; returns the new run id.

        Prefer ``with store.run(...)``, which also records how the run ended.
        """
        run_id = provenance.new_run_id()
        row = {
            "run_id": run_id, "command": command, "config": dict(config or {}),
            "corpus": None if corpus is None else dict(corpus), "seed": seed,
            "packages": provenance.package_versions(), "git_revision": provenance.git_revision(),
            "host": provenance.host(), "pid": os.getpid(), "started_at": provenance.utcnow(),
            "finished_at": None, "status": "running", "error": None,
        }
        self._write_run(row)
        return run_id

    def finish_run(self, run_id: str, status: str = "done", error: str | None = None) -> None:
        """Mark a run finished (``done``, ``failed``, ``cancelled``; ``stale``: its process is gone), with why it failed if given."""
        provenance.check_status(status)
        found = self.read("runs", where={"run_id": run_id})
        if found.empty:
            raise KeyError(f"no run {run_id!r} in store {self.root}; start it with Store.run or Store.start_run")
        row = found.iloc[0].to_dict()
        row.update(status=status, finished_at=provenance.utcnow(), error=error)
        self._write_run(row)

    def get_run(self, run_id: str) -> dict:
        """One run's provenance record, JSON columns parsed."""
        found = self.read("runs", where={"run_id": run_id})
        if found.empty:
            raise KeyError(f"no run {run_id!r} in store {self.root}")
        row = found.iloc[0].to_dict()
        for col in TABLES["runs"].json_cols:
            row[col] = json.loads(row[col]) if isinstance(row[col], str) else None
        return row

    def _write_run(self, row: dict) -> None:
        spec = TABLES["runs"]
        write_files(self.root, spec, to_arrow(spec, [row], row["run_id"]), new_write_id())

    # ------------------------------------------------------------------ reading
    def read(self, table: str, where: Mapping | None = None, columns: list[str] | None = None,
             latest: bool = True) -> pd.DataFrame:
        """Rows of `table` as a DataFrame.

        `where`: ``{column: value}`` equality filters (a list/tuple/set means "any of").
        `columns`: the columns to return (default all). `latest=False` returns every stored
        version of every row instead of the latest-wins view.
        """
        spec = table_spec(table)
        where = dict(where or {})
        for col in [*where, *(columns or [])]:
            if not spec.extensible and col not in spec.schema.names:
                raise StoreError(f"table {table!r} has no column {col!r}; columns: {', '.join(spec.schema.names)}")

        def attempt(files):
            sql, params = latest_sql(spec, files, where, columns, latest=latest)
            con = duckdb.connect(":memory:")
            try:
                register_empty(con, spec)
                return con.execute(sql, params).df()
            except duckdb.BinderException as exc:
                raise StoreError(f"table {table!r}: {str(exc).splitlines()[0]}") from None
            finally:
                con.close()

        # Vanished files (a concurrent compact) are re-listed; corrupt ones quarantined.
        return read_retrying(self.root, lambda: list_files(self.root, spec, where), attempt)

    def sql(self, query: str) -> pd.DataFrame:
        """Run one read-only SELECT over views named after the tables (``<table>_all``: all versions)."""
        return run_query(self.root, query)

    def features(self, model: str | None = None, kind=None, site: str | None = None,
                 source: str | None = None) -> pd.DataFrame:
        """The features table, filtered by any of model, kind, site and source."""
        where = {k: v for k, v in dict(model=model, kind=kind, site=site, source=source).items() if v is not None}
        return self.read("features", where=where)

    def feature_tokens(self, feature: FeatureId, direction: str | None = None,
                       variant: str | None = None) -> pd.DataFrame:
        """Top/bottom tokens of one feature, ordered by direction, variant, end and rank."""
        where = _identity(feature)
        where.update({k: v for k, v in dict(direction=direction, variant=variant).items() if v is not None})
        return self.read("feature_tokens", where=where)

    def examples(self, feature: FeatureId, group: str | None = None) -> pd.DataFrame:
        """Activation examples of one feature, ordered by group and rank."""
        where = _identity(feature)
        if group is not None:
            where["group"] = group
        return self.read("activation_examples", where=where)

    def info(self) -> dict:
        """A JSON-able summary: root, version, row counts per table, models, recent runs."""
        counts = self.sql(" UNION ALL ".join(f"SELECT '{t}' AS t, count(*) AS n FROM {t}" for t in TABLES))
        runs = self.read("runs", columns=["run_id", "command", "status", "started_at"])
        models = set(self.read("models", columns=["model"])["model"])
        models |= set(self.sql("SELECT DISTINCT model FROM features")["model"])
        return {
            "root": str(self.root),
            "schema_version": SCHEMA_VERSION,
            "tables": {t: {"rows": int(n), "files": len(list_files(self.root, TABLES[t]))}
                       for t, n in zip(counts["t"], counts["n"])},
            "models": sorted(models),
            "n_runs": len(runs),
            "recent_runs": [{**r, "started_at": str(r["started_at"])} for r in runs.tail(10).to_dict("records")],
            "tensors": tensor_io.list_tensors(self.root),
        }

    # ------------------------------------------------------------------ tensors and folders
    def save_tensors(self, name: str, tensors: dict, metadata: Mapping | None = None, *,
                     run_id: str | None = None) -> Path:
        """Atomically save a bundle of named tensors (safetensors) with JSON metadata."""
        return tensor_io.save_tensors(self.root, name, tensors, dict(metadata or {}), run_id)

    def load_tensors(self, name: str, device: str = "cpu") -> dict:
        """The bundle saved under `name`: a dict of name -> torch.Tensor."""
        return tensor_io.load_tensors(self.root, name, device)

    def tensor_metadata(self, name: str) -> dict:
        """The metadata saved with bundle `name`."""
        return tensor_io.tensor_metadata(self.root, name)

    def dictionary_dir(self, name: str) -> Path:
        """The (validated) folder of SAELens-format dictionary `name`; may not exist yet."""
        return tensor_io.dictionary_dir(self.root, name)

    def dictionary_folder(self, name: str, stored_path: str | None = None) -> Path:
        """`dictionary_dir(name)`, after checking a ``dictionaries.path`` value read from the store.

        A stored path is relative to the root; one that resolves outside the store root is
        refused with StoreError, like every other name the store reads. The folder loaded is
        always `dictionary_dir(name)`.
        """
        folder = self.dictionary_dir(name)
        if stored_path is None or (isinstance(stored_path, float) and stored_path != stored_path):  # None / NaN
            return folder
        try:
            target = (self.root / str(stored_path)).resolve()
        except (OSError, ValueError, RuntimeError) as exc:
            raise StoreError(f"dictionary {name!r}: stored path {str(stored_path)[:200]!r} is not a path ({exc})") from None
        if not target.is_relative_to(self.root):
            raise StoreError(f"dictionary {name!r}: stored path {str(stored_path)[:200]!r} points outside the store; "
                             f"dictionaries live under <store>/{folder.relative_to(self.root).parts[0]}/")
        return folder

    @contextlib.contextmanager
    def write_dictionary_dir(self, name: str) -> Iterator[Path]:
        """Yield a temp folder to fill; on success it atomically becomes `dictionary_dir(name)`."""
        with atomic_dir(self.dictionary_dir(name)) as tmp:
            yield tmp

    # ------------------------------------------------------------------ maintenance
    def check(self, fix: bool = False, stale_after_s: float = RUN_STALE_S) -> CheckReport:
        """Read every file; report corrupt files, leftovers of crashed writes and stale runs.

        Runs still ``running`` whose process is gone are stale (see `health.stale_runs`;
        `stale_after_s` applies to runs of other hosts). `fix`: mark those runs ``stale``,
        remove orphaned temp files and quarantine corrupt files (what was done is listed in
        ``report.fixed``).
        """
        report = check(self.root)
        report.stale_runs = stale_runs(self.read("runs", where={"status": "running"}), stale_after_s)
        if fix:
            for run in report.stale_runs:
                self.finish_run(run.run_id, "stale")
                report.fixed.append(f"marked run {run.run_id} stale ({run.reason})")
            for path in report.orphaned:
                if fix_leftovers([path]):
                    report.fixed.append(f"removed orphaned temp {path}")
            for path, why in report.corrupt:
                if path.suffix == ".parquet" and data_problem(path):
                    with warnings.catch_warnings():  # reported in `fixed` instead
                        warnings.simplefilter("ignore", StoreWarning)
                        dest = quarantine(self.root, path, why)
                    report.fixed.append(f"quarantined {path} -> {dest}" if dest else f"could not move {path}")
        return report

    def compact(self, table: str | None = None) -> int:
        """Merge each partition's files into one; returns the number of files removed."""
        if table is not None:
            table_spec(table)
        return compact(self.root, table)


def _error_text(exc: BaseException) -> str:
    """``Type: message`` of an exception (the type alone when it has no message)."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _identity(feature: FeatureId) -> dict:
    if not isinstance(feature, FeatureId):
        raise TypeError(f"expected a FeatureId, got {type(feature).__name__}")
    return feature.to_record()
