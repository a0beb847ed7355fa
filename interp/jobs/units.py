"""One interface for every batch job: plan units, run them through a backend, resume.

    from interp.jobs.units import run_job
    outcome = run_job(store, job, backend="ray", address="ray://head:10001")

1. The job opens one run in the store (`Store.run`); it is done, or failed with the names of
   the units that failed, or cancelled.
2. `Job.plan` lists the units still to compute (a layer, a dictionary, a feature shard, a
   prompt shard, a neuron batch), each with a key that names it; units whose results are in
   the store already are skipped (all are redone with ``force``).
3. A backend runs them: ``local`` (this process, `Job.run_local`, which a job may override to
   overlap its units) or ``ray`` (one Ray task per unit, on a local instance or an existing
   cluster given by address; `interp.jobs.backends.ray`). A unit may name units it runs
   after (`Unit.after`, an order, not a success condition: it runs once they finished, done
   or failed); the local backend runs units in plan order, which must respect it. Every unit
   writes its own results straight into the store; a unit's rows go in one `Store.write`
   (atomic: all or none), or several writes ending with the marker `Job.plan` looks for, so
   a unit killed half-way is simply not done and a rerun computes it again (the store's
   replace semantics let the redone rows supersede a killed attempt's).
4. One progress bar counts units done / total across workers; a failed unit does not stop
   the others, and the failed ones are named at the end (`JobFailed`).
5. `Job.finish` (driver side, every unit done) writes what needs all units (a summary, a
   figure), read back from the store, so a resumed job ends with the same rows as an
   uninterrupted one.

Workers receive the job by pickling, so a job holds names and configs, never a loaded model;
`worker_model` loads a model once per worker process. The store must be on a filesystem every
worker sees (README: "The store on shared storage").
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Sequence

from tqdm.auto import tqdm

BACKENDS = ("local", "ray")
DEVICES = ("auto", "cpu", "cuda")


class JobFailed(ValueError):
    """Some units of a job failed (their keys and errors in `failed`); a rerun computes only
    the missing units. A ValueError, so the command line prints it as one line."""

    def __init__(self, job: str, failed: dict[str, str], total: int, done: dict[str, Any] | None = None,
                 skipped: Sequence[str] = ()) -> None:
        self.failed = dict(failed)
        self.done = dict(done or {})
        """What the units that did not fail returned (as `JobOutcome.done`)."""
        self.skipped = list(skipped)
        """Units already complete before the job (as `JobOutcome.skipped`)."""
        names = "; ".join(f"{key}: {error}" for key, error in sorted(failed.items()))
        super().__init__(f"{job}: {len(failed)} of {total} units failed ({names}); the other units are stored, "
                         f"and the same command run again computes only the missing ones")


@dataclass(frozen=True)
class Unit:
    """One piece of a job: what a worker computes and writes in one go."""

    key: str
    """Names the unit in progress output and failures (unique within the job)."""
    spec: Any
    """What to compute (picklable: layers, a config, indices)."""
    after: tuple[str, ...] = ()
    """Keys of units of the same plan that must have finished (done or failed) before this one
    starts (e.g. the main job's examples step after the transcoders it covers); keys not in
    the plan (already complete) are ignored."""


@dataclass
class JobOutcome:
    """What `run_job` did."""

    run_id: str
    done: dict[str, Any] = field(default_factory=dict)
    """Unit key -> what the unit returned (small summaries only)."""
    skipped: list[str] = field(default_factory=list)
    """Keys of units already complete in the store."""
    finished: Any = None
    """What `Job.finish` returned."""
    seconds: float = 0.0


class Job:
    """A batch job: subclasses set `command` and implement `plan` and `run`.

    A job must pickle (Ray sends it to the workers): hold model names and configs; load
    models inside `run` through `worker_model` (or `model`, which prefers an adapter given to
    the local backend).
    """

    command: str = "interp job"
    """The run's command in the store's runs table."""

    def config(self) -> dict:
        """The run's recorded config."""
        return {}

    def provenance(self) -> dict:
        """The run's ``corpus`` and ``seed`` (`Store.run` keywords), where the job has them."""
        return {}

    def plan(self, store, run_id: str, force: bool) -> tuple[list[Unit], list[str]]:
        """(units to compute, keys of units already complete)."""
        raise NotImplementedError

    def run(self, store, unit: Unit, run_id: str) -> Any:
        """Compute one unit and write its results into `store`; return a small summary."""
        raise NotImplementedError

    def run_local(self, store, units: Sequence[Unit], run_id: str, on_done: Callable[[Unit, Any], None],
                  on_error: Callable[[Unit, BaseException], None]) -> None:
        """The local backend: each unit in turn (a job may override this to overlap units)."""
        for unit in units:
            try:
                result = self.run(store, unit, run_id)
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:  # noqa: BLE001 - named at the end, the other units go on
                on_error(unit, exc)
            else:
                on_done(unit, result)

    def finish(self, store, run_id: str, outcome: JobOutcome) -> Any:
        """Driver side, after every unit is done: rows that need all units (default: none)."""
        return None

    def cpus_per_unit(self) -> float:
        """CPUs a Ray task of this job reserves."""
        return 1


def run_job(store, job: Job, *, backend: str = "local", address: str | None = None, progress: bool = True,
            force: bool = False, retries: int = 2) -> JobOutcome:
    """Plan, run and finish `job` in one store run (see the module docstring).

    `address`: an existing Ray cluster (``ray`` backend; default: start a local instance, or
    use the one this process already started). `retries`: how often Ray reruns a unit whose
    worker died. Raises `JobFailed` naming the failed units (the run is marked failed).
    """
    check_backend(backend, address)
    start = time.perf_counter()
    with store.run(job.command, {**job.config(), "backend": backend}, **job.provenance()) as run_id:
        units, skipped = job.plan(store, run_id, force)
        check_order(units)
        outcome = JobOutcome(run_id, skipped=list(skipped))
        failed: dict[str, str] = {}
        with tqdm(total=len(units), desc=job.command, unit="unit", disable=not progress or not units) as bar:
            def on_done(unit: Unit, result: Any) -> None:
                outcome.done[unit.key] = result
                bar.update(1)

            def on_error(unit: Unit, exc: BaseException) -> None:
                failed[unit.key] = error_line(exc)
                bar.update(1)

            if units and backend == "local":
                job.run_local(store, units, run_id, on_done, on_error)
            elif units:
                from interp.jobs.backends.ray import run_units

                run_units(store, job, units, run_id, on_done, on_error, address=address, retries=retries)
        if failed:
            raise JobFailed(job.command, failed, len(units), outcome.done, outcome.skipped)
        outcome.finished = job.finish(store, run_id, outcome)
    outcome.seconds = time.perf_counter() - start
    return outcome


def check_order(units: Sequence[Unit]) -> None:
    """Every unit's `after` keys that are in the plan come earlier in it (so the local backend's
    plan order is a valid order and the Ray backend cannot wait forever)."""
    keys = {u.key for u in units}
    seen: set[str] = set()
    for unit in units:
        late = [k for k in unit.after if k in keys and k not in seen]
        if late:
            raise ValueError(f"unit {unit.key!r} runs after {late}, which the plan puts after it")
        seen.add(unit.key)


def check_backend(backend: str, address: str | None = None) -> None:
    """A clear error for an unknown backend, an address without Ray, or Ray not installed."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
    if address is not None and backend != "ray":
        raise ValueError(f"--address {address!r} is for --backend ray; the {backend} backend runs in this process")
    if backend == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ValueError("--backend ray needs Ray: pip install 'ray[default]'") from None


def error_line(exc: BaseException) -> str:
    """One line for a failed unit: the exception's type and first message line."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".strip().rstrip(":")


def resolve_device(device: str | None = "auto") -> str:
    """``auto`` -> ``cuda`` when a CUDA device is visible, else ``cpu``; ``cuda`` without one is
    refused with one line (so a GPU job never silently runs on the CPU)."""
    import torch

    device = "auto" if device is None else str(device)
    if device not in DEVICES and not device.startswith("cuda:"):
        raise ValueError(f"unknown device {device!r}; valid: {', '.join(DEVICES)} (or cuda:N)")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: no CUDA device is visible here (torch.cuda.is_available() is False); "
                         "use --device cpu, or auto to take a GPU only when there is one")
    return device


@lru_cache(maxsize=2)
def worker_model(name: str, device: str = "cpu"):
    """A `ModelAdapter` for `name`, loaded once per process (Ray workers keep it between units)."""
    from interp.models import load_model

    return load_model(name, device=device)


def shards(items: Sequence, size: int) -> list[list]:
    """`items` in consecutive shards of at most `size` (the last may be shorter)."""
    if size < 1:
        raise ValueError(f"shard size must be >= 1, got {size}")
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


class ModelJob(Job):
    """A job over one model, given by name (workers load it) or as a loaded adapter (local only)."""

    def __init__(self, model, device: str = "auto") -> None:
        self.model_name = model if isinstance(model, str) else model.name
        self._adapter = None if isinstance(model, str) else model
        self.device = resolve_device(device) if isinstance(model, str) else str(model.device)

    def model(self):
        """The adapter: the one given, else loaded once per process."""
        return self._adapter if self._adapter is not None else worker_model(self.model_name, self.device)

    def __getstate__(self) -> dict:
        if self._adapter is not None:
            raise ValueError("the ray backend needs a model name (workers load the model themselves), not an adapter")
        return dict(self.__dict__)
