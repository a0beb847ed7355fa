"""`store check` finds what a killed process left behind (a run still ``running``, a temp
file of a write in progress) and `store check --fix` cleans it up; live work is left alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import types
from datetime import timedelta

import pytest

from interp.store import Store
from interp.store import runs as provenance
from interp.store.files import temp_name
from interp.store.health import orphaned
from interp.store.runs import process_alive

# Starts a run, prints its id, then writes big two-partition batches until killed.
WRITER = r"""
import sys
import numpy as np
from interp.store import Store

store = Store(sys.argv[1])
run = store.start_run("pytest writer", {"n": 1})
print(run, flush=True)
n, half = 200_000, np.arange(200_000) % 2 == 0
batch = 0
while True:
    store.write("features", {"model": np.full(n, "m"), "site": np.full(n, "blocks.0.hook_resid_post"),
                             "kind": np.where(half, "neuron", "sae"), "source": np.where(half, "", "d"),
                             "index": batch * n + np.arange(n), "density": np.random.rand(n)}, run_id=run)
    batch += 1
"""


@pytest.fixture
def cli(monkeypatch):
    # Command discovery imports every module of interp.cli; importing __main__ would run it.
    monkeypatch.setitem(sys.modules, "interp.cli.__main__", types.ModuleType("interp.cli.__main__"))
    from interp.cli import main

    return main


def _temps(root):
    return [os.path.join(d, n) for d, _, names in os.walk(root / "tables") for n in names if n.endswith(".tmp")]


def _kill_mid_write(root):
    """Start the writer, SIGKILL it while a temp file of its write exists; (run id, pid)."""
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(root)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    run_id = proc.stdout.readline().strip()
    assert run_id, proc.stderr.read()
    deadline = time.time() + 60
    while not _temps(root) and time.time() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.001)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert _temps(root), "the kill missed the write"
    return run_id, proc.pid


def test_sigkill_mid_write_is_reported_and_fixed(tmp_path, cli, capsys):
    root = tmp_path / "store"
    store = Store(root)
    live = store.start_run("pytest live", {})  # this process's run: alive, never stale
    run_id, pid = _kill_mid_write(root)
    assert store.get_run(run_id)["status"] == "running" and store.get_run(run_id)["pid"] == pid
    in_progress = root / "tables" / temp_name("part-x.parquet")  # a temp of this (live) process
    in_progress.write_bytes(b"half")
    leftovers = [p for p in map(type(root), _temps(root)) if p != in_progress]

    report = store.check()
    assert [r.run_id for r in report.stale_runs] == [run_id]
    assert f"process {pid} on this host is gone" in report.stale_runs[0].reason
    assert set(report.orphaned) == set(leftovers) and in_progress in report.temp_files
    assert cli(["store", "check", "--store", str(root)]) == 0
    out = capsys.readouterr().out
    assert f"stale run    {run_id}" in out and "orphaned: its writer is gone" in out and "--fix" in out
    assert store.get_run(run_id)["status"] == "running"  # reporting changes nothing

    assert cli(["store", "check", "--fix", "--store", str(root)]) == 0
    out = capsys.readouterr().out
    assert f"marked run {run_id} stale" in out and out.count("removed orphaned temp") == len(leftovers)
    assert store.get_run(run_id)["status"] == "stale" and store.get_run(run_id)["finished_at"] is not None
    assert store.get_run(live)["status"] == "running"
    assert [p for p in map(type(root), _temps(root))] == [in_progress]  # the live write's temp stays
    again = store.check()
    assert again.ok and not again.stale_runs and not again.orphaned
    # Every write that finished before the kill is whole.
    counts = store.sql("SELECT \"index\" // 200000 AS batch, count(*) AS n FROM features GROUP BY 1")
    assert set(counts["n"]) <= {200_000}


def test_runs_of_other_hosts_or_without_a_pid_go_stale_by_age(tmp_path, monkeypatch):
    store = Store(tmp_path / "store")
    now = provenance.utcnow()
    monkeypatch.setattr(provenance, "host", lambda: "elsewhere")
    monkeypatch.setattr(provenance, "utcnow", lambda: now - timedelta(days=8))
    old = store.start_run("old elsewhere", {})
    monkeypatch.setattr(provenance, "utcnow", lambda: now - timedelta(hours=2))
    recent = store.start_run("recent elsewhere", {})
    monkeypatch.undo()
    assert [r.run_id for r in store.check().stale_runs] == [old]
    assert sorted(r.run_id for r in store.check(stale_after_s=3600).stale_runs) == sorted([old, recent])
    report = store.check(fix=True)
    assert store.get_run(old)["status"] == "stale" and store.get_run(recent)["status"] == "running"
    assert report.fixed == [f"marked run {old} stale (host elsewhere; started {8 * 24:.1f} h ago)"]


def test_stale_after_must_be_positive(tmp_path, cli, capsys):
    assert cli(["store", "check", "--stale-after", "0", "--store", str(tmp_path / "s")]) == 2
    assert "--stale-after must be a positive number of hours, got 0.0" in capsys.readouterr().err


def test_process_alive_sees_reused_pids_and_zombies():
    me = os.getpid()
    assert process_alive(me) and process_alive(me, started_before=time.time())
    assert not process_alive(me, started_before=time.time() - 30 * 24 * 3600)  # a later process, same pid
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.time() + 20
    while time.time() < deadline and process_alive(child.pid):
        time.sleep(0.01)
    assert not process_alive(child.pid)  # exited but not yet reaped: a zombie
    child.wait()
    assert not process_alive(child.pid)


def test_temp_files_without_an_owner_are_orphaned_by_age(tmp_path):
    fresh, old = tmp_path / ".part-a.parquet.1a2b3c4d.tmp", tmp_path / ".part-b.parquet.1a2b3c4d.tmp"
    fresh.write_bytes(b"")
    old.write_bytes(b"")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    assert not orphaned(fresh) and orphaned(old)
