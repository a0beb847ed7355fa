"""Main-job steps for the pipeline tests: each writes when it started and ended (module-level
functions, so Ray workers unpickle them by reference)."""

from __future__ import annotations

import time

NAME = "test_step_times"


def _timed(store, name: str, seconds: float) -> str:
    start = time.time()
    time.sleep(seconds)
    with store.run(f"test step {name}", {}) as run_id:
        store.write("results", [{"name": NAME, "key": name, "payload": {"start": start, "end": time.time()}}],
                    run_id=run_id)
    return f"{name} slept {seconds} s"


def slow(store, adapter, budget) -> str:
    """Sleeps until `beside` has run (at most 300 s), so a test sees whether both ran at once.
    The wait ends as soon as `beside` has run; its bound only has to outlast a second Ray worker's
    start: on a 2-core machine also running a 2-thread training job, `beside` had not run after 120 s."""
    start, flag = time.time(), store.root / "beside.ran"
    while not flag.exists() and time.time() - start < 300:
        time.sleep(0.1)
    with store.run("test step slow", {}) as run_id:
        store.write("results", [{"name": NAME, "key": "slow", "payload": {
            "start": start, "end": time.time(), "saw_beside": flag.exists()}}], run_id=run_id)
    return "slow waited for beside" if flag.exists() else "slow ran alone"


def then(store, adapter, budget) -> str:
    return _timed(store, "then", 0.5)


def beside(store, adapter, budget) -> str:
    (store.root / "beside.ran").touch()
    return _timed(store, "beside", 0.5)


def broken(store, adapter, budget) -> str:
    raise RuntimeError("no corpus")
