"""Several writer processes, and a writer killed mid-write, never lose or tear data."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from interp.store import Store

# A writer process: writes `n_batches` batches of `size` rows, half neurons and half SAE
# latents (so every write spans two partitions and goes through a commit marker), and
# logs each batch number after its write returned.
WRITER = r"""
import sys
import numpy as np
import pandas as pd
from interp.store import Store

root, worker, n_batches, size, log = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
store = Store(root)
batch = 0
while n_batches < 0 or batch < n_batches:
    index = worker * 10**9 + batch * size + np.arange(size)
    frame = pd.DataFrame({
        "model": "org/m", "site": "blocks.0.mlp.hook_post",
        "kind": np.where(np.arange(size) % 2 == 0, "neuron", "sae"), "source": np.where(np.arange(size) % 2 == 0, "", "d"),
        "index": index, "label": f"w{worker}b{batch}", "density": np.random.rand(size),
    })
    store.write("features", frame, run_id=f"w{worker}")
    with open(log, "a") as fh:
        fh.write(f"{batch}\n")
        fh.flush()
    batch += 1
"""


def _spawn(root, worker, n_batches, size, log):
    return subprocess.Popen([sys.executable, "-c", WRITER, str(root), str(worker), str(n_batches), str(size), str(log)],
                            stderr=subprocess.PIPE)


def _temp_files(directory):
    for dirpath, _, names in os.walk(directory):
        yield from (n for n in names if n.startswith(".") and n.endswith(".tmp"))


def test_concurrent_writer_processes_lose_nothing(tmp_path):
    root = tmp_path / "store"
    n_workers, n_batches, size = 4, 15, 10
    # The writers also race to create the store (and its version file).
    procs = [_spawn(root, w, n_batches, size, tmp_path / f"log{w}") for w in range(n_workers)]
    while not (root / "STORE_VERSION").exists():
        time.sleep(0.01)
    store = Store(root)
    seen = []
    while any(p.poll() is None for p in procs):
        # Readers racing the writers only ever see whole batches.
        counts = store.read("features", columns=["label"])["label"].value_counts()
        assert set(counts) <= {size}
        seen.append(len(counts))
        time.sleep(0.2)
    for p in procs:
        assert p.wait() == 0, p.stderr.read().decode()
    out = store.read("features", columns=["index", "label"])
    assert len(out) == n_workers * n_batches * size
    expected = {w * 10**9 + b * size + i for w in range(n_workers) for b in range(n_batches) for i in range(size)}
    assert set(out["index"]) == expected
    assert seen == sorted(seen)  # the visible set only grows


def test_writer_killed_mid_write_leaves_store_consistent(tmp_path):
    root = tmp_path / "store"
    store = Store(root)
    size, log = 20_000, tmp_path / "log"
    proc = _spawn(root, 0, -1, size, log)
    deadline = time.time() + 20
    while time.time() < deadline and (not log.exists() or len(log.read_text().split()) < 2):
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.01)
    tables = root / "tables" / "features"
    while time.time() < deadline and not any(_temp_files(tables)):
        time.sleep(0.002)  # kill the moment the next write has a half-written temp file
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert store.check().temp_files or store.check().uncommitted, "the kill missed the write"
    done = [int(b) for b in log.read_text().split()]
    assert len(done) >= 2, "writer was too slow to test"
    counts = store.sql("SELECT label, count(*) AS n FROM features GROUP BY label")
    assert set(counts["n"]) == {size}  # no partial batch
    labels = set(counts["label"])
    assert {f"w0b{b}" for b in done} <= labels  # every completed write is there
    assert len(labels - {f"w0b{b}" for b in done}) <= 1  # at most the write that finished unlogged
    report = store.check()
    assert report.ok, report.corrupt
    assert len(store.read("features")) == size * len(labels)
