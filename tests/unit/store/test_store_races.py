"""Writers, readers and a compactor racing for a bounded time: readers see each
two-partition write whole or not at all, and compaction never looks like corruption."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from interp.store import Store, StoreError

BATCH = 10  # rows per write: 5 neurons and 5 SAE latents, so two partitions and a commit marker

# Writes batches until `seconds` pass or `n_batches` are written, logging each finished one.
WRITER = r"""
import sys, time
import numpy as np
from interp.store import Store

root, worker, seconds, n_batches, log = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
store = Store(root)
deadline = time.time() + seconds
half = np.arange(10) % 2 == 0
for batch in range(n_batches):
    if time.time() > deadline:
        break
    store.write("features", {
        "model": ["org/m"] * 10, "site": ["blocks.0.mlp.hook_post"] * 10,
        "kind": np.where(half, "neuron", "sae"), "source": np.where(half, "", "d"),
        "index": worker * 10**6 + batch * 10 + np.arange(10), "label": [f"w{worker}b{batch}"] * 10,
    }, run_id=f"w{worker}")
    with open(log, "a") as fh:
        fh.write(f"{batch}\n")
"""

# Compacts the features table in a loop until `seconds` pass.
COMPACTOR = r"""
import sys, time
from interp.store import Store

store, seconds = Store(sys.argv[1]), float(sys.argv[2])
deadline, n = time.time() + seconds, 0
while time.time() < deadline:
    store.compact("features")
    n += 1
print(n)
"""


def _spawn(script, *args):
    return subprocess.Popen([sys.executable, "-c", script, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _race(store, procs, seconds, max_queries=400):
    """Query the store until the processes end (or `seconds` + margin); per query, the
    labels' row counts and any error."""
    results = []
    deadline = time.time() + seconds + 30
    while any(p.poll() is None for p in procs) and time.time() < deadline and len(results) < max_queries:
        reader = store.read if len(results) % 2 == 0 else None
        try:
            if reader:
                labels = store.read("features", columns=["label"])["label"]
            else:
                labels = store.sql("SELECT label FROM features")["label"]
            results.append((set(labels.value_counts()), None))
        except StoreError as exc:
            results.append((set(), str(exc)))
    for p in procs:
        p.wait(timeout=60)
        assert p.returncode == 0, p.stderr.read()
    return results


def _logged(path):
    return [int(b) for b in path.read_text().split()] if path.exists() else []


def _slow_listing(monkeypatch, seconds=0.02):
    """Listing the commit-marker folder takes `seconds` (as on a loaded network filesystem)."""
    real = os.listdir

    def listdir(path="."):
        if os.path.basename(os.fspath(path)) == "commits":
            time.sleep(seconds)
        return real(path)

    monkeypatch.setattr(os, "listdir", listdir)


@pytest.mark.parametrize("n_writers, slow", [(1, False), (2, False), (1, True)])
def test_readers_see_each_two_partition_write_whole_or_not_at_all(tmp_path, monkeypatch, n_writers, slow):
    if slow:
        _slow_listing(monkeypatch)
    store = Store(tmp_path / "store")
    logs = [tmp_path / f"log{w}" for w in range(n_writers)]
    # 8 s of writing (at most 2,000 batches): at 4 s and 400 batches the slowed-listing reader
    # once managed 9 of the 10 overlapping queries asked for, on a quiet 2-core machine.
    procs = [_spawn(WRITER, store.root, w, 8.0, 2000, logs[w]) for w in range(n_writers)]
    results = _race(store, procs, 8.0)
    torn = [counts for counts, _ in results if counts - {BATCH}]
    errors = [err for _, err in results if err]
    assert not errors, errors[:3]
    assert len(results) >= 10, "too few queries overlapped the writes"
    assert not torn, f"torn reads in {len(torn)} of {len(results)} queries: row counts {torn[:5]}"
    final = store.read("features", columns=["label"])["label"].value_counts()
    assert set(final) == {BATCH} and len(final) == sum(len(_logged(log)) for log in logs)


def test_compaction_racing_readers_and_a_writer_is_never_reported_corrupt(tmp_path):
    store = Store(tmp_path / "store")
    log = tmp_path / "log"
    writer = _spawn(WRITER, store.root, 0, 4.0, 400, log)
    compactor = _spawn(COMPACTOR, store.root, 4.0)
    results = _race(store, [writer, compactor], 4.0)
    errors = [err for _, err in results if err]
    torn = [counts for counts, _ in results if counts - {BATCH}]
    assert int(compactor.stdout.read()) >= 3, "the compactor hardly ran"
    assert not errors, f"{len(errors)} of {len(results)} queries failed: {errors[:2]}"
    assert not torn, f"torn reads in {len(torn)} of {len(results)} queries: {torn[:5]}"
    # Nothing was lost or duplicated, nothing was quarantined, and a last compaction leaves
    # one file per partition and no commit markers.
    done = _logged(log)
    labels = store.read("features", columns=["label"])["label"].value_counts()
    assert set(labels.index) == {f"w0b{b}" for b in done} and set(labels) == {BATCH}
    report = store.check()
    assert report.ok and not report.quarantined
    store.compact()
    assert list((store.root / "commits").iterdir()) == []
    assert len(list((store.root / "tables" / "features").rglob("part-*.parquet"))) == 2
    assert len(store.read("features")) == BATCH * len(done)
