"""One store root shared the way a cluster shares it: writer processes, each with its own
`Store` and reaching the root by its own path (as different mount points of one network
filesystem would), while this process queries. No row is lost and no query sees half a write."""

from __future__ import annotations

import subprocess
import sys
import time

from interp.store import Store

ROWS = 6  # rows per write, over two partitions (neurons and SAE latents): a commit marker each time

WRITER = r"""
import sys
import numpy as np
from interp.store import Store

root, worker, n_batches = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
store = Store(root)
half = np.arange(6) % 2 == 0
for batch in range(n_batches):
    store.write("features", {
        "model": ["org/m"] * 6, "site": ["blocks.0.mlp.hook_post"] * 6,
        "kind": np.where(half, "neuron", "sae"), "source": np.where(half, "", "d"),
        "index": worker * 10**6 + batch * 6 + np.arange(6), "label": [f"w{worker}b{batch}"] * 6,
    }, run_id=f"w{worker}")
"""


def test_writers_through_different_paths_lose_no_row_and_a_reader_sees_no_torn_write(tmp_path):
    root = tmp_path / "shared" / "store"
    Store(root)  # created once; the writers open it by other paths
    paths = [root, tmp_path / "mount-a", tmp_path / "mount-b"]
    for link in paths[1:]:
        link.symlink_to(root, target_is_directory=True)
    n_batches = 25
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(w), str(n_batches)],
                              stderr=subprocess.PIPE, text=True) for w, path in enumerate(paths)]
    reader, seen, deadline = Store(paths[2]), [], time.time() + 120
    while any(p.poll() is None for p in procs) and time.time() < deadline:
        labels = reader.read("features", columns=["label"])["label"]
        seen.append(set(labels.value_counts()))
    for p in procs:
        p.wait(timeout=60)
        assert p.returncode == 0, p.stderr.read()
    assert seen, "no query overlapped the writes"
    torn = [counts for counts in seen if counts - {ROWS}]
    assert not torn, f"queries saw part of a write: label counts {torn[:3]}"
    final = Store(root).read("features", columns=["label", "index"])
    assert len(final) == len(paths) * n_batches * ROWS and final["index"].is_unique  # no row lost
