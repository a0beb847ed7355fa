"""Every batch job on the job interface: Ray (a local instance, 2 workers) and the local backend
fill the store alike; a Ray worker killed mid-unit leaves no partial unit behind a rerun.

Comparisons are on store content without provenance (run ids, wall times), rows sorted, and
bitwise, floats included. That holds on these tiny models; at real sizes a reduction whose order
depends on torch's thread count may differ in the last bits, since Ray workers run one thread
(Ray sets OMP_NUM_THREADS to the task's 1 CPU) and this process more, so a comparison at
real sizes needs a float tolerance.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import numpy as np
import pandas as pd
import pytest

from helpers.jobs import StallingMapJob
from helpers.stores import assert_same_store
from interp.jobs.neuron_map import MapConfig, map_model, map_models, pending_layers
from interp.jobs.units import JobFailed, run_job
from interp.store import Store

_VOLATILE = ("seconds", "cpu_seconds", "timings", "run_id")
"""Payload fields that measure time or name the run: never compared."""


def _payloads(store: Store, name: str) -> dict[str, object]:
    rows = store.read("results", where={"name": name}, columns=["key", "payload"])
    return {k: _strip(json.loads(p)) for k, p in zip(rows["key"], rows["payload"])}


def _strip(value):
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in _VOLATILE}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _close(a, b, rtol=1e-5, atol=1e-7, path="") -> None:
    """Nested JSON values equal: strings, ints and structure exactly, floats within tolerance."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{path}: keys {sorted(set(a) ^ set(b))}"
        for k in a:
            _close(a[k], b[k], rtol, atol, f"{path}/{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), f"{path}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b)):
            _close(x, y, rtol, atol, f"{path}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert (a is None) == (b is None), path
        if a is not None:
            assert np.isclose(a, b, rtol=rtol, atol=atol, equal_nan=True), f"{path}: {a} != {b}"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


# --- the neuron map ---------------------------------------------------------------------------

def test_neuron_map_on_ray_fills_the_store_like_the_local_backend(tmp_path, tiny_dirs, ray_local):
    model = str(tiny_dirs["llama"])
    local, distributed = Store(tmp_path / "local"), Store(tmp_path / "ray")
    map_model(local, model, directions=("up", "down"), top_k=3, progress=False)
    summary = map_model(distributed, model, directions=("up", "down"), top_k=3, backend="ray", progress=False)
    assert summary.mapped == {"llama": [0, 1]} and summary.skipped == {"llama": []}
    assert_same_store(local, distributed, exact=True)
    a, b = (s.read("feature_tokens").sort_values(["site", "direction", "index", "end", "rank"]) for s in
            (local, distributed))
    assert a["token_id"].tolist() == b["token_id"].tolist()
    again = map_model(distributed, model, directions=("up", "down"), top_k=3, backend="ray", progress=False)
    assert again.mapped == {"llama": []} and again.skipped == {"llama": [0, 1]}  # nothing left to do


def _kill_when_stalled(flag_dir, timeout=90.0) -> threading.Thread:
    def kill() -> None:
        pid_file, deadline = flag_dir / "pid", time.time() + timeout
        while time.time() < deadline:
            text = pid_file.read_text().strip() if pid_file.exists() else ""
            if text:
                os.kill(int(text), signal.SIGKILL)
                return
            time.sleep(0.05)

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread


CONFIG = MapConfig(directions=("up", "gate", "down"), top_k=3)


def test_a_killed_ray_worker_fails_its_unit_by_name_and_a_rerun_completes_the_store(tmp_path, tiny_dirs,
                                                                                      ray_local):
    model = str(tiny_dirs["llama"])
    store, flags = Store(tmp_path / "killed"), tmp_path / "flags"
    flags.mkdir()
    killer = _kill_when_stalled(flags)
    with pytest.raises(JobFailed, match=r"1 of 2 units failed \(llama/L1: RuntimeError: the Ray worker") as failed:
        run_job(store, StallingMapJob([model], CONFIG, "llama/L1", str(flags)), backend="ray", progress=False,
                retries=0)
    killer.join(timeout=5)
    assert list(failed.value.failed) == ["llama/L1"] and "missing ones" in str(failed.value)
    run = store.get_run(store.read("results", where={"name": "neuron_map"})["run_id"].iloc[0])
    assert run["status"] == "failed" and "llama/L1" in run["error"]
    # The killed unit left rows (its first write) but no completion markers: not done.
    assert len(store.read("feature_tokens", where={"site": "blocks.1.mlp.hook_post"})) > 0
    assert set(pending_layers(store, "llama", [0, 1], CONFIG)) == {1}
    rerun = map_models(store, [model], CONFIG, backend="ray", progress=False)
    assert rerun.mapped == {"llama": [1]} and rerun.skipped == {"llama": [0]}
    whole = Store(tmp_path / "whole")
    map_models(whole, [model], CONFIG, progress=False)
    assert_same_store(store, whole, exact=True)


def test_a_killed_ray_worker_is_retried_and_the_job_completes(tmp_path, tiny_dirs, ray_local):
    model = str(tiny_dirs["llama"])
    store, flags = Store(tmp_path / "retried"), tmp_path / "flags"
    flags.mkdir()
    killer = _kill_when_stalled(flags)
    outcome = run_job(store, StallingMapJob([model], CONFIG, "llama/L1", str(flags)), backend="ray",
                      progress=False, retries=1)
    killer.join(timeout=5)
    assert (flags / "pid").exists() and sorted(outcome.done) == ["llama/L0", "llama/L1"]
    whole = Store(tmp_path / "whole")
    map_models(whole, [model], CONFIG, progress=False)
    assert_same_store(store, whole, exact=True)
