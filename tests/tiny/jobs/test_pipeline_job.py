"""`interp run`'s steps on the job interface: under Ray (a local instance, 2 workers) a step
named in another's `after` finishes before it starts while independent steps run side by
side; a failed step is named and a rerun computes only it; the neuron step fills the store as
the local backend does."""

from __future__ import annotations

import json
import re

import pytest

from helpers import pipeline_steps as toy
from helpers.stores import assert_same_store
from interp.jobs.pipeline import Budget, PipelineJob, Step, completed_steps, default_steps, run_pipeline
from interp.jobs.units import Unit, check_order
from interp.store import Store


def _times(store: Store) -> dict[str, dict]:
    rows = store.read("results", where={"name": toy.NAME}, columns=["key", "payload"])
    return {k: json.loads(p) for k, p in zip(rows["key"], rows["payload"])}


def test_ray_runs_a_step_after_the_ones_it_names_and_independent_steps_side_by_side(tmp_path, tiny_dirs, ray_local):
    store = Store(tmp_path / "store")
    steps = [Step("slow", "waits for beside", toy.slow), Step("then", "after slow", toy.then, after=("slow",)),
             Step("beside", "independent", toy.beside)]
    report = run_pipeline(store, str(tiny_dirs["llama"]), steps, backend="ray")
    assert list(report.done) == ["slow", "then", "beside"] and not report.failed
    assert report.done["then"] == "then slept 0.5 s"
    t = _times(store)
    assert t["then"]["start"] >= t["slow"]["end"]  # waited for slow
    assert t["slow"]["saw_beside"]  # beside ran on the second worker while slow waited
    assert completed_steps(store, report.model) == {"slow", "then", "beside"}
    again = run_pipeline(store, str(tiny_dirs["llama"]), steps, backend="ray")
    assert again.skipped == ["slow", "then", "beside"] and not again.done


def test_a_failed_step_on_ray_is_named_and_a_rerun_computes_only_it(tmp_path, tiny_dirs, ray_local):
    store = Store(tmp_path / "store")
    steps = [Step("broken", "fails", toy.broken), Step("then", "after broken", toy.then, after=("broken",))]
    report = run_pipeline(store, str(tiny_dirs["llama"]), steps, backend="ray")
    assert report.failed == {"broken": "RuntimeError: no corpus"} and list(report.done) == ["then"]
    run = store.read("runs").iloc[0]
    assert run["command"] == "interp run" and run["status"] == "failed"
    assert "broken: RuntimeError: no corpus" in run["error"]
    again = run_pipeline(store, str(tiny_dirs["llama"]), steps, backend="ray")
    assert again.skipped == ["then"] and again.failed == {"broken": "RuntimeError: no corpus"}


def test_the_neuron_step_on_ray_fills_the_store_like_the_local_backend(tmp_path, tiny_dirs, ray_local):
    neurons = [s for s in default_steps() if s.name == "neurons"]
    local, distributed = Store(tmp_path / "local"), Store(tmp_path / "ray")
    a = run_pipeline(local, str(tiny_dirs["llama"]), neurons, Budget(0.5))
    b = run_pipeline(distributed, str(tiny_dirs["llama"]), neurons, Budget(0.5), backend="ray")
    untimed = lambda done: {k: re.sub(r" in \d+ s", "", v) for k, v in done.items()}  # noqa: E731 - wall seconds vary
    assert untimed(a.done) == untimed(b.done) and "decoded 2 layers x 64 neurons" in a.done["neurons"]
    assert not a.failed and not b.failed
    assert_same_store(local, distributed, exact=True)


def test_the_main_job_orders_examples_after_transcoders_and_obsprop_and_checks_plan_order(tiny_models):
    job = PipelineJob(tiny_models["llama"], default_steps())
    after = {s.name: s.after for s in job.steps}
    assert after["examples"] == ("transcoder", "obsprop") and after["circuit"] == ("transcoder",)
    check_order([Unit(s.name, s.name, after=s.after) for s in job.steps])  # default order respects them
    with pytest.raises(ValueError, match=r"unit 'b' runs after \['a'\], which the plan puts after it"):
        check_order([Unit("b", None, after=("a",)), Unit("a", None)])
