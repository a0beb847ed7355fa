"""The job interface: plan, run, resume, name failures; backend and device checks."""

from __future__ import annotations

import json

import pytest

from interp.jobs.units import Job, JobFailed, Unit, check_backend, resolve_device, run_job, shards
from interp.store import Store


class Squares(Job):
    """Unit i writes i*i into results (name 'squares', key i); unit `bad` raises."""

    command = "squares"

    def __init__(self, n: int, bad: int | None = None) -> None:
        self.n, self.bad, self.ran = n, bad, []

    def plan(self, store, run_id, force):
        done = set() if force else set(store.read("results", where={"name": "squares"})["key"])
        keys = [f"{i:02d}" for i in range(self.n)]
        return [Unit(k, int(k)) for k in keys if k not in done], [k for k in keys if k in done]

    def run(self, store, unit, run_id):
        self.ran.append(unit.spec)
        if unit.spec == self.bad:
            raise ValueError(f"cannot square {unit.spec}\nsecond line")
        store.write("results", [{"name": "squares", "key": unit.key, "payload": {"v": unit.spec ** 2}}], run_id=run_id)
        return unit.spec ** 2

    def finish(self, store, run_id, outcome):
        rows = store.read("results", where={"name": "squares"})
        return sum(json.loads(p)["v"] for p in rows["payload"])


def test_a_rerun_computes_only_the_missing_units_and_failures_are_named(tmp_path):
    store = Store(tmp_path)
    with pytest.raises(JobFailed, match=r"squares: 1 of 4 units failed \(02: ValueError: cannot square 2\)") as err:
        run_job(store, Squares(4, bad=2), progress=False)
    assert err.value.failed == {"02": "ValueError: cannot square 2"}  # one line, the other units went on
    assert sorted(store.read("results")["key"]) == ["00", "01", "03"]
    failed_run = store.get_run(store.read("results")["run_id"].iloc[0])
    assert failed_run["status"] == "failed" and "02" in failed_run["error"]
    job = Squares(4)
    outcome = run_job(store, job, progress=False)
    assert job.ran == [2] and outcome.done == {"02": 4} and outcome.skipped == ["00", "01", "03"]
    assert outcome.finished == 0 + 1 + 4 + 9
    forced = Squares(4)
    run_job(store, forced, progress=False, force=True)
    assert forced.ran == [0, 1, 2, 3]


def test_backend_and_device_errors_are_one_clear_line():
    with pytest.raises(ValueError, match="unknown backend 'spark'; valid: local, ray"):
        check_backend("spark")
    with pytest.raises(ValueError, match="--address 'h:1' is for --backend ray"):
        check_backend("local", "h:1")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        resolve_device("tpu")
    import torch

    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"^--device cuda: no CUDA device is visible here"):
            resolve_device("cuda")


def test_shards_cover_every_item_once_in_order():
    assert shards(list(range(7)), 3) == [[0, 1, 2], [3, 4, 5], [6]]
    assert shards([], 3) == []
    with pytest.raises(ValueError, match="shard size must be >= 1"):
        shards([1], 0)
