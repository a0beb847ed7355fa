"""`with store.run(...) as run_id:` records how a run ended: done, failed (with the error) or cancelled."""

from __future__ import annotations

import os
import socket

import pytest

from interp.store import Store


def test_success_marks_done_and_records_host_and_pid(tmp_path):
    store = Store(tmp_path)
    with store.run("pytest ok", {"k": 1}, seed=3) as run_id:
        store.write("results", [{"name": "t", "key": "a", "payload": {"x": 1}}], run_id=run_id)
        assert store.get_run(run_id)["status"] == "running"
    row = store.get_run(run_id)
    assert row["status"] == "done" and row["finished_at"] is not None
    assert row["error"] is None and row["config"] == {"k": 1} and row["seed"] == 3
    assert row["pid"] == os.getpid() and row["host"] == socket.gethostname()


def test_body_that_raises_marks_failed_with_the_message_and_reraises(tmp_path):
    store = Store(tmp_path)
    with pytest.raises(ValueError, match="bad layer 7"):
        with store.run("pytest fails") as run_id:
            raise ValueError("bad layer 7")
    row = store.get_run(run_id)
    assert row["status"] == "failed"
    assert row["error"] == "ValueError: bad layer 7"
    assert row["finished_at"] is not None and row["pid"] == os.getpid()


def test_keyboard_interrupt_marks_cancelled_and_reraises(tmp_path):
    store = Store(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        with store.run("pytest interrupted") as run_id:
            raise KeyboardInterrupt
    row = store.get_run(run_id)
    assert row["status"] == "cancelled" and row["error"] == "KeyboardInterrupt"


def test_each_run_keeps_its_own_outcome(tmp_path):
    store = Store(tmp_path)
    with store.run("first") as first:
        pass
    with pytest.raises(RuntimeError):
        with store.run("second") as second:
            raise RuntimeError("disk full")
    runs = store.read("runs").set_index("run_id")
    assert runs.loc[first, "status"] == "done" and runs.loc[second, "status"] == "failed"
    assert len(runs) == 2  # latest row per run: one each


def test_get_run_of_an_unknown_run_names_it(tmp_path):
    with pytest.raises(KeyError, match="no run 'nope'"):
        Store(tmp_path).get_run("nope")


def test_neuron_map_with_a_failing_write_leaves_its_run_failed_not_running(tmp_path, tiny_dirs, monkeypatch):
    import interp.jobs.backends.local as local
    from interp.jobs.neuron_map import map_model

    def broken(*args, **kwargs):
        raise OSError("disk quota exceeded")

    monkeypatch.setattr(local, "write_decoded", broken)
    from interp.jobs.units import JobFailed

    store = Store(tmp_path)
    # The job interface names every failed unit and its error in one line.
    with pytest.raises(JobFailed, match=r"2 of 2 units failed \(llama/L0: OSError: disk quota exceeded; "
                                        r"llama/L1: OSError: disk quota exceeded\)"):
        map_model(store, str(tiny_dirs["llama"]), top_k=2, progress=False)
    runs = store.read("runs")
    assert list(runs["command"]) == ["interp map-neurons"]
    assert runs["status"].iloc[0] == "failed" and "OSError: disk quota exceeded" in runs["error"].iloc[0]
    assert store.read("results", where={"name": "neuron_map"}).empty  # no layer marked complete


def test_pipeline_with_a_failed_step_records_the_run_failed_and_still_runs_the_rest(tmp_path, tiny_models):
    from interp.jobs.pipeline import Step, run_pipeline

    def fails(store, adapter, budget):
        raise RuntimeError("no corpus")

    store = Store(tmp_path)
    steps = [Step("broken", "fails", fails), Step("ok", "works", lambda store, adapter, budget: "fine")]
    report = run_pipeline(store, tiny_models["llama"], steps)
    assert report.failed == {"broken": "RuntimeError: no corpus"} and report.done == {"ok": "fine"}
    run = store.read("runs").iloc[0]
    assert run["status"] == "failed" and "broken: RuntimeError: no corpus" in run["error"]
    assert list(store.read("models")["model"]) == [tiny_models["llama"].store_name]
