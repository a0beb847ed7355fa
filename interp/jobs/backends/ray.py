"""The Ray backend: one Ray task per unit of a job (`interp.jobs.units`).

Workers unpickle the job, open the store at its root (which must be on a filesystem every
worker sees) and write their unit straight into it; only small summaries come back to the
driver, which waits and counts. ``ray.init()`` starts a local instance unless an address is
given, or uses the instance this process already started (and then leaves it running).
Workers use the driver's data root (``INTERP_HOME``) for their caches, so on a cluster it
must be on shared storage at the same path, like the store.

A unit whose worker process dies (killed, out of memory, node lost) is rerun by Ray up to
`retries` times; a unit that raises is not retried (the same inputs would fail again) and is
named at the end. Either way the store holds no partial unit (see `interp.jobs.units`).
A unit with `after` keys is submitted once those units have finished; the others are all
submitted at once and Ray schedules them on free CPUs.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence


def _unit_task(root: str, home: str, job, unit, run_id: str) -> Any:
    import os

    from interp.store import Store

    os.environ["INTERP_HOME"] = home  # caches (activations, token windows) where the driver keeps them
    return job.run(Store(root), unit, run_id)


def run_units(store, job, units: Sequence, run_id: str, on_done: Callable, on_error: Callable, *,
              address: str | None = None, retries: int = 2) -> None:
    """Run `units` of `job` as Ray tasks; report each through `on_done(unit, result)` or `on_error(unit, exc)`."""
    import ray
    from ray.exceptions import RayError, RayTaskError

    from interp.paths import data_root

    started = not ray.is_initialized()
    if started:
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        except (ConnectionError, RuntimeError) as exc:
            raise ValueError(f"cannot reach a Ray cluster at --address {address!r}: {exc}") from None
    try:
        task = ray.remote(num_cpus=job.cpus_per_unit(), max_retries=retries, retry_exceptions=False)(_unit_task)
        job_ref = ray.put(job)
        home = str(data_root().resolve())
        keys = {u.key for u in units}
        waiting, finished, pending = list(units), set(), {}

        def submit_ready() -> None:
            for unit in [u for u in waiting if all(k in finished or k not in keys for k in u.after)]:
                waiting.remove(unit)
                pending[task.remote(str(store.root), home, job_ref, unit, run_id)] = unit

        submit_ready()
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                unit = pending.pop(ref)
                finished.add(unit.key)
                try:
                    result = ray.get(ref)
                except RayTaskError as exc:  # the unit raised: report its own exception
                    on_error(unit, getattr(exc, "cause", None) or exc)
                except RayError as exc:  # its worker died more often than `retries`
                    on_error(unit, RuntimeError(f"the Ray worker running it was lost ({type(exc).__name__}; "
                                                f"tried {retries + 1}x)"))
                else:
                    on_done(unit, result)
            submit_ready()
    finally:
        if started:
            ray.shutdown()
